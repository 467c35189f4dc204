import type { MetricValue } from 'prom-client';

/**
 * Inter-token-latency cells of one model: plain numbers the hot path adds to and a scrape reads.
 *
 * A chunk of n tokens observes gap/n n times; here that is one bucket search and three additions, where
 * prom-client's `observe()` would cost ≈ 0.85 µs per token (see ecosystem.md), on every streamed chunk.
 */
export class LatencyCells {
  /** Non-cumulative counts per bound, plus one slot for +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records `tokens` samples of `totalSeconds / tokens` each. */
  record(totalSeconds: number, tokens: number): void {
    const perToken = totalSeconds / tokens;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && perToken > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + tokens;
    this.sum += totalSeconds;
    this.count += tokens;
  }

  /** Adds another cell set with the same bounds (samples held before a request's model was known). */
  add(other: LatencyCells): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = (this.counts[i] as number) + (other.counts[i] as number);
    this.sum += other.sum;
    this.count += other.count;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * A histogram metric read from {@link LatencyCells} at scrape time. It has the shape prom-client's registry (and
 * its cluster `AggregatorRegistry`) expects of a metric: `name`, `help`, `type`, `aggregator`, `get()`, `reset()`.
 */
export class TokenLatencyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames = ['model'];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
    private readonly cellsByModel: () => Iterable<[string, LatencyCells]>,
  ) {}

  get(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValue<string>[] } {
    const values: MetricValue<string>[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const [model, cells] of this.cellsByModel()) {
      if (cells.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cells.counts[i] as number;
        values.push({ labels: { le: this.bounds[i] as number, model }, value: cumulative, metricName: bucketName } as MetricValue<string>);
      }
      values.push({ labels: { le: '+Inf', model }, value: cells.count, metricName: bucketName } as MetricValue<string>);
      values.push({ labels: { model }, value: cells.sum, metricName: `${this.name}_sum` } as MetricValue<string>);
      values.push({ labels: { model }, value: cells.count, metricName: `${this.name}_count` } as MetricValue<string>);
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const [, cells] of this.cellsByModel()) cells.reset();
  }
}
