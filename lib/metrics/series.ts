import { Calibration } from '../counting/calibration';
import { HISTOGRAM_NAMES } from './definitions';
import type { HistogramName } from './definitions';
import type { HistogramBounds } from './buckets';
import { HistogramCounts, Tally, TallyMap } from './cells';
import type { Labels } from './cells';
import type { ExtraLabelValues } from './extra-labels';

export type RequestType = 'stream' | 'unary';

/** The counters of one model, endpoint and request type (and extra-label values). */
export class RequestKindTallies {
  readonly started: Tally;
  readonly cancelled: Tally;
  /** `requests_total` by error type, `''` on success. */
  readonly ended = new TallyMap();

  constructor(
    private readonly model: string,
    private readonly endpoint: string,
    private readonly requestType: RequestType,
    private readonly extra: Readonly<Labels>,
  ) {
    const labels = { model, endpoint, request_type: requestType, ...extra };
    this.started = new Tally(labels);
    this.cancelled = new Tally(labels);
  }

  endedTally(errorType: string): Tally {
    return this.ended.get(errorType, () => ({
      model: this.model,
      endpoint: this.endpoint,
      request_type: this.requestType,
      status: errorType === '' ? 'success' : 'error',
      error_type: errorType,
      ...this.extra,
    }));
  }
}

/**
 * The counters of one model label and one combination of extra-label values. The hot path adds to its pending
 * fields and to the model's inter-token latency; a scrape moves the pending numbers into the tallies.
 */
export class CounterSet {
  /** Output tokens not yet moved into the counter. */
  pendingOutputTokens = 0;
  /** Reasoning tokens not yet moved into the counter. */
  pendingReasoningTokens = 0;

  readonly outputTokens: Tally;
  readonly reasoningTokens: Tally;
  readonly inputTokens: Tally;
  readonly outputTokensOvercount: Tally;
  readonly outputTokensEstimated: Tally;
  /** `requests_finished_total` by finish reason. */
  readonly requestsFinished = new TallyMap();
  /** By endpoint, then request type: two lookups on strings V8 has hashed, not a key string built per request. */
  private readonly requestKinds = new Map<string, Map<string, RequestKindTallies>>();

  constructor(
    readonly model: string,
    private readonly extra: Readonly<Labels>,
    /** The model's histogram (held requests get one of their own, added to the model's later). */
    readonly interTokenLatency: HistogramCounts,
    /** What the model's earlier streams taught about the default estimate (one per model, see calibration.ts). */
    readonly calibration: Calibration,
  ) {
    const labels = { model, ...extra };
    this.outputTokens = new Tally(labels);
    this.reasoningTokens = new Tally(labels);
    this.inputTokens = new Tally(labels);
    this.outputTokensOvercount = new Tally(labels);
    this.outputTokensEstimated = new Tally(labels);
  }

  requestKind(endpoint: string, requestType: RequestType): RequestKindTallies {
    let byType = this.requestKinds.get(endpoint);
    if (byType === undefined) {
      byType = new Map();
      this.requestKinds.set(endpoint, byType);
    }
    let kind = byType.get(requestType);
    if (kind === undefined) {
      kind = new RequestKindTallies(this.model, endpoint, requestType, this.extra);
      byType.set(requestType, kind);
    }
    return kind;
  }

  finishedTally(reason: string): Tally {
    return this.requestsFinished.get(reason, () => ({ model: this.model, finish_reason: reason, ...this.extra }));
  }

  forEachRequestKind(visit: (kind: RequestKindTallies) => void): void {
    for (const byType of this.requestKinds.values()) for (const kind of byType.values()) visit(kind);
  }

  /** Output tokens a chunk added, and the reasoning part of them: plain additions, moved in at the next scrape. */
  addTokens(output: number, reasoning: number): void {
    this.pendingOutputTokens += output;
    this.pendingReasoningTokens += reasoning;
  }

  /** Takes in what another set counted (tokens held before a request's model was known). */
  absorb(held: CounterSet): void {
    this.addTokens(held.pendingOutputTokens, held.pendingReasoningTokens);
    this.interTokenLatency.add(held.interTokenLatency);
  }

  /** Moves what the hot path counted since the last scrape into the tallies. */
  settle(): void {
    if (this.pendingOutputTokens > 0) {
      this.outputTokens.add(this.pendingOutputTokens);
      this.pendingOutputTokens = 0;
    }
    if (this.pendingReasoningTokens > 0) {
      this.reasoningTokens.add(this.pendingReasoningTokens);
      this.pendingReasoningTokens = 0;
    }
  }
}

/** Everything counted under one model label: its gauges, its histograms, and its counters per extra-label values. */
export class ModelMetrics {
  readonly inflightRequests: Tally;
  readonly activeRequests: Tally;
  readonly queuedRequests: Tally;
  readonly histograms: Readonly<Record<HistogramName, HistogramCounts>>;
  /** Keyed by the extra-label values' key (`''` without extra labels). */
  readonly counterSets = new Map<string, CounterSet>();
  readonly calibration = new Calibration();

  constructor(
    readonly model: string,
    bounds: HistogramBounds,
  ) {
    const labels = { model };
    this.inflightRequests = new Tally(labels);
    this.activeRequests = new Tally(labels);
    this.queuedRequests = new Tally(labels);
    this.histograms = Object.fromEntries(HISTOGRAM_NAMES.map((name) => [name, new HistogramCounts(bounds[name], labels)])) as Record<
      HistogramName,
      HistogramCounts
    >;
  }

  counterSet(extra: ExtraLabelValues): CounterSet {
    let set = this.counterSets.get(extra.key);
    if (set === undefined) {
      set = new CounterSet(this.model, extra.labels, this.histograms.interTokenLatency, this.calibration);
      this.counterSets.set(extra.key, set);
    }
    return set;
  }
}
