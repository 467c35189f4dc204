import { Counter, Gauge, Registry } from 'prom-client';
import type { Metric, MetricValue } from 'prom-client';
import type { ForEach, HistogramCounts, Labels, Tally } from './cells';
import { labelText, preRenderedTextMatches, SampleLines } from './text';

/** A metric's name, help and label names, as the definitions table and the user's extra labels make them. */
export interface MetricIdentity {
  name: string;
  help: string;
  labelNames: readonly string[];
}

/** A `collect()` that hands prom-client each tally changed since the last scrape. */
function collectChanged<M>(tallies: ForEach<Tally>, publish: (metric: M, tally: Tally) => void): (this: M) => void {
  return function collect(this: M) {
    tallies((tally) => {
      if (!tally.counted || tally.published === tally.value) return;
      publish(this, tally);
      tally.published = tally.value;
    });
  };
}

/**
 * A prom-client `Counter` whose series are the store's tallies, moved in by `collect()` when a scrape reads it: each
 * series is increased by what its tally gained since the last scrape, so a request costs no prom-client call.
 * `registry.resetMetrics()` resets the tallies with the counter.
 */
export class CollectedCounter extends Counter<string> {
  /** Unset while prom-client's constructor calls `reset()`. */
  private readonly tallies: ForEach<Tally> | undefined;
  /** Present only with the fast text path (see text.ts). */
  readonly getForPromString?: () => Promise<ScalarData>;

  constructor(identity: MetricIdentity, registry: Registry, tallies: ForEach<Tally>, fastText: boolean) {
    const increase = (counter: Counter<string>, tally: Tally): void =>
      counter.inc(tally.labels, Number.isNaN(tally.published) ? tally.value : tally.value - tally.published);
    super({ ...identity, registers: [registry], collect: collectChanged(tallies, increase) });
    this.tallies = tallies;
    if (fastText) this.getForPromString = () => scalarText(this, 'counter', identity, registry, tallies);
  }

  override reset(): void {
    super.reset();
    this.tallies?.((tally) => tally.reset());
  }
}

/**
 * A prom-client `Gauge` set from the store's tallies by `collect()`; `reset()` resets the tallies too, except for a
 * gauge of requests in flight (`inFlight`): those requests are still there, and will each take themselves off once.
 */
export class CollectedGauge extends Gauge<string> {
  private readonly tallies: ForEach<Tally> | undefined;
  private readonly inFlight: boolean | undefined;
  readonly getForPromString?: () => Promise<ScalarData>;

  constructor(identity: MetricIdentity, registry: Registry, tallies: ForEach<Tally>, fastText: boolean, inFlight = false) {
    const set = (gauge: Gauge<string>, tally: Tally): void => gauge.set(tally.labels, tally.value);
    super({ ...identity, registers: [registry], collect: collectChanged(tallies, set) });
    this.tallies = tallies;
    this.inFlight = inFlight;
    if (fastText) this.getForPromString = () => scalarText(this, 'gauge', identity, registry, tallies);
  }

  override reset(): void {
    super.reset();
    this.tallies?.((tally) => (this.inFlight === true ? tally.republish() : tally.reset()));
  }
}

type ScalarData = Awaited<ReturnType<Counter<string>['get']>>;

/**
 * A counter's or gauge's text as pre-rendered lines read from the tallies; where the registry would print them
 * otherwise (default labels, or a counter's `_total` in OpenMetrics), prom-client's own values.
 */
function scalarText(
  metric: Counter<string> | Gauge<string>,
  type: 'counter' | 'gauge',
  identity: MetricIdentity,
  registry: Registry,
  tallies: ForEach<Tally>,
): Promise<ScalarData> {
  if (!preRenderedTextMatches(registry) || (type === 'counter' && registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE)) {
    return metric.get();
  }
  const { name, help } = identity;
  const lines = new SampleLines();
  tallies((tally) => {
    if (!tally.counted) return;
    tally.lineName ??= identity.labelNames.length === 0 ? name : [name, '{', labelText(tally.labels), '}'].join('');
    lines.add(tally.lineName, tally.value);
  });
  return Promise.resolve({ name, help, type, aggregator: 'sum', values: lines.values() } as unknown as ScalarData);
}

/** What a metric's `get()` returns: the shape the registry, `getMetricsAsJSON()` and cluster aggregation read. */
interface MetricData {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: MetricValue<string>[];
}

/**
 * A histogram read from the store's {@link HistogramCounts} when a scrape asks. prom-client's `Histogram` can only
 * be fed one sample per `observe()` (inter-token latency records many per chunk), so this is a custom collector:
 * `get()` returns what prom-client's `Histogram.get()` returns for the same samples, and the registry formats it.
 * With a prom-client the fast text path was tested against, it also pre-renders its text (see text.ts).
 */
