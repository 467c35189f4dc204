import type { MetricValue, Registry } from 'prom-client';
import { braced, preformattedTextMatches, SampleLines } from './exposition';
import type { ForEach, Labels, MetricData } from './exposition';

/**
 * The cells of one histogram series: plain numbers the store adds to and a scrape reads.
 *
 * prom-client's `observe()` costs ≈ 0.85 µs (label validation, a hash, a lookup) per sample; here a sample is one
 * bucket search and three additions. Inter-token latency records many samples per streamed chunk.
 */
export class HistogramCells {
  /** Non-cumulative counts per bound, plus one slot for +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** One sample, in the bucket prom-client would choose (the first bound it does not exceed). */
  observe(value: number): void {
    const i = this.bucketOf(value);
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }

  /** Records `tokens` samples of `totalSeconds / tokens` each. */
  record(totalSeconds: number, tokens: number): void {
    const i = this.bucketOf(totalSeconds / tokens);
    this.counts[i] = (this.counts[i] as number) + tokens;
    this.sum += totalSeconds;
    this.count += tokens;
  }

  /** Adds another cell set with the same bounds (samples held before a request's model was known). */
  add(other: HistogramCells): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.sum += other.sum;
    this.count += other.count;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }

  private bucketOf(value: number): number {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    return i;
  }
}

/** One labelled series of a histogram: its labels, their rendered text (built once), and its cells. */
export interface HistogramSeries {
  readonly labels: Labels;
  readonly labelText: string;
  readonly cells: HistogramCells;
}

/**
 * A histogram read from {@link HistogramCells} at scrape time, with the shape prom-client's registry (and its
 * cluster `AggregatorRegistry`) expects of a metric. A series is shown once it has a sample, as in prom-client.
 */
export class HistogramMetric {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly lineNamesBySeries = new WeakMap<HistogramSeries, string[]>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly bounds: readonly number[],
    private readonly registry: Registry,
    private readonly eachSeries: ForEach<HistogramSeries>,
  ) {}

  /** prom-client's structured values: per series the buckets (labels `le` first), `+Inf`, `_sum`, `_count`. */
  get(): MetricData {
    return this.data(this.structuredValues(true));
  }

  /** The same samples as text lines for the registry to print (see {@link SampleLines}). */
  getForPromString(): MetricData {
    if (!preformattedTextMatches(this.registry, this.type)) return this.data(this.structuredValues(false));
    const lines = new SampleLines();
    const inf = this.bounds.length;
    this.eachSeries((series) => {
      const { cells } = series;
      if (cells.count === 0) return;
      const names = this.lineNames(series);
      let cumulative = 0;
      for (let i = 0; i < inf; i++) {
        cumulative += cells.counts[i] as number;
        lines.add(names[i] as string, cumulative);
      }
      lines.add(names[inf] as string, cells.count);
      lines.add(names[inf + 1] as string, cells.sum);
      lines.add(names[inf + 2] as string, cells.count);
    });
    return this.data(lines.values());
  }

  /**
   * The sample names of a series with their label parts (buckets, `+Inf`, `_sum`, `_count`), built at its first
   * scrape and kept. Each is one flat string (`join` makes one, where `+` and templates make a tree of the parts):
   * the registry's join walks every piece of every line, and that walk is most of what a scrape costs.
   */
  private lineNames(series: HistogramSeries): string[] {
    let names = this.lineNamesBySeries.get(series);
    if (names === undefined) {
      const { labelText } = series;
      const bucketTail = labelText === '' ? '}' : `,${labelText}}`;
      const labelPart = braced(labelText);
      names = [...this.bounds, '+Inf'].map((bound) => [this.name, '_bucket{le="', String(bound), '"', bucketTail].join(''));
      names.push([this.name, '_sum', labelPart].join(''), [this.name, '_count', labelPart].join(''));
      this.lineNamesBySeries.set(series, names);
    }
    return names;
  }

  reset(): void {
    this.eachSeries(({ cells }) => cells.reset());
  }

  /**
   * The values as prom-client's `Histogram` gives them: from `get()` (`splay`) with the series labels merged
   * after `le`, from `getForPromString()` with them apart as `sharedLabels`, which the registry prints after any
   * default labels (so the text with default labels is the same as prom-client's, label order included).
   */
  private structuredValues(splay: boolean): MetricValue<string>[] {
    const values: MetricValue<string>[] = [];
    const bucketName = `${this.name}_bucket`;
    const sumName = `${this.name}_sum`;
    const countName = `${this.name}_count`;
    this.eachSeries(({ labels, cells }) => {
      if (cells.count === 0) return;
      const labelled = (own: Record<string, string | number>): MetricValue<string>['labels'] => (splay ? { ...own, ...labels } : own);
      const shared = splay ? undefined : labels;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cells.counts[i] as number;
        values.push(sample(cumulative, bucketName, null, labelled({ le: this.bounds[i] as number }), shared));
      }
      values.push(sample(cells.count, bucketName, null, labelled({ le: '+Inf' }), shared));
      values.push(sample(cells.sum, sumName, undefined, labelled({}), shared));
      values.push(sample(cells.count, countName, undefined, labelled({}), shared));
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
