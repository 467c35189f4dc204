import type { MetricValue, Registry } from 'prom-client';
import { braced, preformatted, preformattedTextMatches, sampleValue } from './exposition';
import type { Labels, MetricData } from './exposition';

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

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    readonly bounds: readonly number[],
    private readonly registry: Registry,
    private readonly series: () => Iterable<HistogramSeries>,
  ) {}

  /** prom-client's structured values: per series the buckets (labels `le` first), `+Inf`, `_sum`, `_count`. */
  get(): MetricData {
    return this.data(this.structuredValues(true));
  }

  /**
   * The same samples as text, for the registry to print. Each series goes out as one pre-formatted value: its
   * `metricName` holds the bucket and `_sum` lines, complete, and the `_count` line's name; the registry appends
   * the count. Per-line values would cost the registry's formatter ≈ 0.4 µs a line (4 ms for 100 models).
   */
  getForPromString(): MetricData {
    if (!preformattedTextMatches(this.registry, this.type)) return this.data(this.structuredValues(false));
    const values: MetricValue<string>[] = [];
    const bucketHeads = [...this.bounds, '+Inf'].map((bound) => `${this.name}_bucket{le="${bound}"`);
    const sumName = `${this.name}_sum`;
    const countName = `${this.name}_count`;
    for (const { labelText, cells } of this.series()) {
      if (cells.count === 0) continue;
      const bucketTail = labelText === '' ? '}' : `,${labelText}}`;
      const labelPart = braced(labelText);
      let text = '';
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cells.counts[i] as number;
        text += `${bucketHeads[i] as string}${bucketTail} ${sampleValue(cumulative)}\n`;
      }
      text += `${bucketHeads[this.bounds.length] as string}${bucketTail} ${sampleValue(cells.count)}\n`;
      text += `${sumName}${labelPart} ${sampleValue(cells.sum)}\n`;
      values.push(preformatted(countName + labelPart, cells.count, text));
    }
    return this.data(values);
  }

  reset(): void {
    for (const { cells } of this.series()) cells.reset();
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
    for (const { labels, cells } of this.series()) {
      if (cells.count === 0) continue;
      const own = (le?: number | string): MetricValue<string>['labels'] =>
        le === undefined ? (splay ? { ...labels } : {}) : splay ? { le, ...labels } : { le };
      const shared = splay ? undefined : labels;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cells.counts[i] as number;
        values.push(sample(cumulative, bucketName, null, own(this.bounds[i]), shared));
      }
      values.push(sample(cells.count, bucketName, null, own('+Inf'), shared));
      values.push(sample(cells.sum, sumName, undefined, own(), shared));
      values.push(sample(cells.count, countName, undefined, own(), shared));
    }
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
