/**
 * The collected metrics must print exactly what prom-client's own Counter, Gauge and Histogram print for the same
 * updates: same lines, label order, escaping and values, in Prometheus text, in OpenMetrics, with default labels,
 * after a reset, and through cluster aggregation; for histograms on both text paths (pre-rendered for the tested
 * prom-client versions, prom-client's formatter otherwise).
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { HistogramCounts, Tally, TallyMap } from '../../lib/metrics/cells';
import { CollectedCounter, CollectedGauge, HistogramCollector } from '../../lib/metrics/collectors';
import { escapeLabelValue, fastTextSupported, labelText } from '../../lib/metrics/text';
import { registryOf } from '../support/registries';

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
function histograms(pair: Pair, fastText: boolean): void {
  const series = MODELS.map((model) => new HistogramCounts(BOUNDS, { model }));
  const reference = new Histogram({ name: 'h_seconds', help: 'a "help"\\ text', labelNames: ['model'], buckets: BOUNDS, registers: [pair.theirs] });
  const identity = { name: 'h_seconds', help: 'a "help"\\ text', labelNames: ['model'] };
  new HistogramCollector(identity, BOUNDS, pair.ours, (visit) => series.forEach(visit), fastText);
  // The last model gets no sample: neither prints it.
  MODELS.slice(0, -1).forEach((model, i) => {
    for (const sample of SAMPLES.slice(i)) {
      reference.observe({ model }, sample);
      series[i]?.observe(sample);
    }
  });
}

/** A counter with two labels (one series counted by 0, one never counted) and a gauge that returns to 0. */
function scalars(pair: Pair, fastText: boolean): { scrapeThenCount: () => void } {
  const keyed = new TallyMap();
  const tally = (model: string, endpoint: string): Tally => keyed.get(`${model}\u0000${endpoint}`, () => ({ model, endpoint }));
  new CollectedCounter({ name: 'c_total', help: 'counted', labelNames: ['model', 'endpoint'] }, pair.ours, (visit) => keyed.forEach(visit), fastText);
  const reference = new Counter({ name: 'c_total', help: 'counted', labelNames: ['model', 'endpoint'], registers: [pair.theirs] });
  MODELS.forEach((model, i) => {
    for (const endpoint of ['chat', 'responses']) {
      tally(model, endpoint).add(i);
      reference.inc({ model, endpoint }, i);
    }
  });
  tally('never', 'chat');

  const tallies = MODELS.map((model) => new Tally({ model }));
  new CollectedGauge({ name: 'g', help: 'gauged', labelNames: ['model'] }, pair.ours, (visit) => tallies.forEach(visit), fastText);
  const referenceGauge = new Gauge({ name: 'g', help: 'gauged', labelNames: ['model'], registers: [pair.theirs] });
  MODELS.forEach((model, i) => {
    tallies[i]?.add(1);
    referenceGauge.inc({ model }, 1);
    if (i % 2 === 0) {
      tallies[i]?.add(-1);
      referenceGauge.dec({ model });
    }
  });

  const single = new Tally({}, true);
  new CollectedGauge({ name: 'u', help: 'no labels', labelNames: [] }, pair.ours, (visit) => visit(single), fastText);
  const referenceUnlabelled = new Gauge({ name: 'u', help: 'no labels', registers: [pair.theirs] });
  single.add(2);
  referenceUnlabelled.inc(2);
  return {
    scrapeThenCount: () => {
      tally('plain', 'chat').add(5);
      reference.inc({ model: 'plain', endpoint: 'chat' }, 5);
      tallies[0]?.add(-3);
      referenceGauge.dec({ model: MODELS[0] as string }, 3);
    },
  };
}

/** Sample lines with their labels sorted, for the one difference the public path allows (label order). */
function sortedLabels(text: string): string {
  return text.replace(/\{([^}]*)\}/g, (_match, labels: string) => `{${labels.split(/,(?=[a-zA-Z_]+=")/).sort().join(',')}}`);
}

