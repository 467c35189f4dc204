/**
 * The metric objects that read plain cells at scrape time must print exactly what prom-client's own Counter,
 * Gauge and Histogram print for the same updates: same lines, label order, escaping and values, in Prometheus
 * text, in OpenMetrics, with default labels, after a reset, and through cluster aggregation.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Metric } from 'prom-client';
import { escapeLabelValue, labelText } from '../lib/exposition';
import { HistogramCells, HistogramMetric } from '../lib/histogram-metric';
import type { HistogramSeries } from '../lib/histogram-metric';
import { KeyedCells, ScalarCell, ScalarMetric } from '../lib/scalar-metric';
import { registryOf } from './support/registries';

/** Label values a client can send as a model name: quotes, backslashes, newlines, non-ASCII. */
const MODELS = ['plain', 'we"ird\\mo\ndel', 'a\\"b', 'émoji 🌍'];
const BOUNDS = [0, 0.5, 1, 2.5];
const SAMPLES = [0, 0.3, 0.5, 0.7, 1, 3, 100, 2.5, 0.1 + 0.2];

const FLAVOURS: { name: string; registry: () => Registry }[] = [
  { name: 'Prometheus text', registry: () => new Registry() },
  { name: 'OpenMetrics', registry: () => registryOf(Registry.OPENMETRICS_CONTENT_TYPE) },
  {
    name: 'default labels',
    registry: () => {
      const registry = new Registry();
      // `model` too: a default label of the same name as a metric label must not override it.
      registry.setDefaultLabels({ instance: 'i"1\\x', model: 'shadowed' });
      return registry;
    },
  },
];

interface Pair {
  ours: Registry;
  theirs: Registry;
}

/** A histogram per model, fed the same samples as prom-client's. */
function histograms(pair: Pair): void {
  const series: HistogramSeries[] = MODELS.map((model) => ({ labels: { model }, labelText: labelText({ model }), cells: new HistogramCells(BOUNDS) }));
  const reference = new Histogram({ name: 'h_seconds', help: 'a "help"\\ text', labelNames: ['model'], buckets: BOUNDS, registers: [pair.theirs] });
  const ours = new HistogramMetric('h_seconds', 'a "help"\\ text', ['model'], BOUNDS, pair.ours, (visit) => series.forEach(visit));
  pair.ours.registerMetric(ours as unknown as Metric);
  // The last model gets no sample: neither prints it.
  MODELS.slice(0, -1).forEach((model, i) => {
    for (const sample of SAMPLES.slice(i)) {
      reference.observe({ model }, sample);
      series[i]?.cells.observe(sample);
    }
  });
}

/** A counter with two labels (one series counted by 0, one never counted) and a gauge that returns to 0. */
function scalars(pair: Pair): void {
  const keyed = new KeyedCells();
  const counter = new ScalarMetric('c_total', 'counted', 'counter', ['model', 'endpoint'], pair.ours, (visit) => keyed.forEach(visit));
  const reference = new Counter({ name: 'c_total', help: 'counted', labelNames: ['model', 'endpoint'], registers: [pair.theirs] });
  pair.ours.registerMetric(counter as unknown as Metric);
  MODELS.forEach((model, i) => {
    for (const endpoint of ['chat', 'responses']) {
      const key = `${model}\u0000${endpoint}`;
      (keyed.get(key) ?? keyed.create(key, { model, endpoint })).add(i);
      reference.inc({ model, endpoint }, i);
    }
  });
  keyed.create('never', { model: 'never', endpoint: 'chat' });

  const cells = MODELS.map((model) => new ScalarCell({ model }));
  const gauge = new ScalarMetric('g', 'gauged', 'gauge', ['model'], pair.ours, (visit) => cells.forEach(visit));
  const referenceGauge = new Gauge({ name: 'g', help: 'gauged', labelNames: ['model'], registers: [pair.theirs] });
  pair.ours.registerMetric(gauge as unknown as Metric);
  MODELS.forEach((model, i) => {
    cells[i]?.add(1);
    referenceGauge.inc({ model }, 1);
    if (i % 2 === 0) {
      cells[i]?.add(-1);
      referenceGauge.dec({ model });
    }
  });

  const single = new ScalarCell({}, true);
  const unlabelled = new ScalarMetric('u', 'no labels', 'gauge', [], pair.ours, (visit) => visit(single));
  const referenceUnlabelled = new Gauge({ name: 'u', help: 'no labels', registers: [pair.theirs] });
  pair.ours.registerMetric(unlabelled as unknown as Metric);
  single.add(2);
  referenceUnlabelled.inc(2);
}

describe.each(FLAVOURS)('the cell-backed metrics print what prom-client prints ($name)', ({ registry }) => {
  let pair: Pair;
  beforeEach(() => {
    pair = { ours: registry(), theirs: registry() };
    histograms(pair);
    scalars(pair);
  });

  it('in the text exposition, byte for byte', async () => {
    const text = await pair.ours.metrics();
    expect(text).toBe(await pair.theirs.metrics());
    // Rendering twice changes nothing (an OpenMetrics registry renames counters as it renders).
    expect(await pair.ours.metrics()).toBe(text);
    expect(text).toContain('we\\"ird\\\\mo\\ndel');
  });

  it('one metric at a time (getSingleMetricAsString)', async () => {
    for (const name of ['h_seconds', 'c_total', 'g', 'u']) {
      expect(await pair.ours.getSingleMetricAsString(name)).toBe(await pair.theirs.getSingleMetricAsString(name));
    }
  });

  it('as JSON (getMetricsAsJSON), which cluster workers send', async () => {
    expect(await pair.ours.getMetricsAsJSON()).toEqual(await pair.theirs.getMetricsAsJSON());
  });

  it('after resetMetrics(): labelled series gone, the unlabelled gauge at 0', async () => {
    pair.ours.resetMetrics();
    pair.theirs.resetMetrics();
    const text = await pair.ours.metrics();
    expect(text).toBe(await pair.theirs.metrics());
    expect(text).not.toContain('plain');
    expect(text).toMatch(/^u(\{.*\})? 0$/m);
  });
});

it('aggregates across cluster workers as prom-client metrics do', async () => {
  const pair: Pair = { ours: new Registry(), theirs: new Registry() };
  histograms(pair);
  scalars(pair);
  const workers = async (registry: Registry): Promise<object[]> => [await registry.getMetricsAsJSON(), await registry.getMetricsAsJSON()];
  const ours = await AggregatorRegistry.aggregate(await workers(pair.ours)).metrics();
  expect(ours).toBe(await AggregatorRegistry.aggregate(await workers(pair.theirs)).metrics());
  expect(ours).toContain('h_seconds_count{model="plain"} 18');
});

it('escapes label values as prom-client does: backslash, double quote, newline', () => {
  expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  expect(labelText({ model: 'x"', endpoint: 'chat' })).toBe('model="x\\"",endpoint="chat"');
});
