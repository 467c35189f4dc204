/**
 * The plain numbers behind every series. The store adds to them per request (the hot path per chunk); a scrape
 * reads them. Each knows its labels, built once when the series is first counted.
 */

export type Labels = Record<string, string>;

/** One series of a counter or gauge. */
export class Tally {
  value = 0;
  /** Shown at all: as in prom-client, a labelled series exists from its first update (even by 0) until a reset. */
  counted: boolean;
  /** What the registry's metric holds of this series: a counter takes only the increase since (NaN: nothing yet). */
  published = Number.NaN;
  /** The sample name with its rendered labels, for the fast text path; built at the first scrape. */
  lineName: string | undefined;

  constructor(
    readonly labels: Labels,
    /** A series without labels always exists (prom-client shows it at 0 from the start and after a reset). */
    private readonly countedAtZero = false,
  ) {
    this.counted = countedAtZero;
  }

  add(delta: number): void {
    this.value += delta;
    this.counted = true;
  }

  reset(): void {
    this.value = 0;
    this.counted = this.countedAtZero;
    this.published = Number.NaN;
  }

  /** The registry's metric was reset, not what this tally counts: shown again, when it is not 0, at the next scrape. */
  republish(): void {
    this.counted = this.countedAtZero || this.value !== 0;
    this.published = Number.NaN;
  }
}

/** Tallies keyed by one label value (an error type, a finish reason), created on first use. */
export class TallyMap {
  private readonly tallies = new Map<string, Tally>();

  /** The tally of `key`; `labels` builds its label set the first time only. */
  get(key: string, labels: (key: string) => Labels): Tally {
    let tally = this.tallies.get(key);
    if (tally === undefined) {
      tally = new Tally(labels(key));
      this.tallies.set(key, tally);
    }
    return tally;
  }

  forEach(visit: (tally: Tally) => void): void {
    for (const tally of this.tallies.values()) visit(tally);
  }
}

/**
 * One series of a histogram: non-cumulative counts per bound plus one for +Inf. A sample is a bucket search and
 * three additions, where prom-client's `observe()` validates labels and hashes them per sample; inter-token
 * latency records many samples per streamed chunk.
 */
export class HistogramCounts {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly bounds: readonly number[],
    readonly labels: Labels = {},
  ) {
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

  /** Adds another series with the same bounds (samples held before a request's model was known). */
  add(other: HistogramCounts): void {
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

/**
 * How a metric reaches its series: it passes a visitor, the store calls it once per series. (A callback rather
 * than an iterable: generators and iterator objects cost more per series than formatting its line.)
 */
export type ForEach<T> = (visit: (item: T) => void) => void;