describe.each([
  { path: 'fast text', fastText: true },
  { path: 'public', fastText: false },
])('the collected metrics print what prom-client prints ($path path)', ({ fastText }) => {
  describe.each(FLAVOURS)('$name', ({ name, registry }) => {
    let pair: Pair;
    let later: () => void;
    beforeEach(() => {
      pair = { ours: registry(), theirs: registry() };
      histograms(pair, fastText);
      later = scalars(pair, fastText).scrapeThenCount;
    });

    /** Byte for byte, except that prom-client's formatter puts a histogram's default labels after `le` only for its own Histogram. */
    const expectSameText = (ours: string, theirs: string): void => {
      if (!fastText && name === 'default labels') {
        expect(sortedLabels(ours)).toBe(sortedLabels(theirs));
      } else {
        expect(ours).toBe(theirs);
      }
    };

    it('in the text exposition, before and after more counting', async () => {
      const text = await pair.ours.metrics();
      expectSameText(text, await pair.theirs.metrics());
      // Rendering twice changes nothing (an OpenMetrics registry renames counters as it renders).
      expect(await pair.ours.metrics()).toBe(text);
      expect(text).toContain('we\\"ird\\\\mo\\ndel');
      later();
      expectSameText(await pair.ours.metrics(), await pair.theirs.metrics());
    });

    it('one metric at a time (getSingleMetricAsString)', async () => {
      for (const metric of ['h_seconds', 'c_total', 'g', 'u']) {
        expectSameText(await pair.ours.getSingleMetricAsString(metric), await pair.theirs.getSingleMetricAsString(metric));
      }
    });

    it('as JSON (getMetricsAsJSON), which cluster workers send', async () => {
      expect(await pair.ours.getMetricsAsJSON()).toEqual(await pair.theirs.getMetricsAsJSON());
    });

    it('after resetMetrics(): labelled series gone, the unlabelled gauge at 0, counting again from 0', async () => {
      await pair.ours.metrics();
      pair.ours.resetMetrics();
      pair.theirs.resetMetrics();
      const text = await pair.ours.metrics();
      expect(text).toBe(await pair.theirs.metrics());
      expect(text).not.toContain('plain');
      expect(text).toMatch(/^u(\{.*\})? 0$/m);
      later();
      expectSameText(await pair.ours.metrics(), await pair.theirs.metrics());
    });
  });

  it('aggregates across cluster workers as prom-client metrics do', async () => {
    const pair: Pair = { ours: new Registry(), theirs: new Registry() };
    histograms(pair, fastText);
    scalars(pair, fastText);
    const workers = async (registry: Registry): Promise<object[]> => [await registry.getMetricsAsJSON(), await registry.getMetricsAsJSON()];
    const ours = await AggregatorRegistry.aggregate(await workers(pair.ours)).metrics();
    expect(ours).toBe(await AggregatorRegistry.aggregate(await workers(pair.theirs)).metrics());
    expect(ours).toContain('h_seconds_count{model="plain"} 18');
  });
});

it('takes the fast text path only with the prom-client versions it was tested against', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { version } = require('prom-client/package.json') as { version: string };
  expect(fastTextSupported).toBe(/^15\.1\.\d+$/.test(version));
  const registry = new Registry();
  const identity = { name: 'h', help: 'h', labelNames: ['model'] };
  expect(typeof new HistogramCollector(identity, BOUNDS, registry, () => undefined, true).getForPromString).toBe('function');
  expect(new HistogramCollector({ ...identity, name: 'h2' }, BOUNDS, registry, () => undefined, false).getForPromString).toBeUndefined();
});

it('escapes label values as prom-client does: backslash, double quote, newline', () => {
  expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  expect(labelText({ model: 'x"', endpoint: 'chat' })).toBe('model="x\\"",endpoint="chat"');
});