export class HistogramCollector {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  /** Present only with the fast text path. */
  readonly getForPromString?: () => MetricData;
  private readonly lineNamesBySeries = new WeakMap<HistogramCounts, string[]>();

  constructor(
    identity: MetricIdentity,
    readonly bounds: readonly number[],
    private readonly registry: Registry,
    private readonly eachSeries: ForEach<HistogramCounts>,
    fastText: boolean,
  ) {
    ({ name: this.name, help: this.help, labelNames: this.labelNames } = identity);
    if (fastText) this.getForPromString = () => this.textData();
    // prom-client's `Metric` type lists its own classes only; the registry itself needs just this object's shape.
    registry.registerMetric(this as unknown as Metric);
  }

  /** prom-client's structured values: per series the buckets (labels `le` first), `+Inf`, `_sum`, `_count`. */
  get(): MetricData {
    return this.data(this.structuredValues(true));
  }

  reset(): void {
    this.eachSeries((series) => series.reset());
  }

  private textData(): MetricData {
    if (!preRenderedTextMatches(this.registry)) return this.data(this.structuredValues(false));
    const lines = new SampleLines();
    const inf = this.bounds.length;
    this.eachSeries((series) => {
      if (series.count === 0) return;
      const names = this.lineNames(series);
      let cumulative = 0;
      for (let i = 0; i < inf; i++) {
        cumulative += series.counts[i] as number;
        lines.add(names[i] as string, cumulative);
      }
      lines.add(names[inf] as string, series.count);
      lines.add(names[inf + 1] as string, series.sum);
      lines.add(names[inf + 2] as string, series.count);
    });
    return this.data(lines.values());
  }

  /**
   * The sample names of a series with their label parts (buckets, `+Inf`, `_sum`, `_count`), built at its first
   * scrape and kept. Each is one flat string (`join` makes one, where `+` and templates make a tree of the parts):
   * the registry's join walks every piece of every line, and that walk is most of what a scrape costs.
   */
  private lineNames(series: HistogramCounts): string[] {
    let names = this.lineNamesBySeries.get(series);
    if (names === undefined) {
      const text = labelText(series.labels);
      const bucketTail = text === '' ? '}' : `,${text}}`;
      const labelPart = text === '' ? '' : ['{', text, '}'].join('');
      names = [...this.bounds, '+Inf'].map((bound) => [this.name, '_bucket{le="', String(bound), '"', bucketTail].join(''));
      names.push([this.name, '_sum', labelPart].join(''), [this.name, '_count', labelPart].join(''));
      this.lineNamesBySeries.set(series, names);
    }
    return names;
  }

  /**
   * The values as prom-client's `Histogram` gives them: from `get()` (`splay`) with the series labels merged
   * after `le`, for the text path with them apart as `sharedLabels`, which the registry prints after any default
   * labels (so the text with default labels is the same as prom-client's, label order included).
   */
  private structuredValues(splay: boolean): MetricValue<string>[] {
    const values: MetricValue<string>[] = [];
    const bucketName = `${this.name}_bucket`;
    const sumName = `${this.name}_sum`;
    const countName = `${this.name}_count`;
    this.eachSeries((series) => {
      if (series.count === 0) return;
      const { labels } = series;
      const labelled = (own: Record<string, string | number>): MetricValue<string>['labels'] => (splay ? { ...own, ...labels } : own);
      const shared = splay ? undefined : labels;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += series.counts[i] as number;
        values.push(sample(cumulative, bucketName, null, labelled({ le: this.bounds[i] as number }), shared));
      }
      values.push(sample(series.count, bucketName, null, labelled({ le: '+Inf' }), shared));
      values.push(sample(series.sum, sumName, undefined, labelled({}), shared));
      values.push(sample(series.count, countName, undefined, labelled({}), shared));
    });
    return values;
  }

  private data(values: MetricValue<string>[]): MetricData {
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

/** A value in the key order prom-client's `Histogram.get()` produces (it shows in `getMetricsAsJSON()`). */
function sample(
  value: number,
  metricName: string,
  exemplar: null | undefined,
  labels: MetricValue<string>['labels'],
  sharedLabels: Labels | undefined,
): MetricValue<string> {
  const result = { value, metricName, exemplar, labels } as MetricValue<string> & { sharedLabels?: Labels };
  if (sharedLabels !== undefined) result.sharedLabels = sharedLabels;
  return result;
}
