import type { Metric, Registry } from 'prom-client';
import type { HistogramName } from './buckets';
import { Calibration } from './calibration';
import { escapeLabelValue } from './exposition';
import type { ForEach, Labels } from './exposition';
import { HistogramCells, HistogramMetric } from './histogram-metric';
import type { HistogramSeries } from './histogram-metric';
import type { ErrorType } from './labels';
import { ModelLabels, UNKNOWN_MODEL } from './labels';
import { KeyedCells, ScalarCell, ScalarMetric } from './scalar-metric';

/** Metric name suffixes; the full name is `${prefix}_${suffix}`. */
export const METRIC_SUFFIXES = {
  outputTokens: 'output_tokens_total',
  requests: 'requests_total',
  requestsStarted: 'requests_started_total',
  inflightRequests: 'inflight_requests',
  activeRequests: 'active_requests',
  queuedRequests: 'queued_requests',
  disconnectedClients: 'disconnected_clients',
  modelCancellation: 'model_cancellation_total',
  requestDuration: 'request_duration_seconds',
  timeToFirstToken: 'time_to_first_token_seconds',
  interTokenLatency: 'inter_token_latency_seconds',
  inputSequenceTokens: 'input_sequence_tokens',
  outputSequenceTokens: 'output_sequence_tokens',
  cachedTokens: 'cached_tokens',
  inputTokens: 'input_tokens_total',
  reasoningTokens: 'reasoning_tokens_total',
  requestsFinished: 'requests_finished_total',
  outputTokensOvercount: 'output_tokens_overcount_total',
  outputTokensEstimated: 'output_tokens_estimated_total',
  parseErrors: 'parse_errors_total',
} as const;

export type RequestType = 'stream' | 'unary';

/**
 * The per-model numbers the hot path touches on every chunk. They are plain fields, moved into the metrics only
 * when a scrape reads them, so a chunk costs additions instead of labelled prom-client calls.
 */
export class ModelSeries {
  /** Output tokens not yet moved into the counter. */
  pendingOutputTokens = 0;
  /** Reasoning tokens not yet moved into the counter. */
  pendingReasoningTokens = 0;
  readonly interTokenLatency: HistogramCells;
  /** What this model's earlier streams taught about the default estimate (see calibration.ts). */
  readonly calibration = new Calibration();

  constructor(
    readonly model: string,
    interTokenLatencyBounds: readonly number[],
  ) {
    this.interTokenLatency = new HistogramCells(interTokenLatencyBounds);
  }
}

export interface RequestLabels {
  model: string;
  endpoint: string;
  requestType: RequestType;
}

export interface StoreSettings {
  registry: Registry;
  prefix: string;
  models: ReadonlySet<string> | undefined;
  maxModels: number;
  buckets: Record<HistogramName, number[]>;
}

function settingsKey(settings: StoreSettings): string {
  return JSON.stringify([settings.models === undefined ? null : [...settings.models].sort(), settings.maxModels, settings.buckets]);
}

// Symbol.for so that two copies of this package loaded in one process still find each other's metrics.
const STORE = Symbol.for('express-dynamo-metrics.store');

type WithStore = { [STORE]?: MetricsStore };

/**
 * Separates the endpoint and the reason in the key of a parse error's cell. Both come from the package's fixed
 * vocabularies, never from a client.
 */
const SEP = '\u0000';

/**
 * The counters of one model, endpoint and request type. A request finds them with two map lookups on those
 * strings (literals, whose hashes V8 keeps) rather than by a key joined from them, which would be a new string to
 * flatten and hash on every request (≈ 0.3 µs each here).
 */
class RequestKindCells {
  readonly started: ScalarCell;
  readonly cancelled: ScalarCell;
  /** `requests_total` by error type, `''` on success. */
  private readonly ended = new KeyedCells();

  constructor(private readonly labels: Labels) {
    this.started = new ScalarCell(labels);
    this.cancelled = new ScalarCell(labels);
  }

  endedCell(errorType: string): ScalarCell {
    return (
      this.ended.get(errorType) ??
      this.ended.create(errorType, { ...this.labels, status: errorType === '' ? 'success' : 'error', error_type: errorType })
    );
  }

  forEachEnded(visit: (cell: ScalarCell) => void): void {
    this.ended.forEach(visit);
  }
}

/**
 * Everything counted under one model label, as plain numbers per request instead of labelled prom-client calls
 * (≈ 15 per request at 0.4–0.9 µs each). The label text is escaped once, here, for every scrape to reuse.
 */
class ModelCells {
  readonly labelText: string;
  /** The numbers the hot path writes to directly. */
  readonly series: ModelSeries;

  readonly outputTokens: ScalarCell;
  readonly reasoningTokens: ScalarCell;
  readonly inputTokens: ScalarCell;
  readonly outputTokensOvercount: ScalarCell;
  readonly outputTokensEstimated: ScalarCell;
  readonly inflightRequests: ScalarCell;
  readonly activeRequests: ScalarCell;
  readonly queuedRequests: ScalarCell;
  /** `requests_finished_total` by finish reason. */
  readonly requestsFinished = new KeyedCells();
  /** The counters labelled by endpoint and request type too, by endpoint, then request type. */
  private readonly requestKinds = new Map<string, Map<string, RequestKindCells>>();

  readonly requestDuration: HistogramSeries;
  readonly timeToFirstToken: HistogramSeries;
  readonly interTokenLatency: HistogramSeries;
  readonly inputSequenceTokens: HistogramSeries;
  readonly outputSequenceTokens: HistogramSeries;
  readonly cachedTokens: HistogramSeries;

  constructor(
    readonly model: string,
    buckets: Record<HistogramName, number[]>,
  ) {
    const labels = { model };
    this.labelText = `model="${escapeLabelValue(model)}"`;
    this.series = new ModelSeries(model, buckets.interTokenLatency);
    this.outputTokens = new ScalarCell(labels);
    this.reasoningTokens = new ScalarCell(labels);
    this.inputTokens = new ScalarCell(labels);
    this.outputTokensOvercount = new ScalarCell(labels);
    this.outputTokensEstimated = new ScalarCell(labels);
    this.inflightRequests = new ScalarCell(labels);
    this.activeRequests = new ScalarCell(labels);
    this.queuedRequests = new ScalarCell(labels);
    const histogram = (cells: HistogramCells): HistogramSeries => ({ labels, labelText: this.labelText, cells });
    this.requestDuration = histogram(new HistogramCells(buckets.requestDuration));
    this.timeToFirstToken = histogram(new HistogramCells(buckets.timeToFirstToken));
    this.interTokenLatency = histogram(this.series.interTokenLatency);
    this.inputSequenceTokens = histogram(new HistogramCells(buckets.inputSequenceTokens));
    this.outputSequenceTokens = histogram(new HistogramCells(buckets.outputSequenceTokens));
    this.cachedTokens = histogram(new HistogramCells(buckets.cachedTokens));
  }

  requestKind(endpoint: string, requestType: RequestType): RequestKindCells {
    let byType = this.requestKinds.get(endpoint);
    if (byType === undefined) {
      byType = new Map();
      this.requestKinds.set(endpoint, byType);
    }
    let kind = byType.get(requestType);
    if (kind === undefined) {
      kind = new RequestKindCells({ model: this.model, endpoint, request_type: requestType });
      byType.set(requestType, kind);
    }
    return kind;
  }

  forEachRequestKind(visit: (kind: RequestKindCells) => void): void {
    for (const byType of this.requestKinds.values()) for (const kind of byType.values()) visit(kind);
  }

  /** The output-token counter's cell, with what the hot path counted since the last read moved in. */
  currentOutputTokens(): ScalarCell {
    if (this.series.pendingOutputTokens > 0) {
      this.outputTokens.add(this.series.pendingOutputTokens);
      this.series.pendingOutputTokens = 0;
    }
    return this.outputTokens;
  }

  /** The reasoning-token counter's cell, with what the hot path counted since the last read moved in. */
  currentReasoningTokens(): ScalarCell {
    if (this.series.pendingReasoningTokens > 0) {
      this.reasoningTokens.add(this.series.pendingReasoningTokens);
      this.series.pendingReasoningTokens = 0;
    }
    return this.reasoningTokens;
  }
}

/**
 * The metrics of one registry and prefix, and the only module that registers with prom-client (the metric objects
 * are in scalar-metric.ts and histogram-metric.ts, their text in exposition.ts). Request state calls its
 * domain methods, which add to plain numbers; the metric objects registered with prom-client read those numbers
 * when a scrape asks, so every scrape is exact and a request costs no prom-client call. Two middleware instances
 * on the same registry share one store (the first one's settings win).
 */
export class MetricsStore {
  readonly modelLabels: ModelLabels;
  /** Set on a response this store's middleware observes, so mounting it twice does not count twice. */
  readonly responseMark = Symbol('express-dynamo-metrics.observed');
  /** The settings this store was created with, to tell a second middleware that its own are not used. */
  readonly settingsKey: string;
  private readonly models = new Map<string, ModelCells>();
  private readonly buckets: Record<HistogramName, number[]>;
  private readonly disconnectedClients = new ScalarCell({}, true);
  private readonly parseErrors = new KeyedCells();

  /** The store for this registry and prefix, created and registered on first use. */
  static for(settings: StoreSettings): MetricsStore {
    const anchorName = `${settings.prefix}_${METRIC_SUFFIXES.outputTokens}`;
    const existing = settings.registry.getSingleMetric(anchorName) as (Metric & WithStore) | undefined;
    if (existing) {
      const store = existing[STORE];
      if (store) {
        if (store.settingsKey !== settingsKey(settings)) {
          process.emitWarning(
            `express-dynamo-metrics: a second dynamoMetrics() on the registry with prefix "${settings.prefix}" shares the first one's metrics, so its models, maxModels and buckets are ignored; give it its own registry or prefix to keep them`,
            { code: 'DYNAMO_METRICS_SHARED_SETTINGS' },
          );
        }
        return store;
      }
      throw new TypeError(
        `express-dynamo-metrics: a metric named "${anchorName}" is already registered by something else; pass another "prefix" or "registry"`,
      );
    }
    for (const suffix of Object.values(METRIC_SUFFIXES)) {
      const name = `${settings.prefix}_${suffix}`;
      if (settings.registry.getSingleMetric(name)) {
        throw new TypeError(
          `express-dynamo-metrics: a metric named "${name}" is already registered; pass another "prefix" or "registry"`,
        );
      }
    }
    return new MetricsStore(settings);
  }

  private constructor(settings: StoreSettings) {
    const { registry, prefix, buckets } = settings;
    const name = (suffix: string): string => `${prefix}_${suffix}`;
    const s = METRIC_SUFFIXES;
    this.modelLabels = new ModelLabels(settings.models, settings.maxModels);
    this.settingsKey = settingsKey(settings);
    this.buckets = buckets;

    const MODEL = ['model'];
    const REQUEST = ['model', 'endpoint', 'request_type'];
    const register = (metric: ScalarMetric | HistogramMetric): void => registry.registerMetric(metric as unknown as Metric);
    const counter = (suffix: string, help: string, labelNames: string[], eachCell: ForEach<ScalarCell>): ScalarMetric => {
      const metric = new ScalarMetric(name(suffix), help, 'counter', labelNames, registry, eachCell);
      register(metric);
      return metric;
    };
    const gauge = (suffix: string, help: string, labelNames: string[], eachCell: ForEach<ScalarCell>): void =>
      register(new ScalarMetric(name(suffix), help, 'gauge', labelNames, registry, eachCell));
    const histogram = (suffix: string, help: string, bounds: number[], series: (model: ModelCells) => HistogramSeries): void =>
      register(new HistogramMetric(name(suffix), help, MODEL, bounds, registry, this.eachModel(series)));

    // Registered first (the registry prints in registration order) and marked so that `MetricsStore.for` finds
    // the store through it.
    const outputTokens = counter(
      s.outputTokens,
      'Output tokens generated, counted as each streamed chunk is written to the client (unary: at body end)',
      MODEL,
      this.eachModel((model) => model.currentOutputTokens()),
    );
    (outputTokens as unknown as WithStore)[STORE] = this;
    counter(
      s.reasoningTokens,
      'Reasoning (thinking) tokens generated, a subset of output tokens, counted as they stream',
      MODEL,
      this.eachModel((model) => model.currentReasoningTokens()),
    );
    counter(
      s.requests,
      'LLM requests ended (finished, failed or aborted)',
      [...REQUEST, 'status', 'error_type'],
      this.eachRequestKind((kind, visit) => kind.forEachEnded(visit)),
    );
    counter(s.requestsStarted, 'LLM requests started', REQUEST, this.eachRequestKind((kind, visit) => visit(kind.started)));
    gauge(
      s.inflightRequests,
      'LLM requests in flight (deprecated in Dynamo; same as active_requests)',
      MODEL,
      this.eachModel((model) => model.inflightRequests),
    );
    gauge(s.activeRequests, 'LLM requests being served', MODEL, this.eachModel((model) => model.activeRequests));
    gauge(s.queuedRequests, 'LLM requests waiting for their first token', MODEL, this.eachModel((model) => model.queuedRequests));
    gauge(
      s.disconnectedClients,
      'Clients that went away before their response ended (never decremented, as in Dynamo)',
      [],
      (visit) => visit(this.disconnectedClients),
    );
    counter(
      s.modelCancellation,
      'LLM requests cancelled because the client disconnected',
      REQUEST,
      this.eachRequestKind((kind, visit) => visit(kind.cancelled)),
    );
    histogram(s.requestDuration, 'LLM request duration, from arrival to end', buckets.requestDuration, (model) => model.requestDuration);
    histogram(
      s.timeToFirstToken,
      'Time from request arrival to the first chunk with tokens written to the client (streaming)',
      buckets.timeToFirstToken,
      (model) => model.timeToFirstToken,
    );
    histogram(
      s.interTokenLatency,
      'Time between token-bearing chunks divided over the chunk\'s tokens (streaming)',
      buckets.interTokenLatency,
      (model) => model.interTokenLatency,
    );
    histogram(s.inputSequenceTokens, 'Prompt tokens per request', buckets.inputSequenceTokens, (model) => model.inputSequenceTokens);
    histogram(
      s.outputSequenceTokens,
      'Output tokens per request, at request end',
      buckets.outputSequenceTokens,
      (model) => model.outputSequenceTokens,
    );
    histogram(s.cachedTokens, 'Cached prompt tokens per request, when reported', buckets.cachedTokens, (model) => model.cachedTokens);
    counter(
      s.inputTokens,
      'Prompt tokens, counted when a request\'s prompt token count is first known',
      MODEL,
      this.eachModel((model) => model.inputTokens),
    );
    counter(
      s.requestsFinished,
      'LLM requests that ended with a finish reason',
      ['model', 'finish_reason'],
      (visit) => this.models.forEach((model) => model.requestsFinished.forEach(visit)),
    );
    counter(
      s.outputTokensOvercount,
      'Output tokens the live estimate counted beyond the final usage (a counter cannot go down)',
      MODEL,
      this.eachModel((model) => model.outputTokensOvercount),
    );
    counter(
      s.outputTokensEstimated,
      'Output tokens of requests that ended without a stated usage: the part of output_tokens_total that is an estimate',
      MODEL,
      this.eachModel((model) => model.outputTokensEstimated),
    );
    counter(
      s.parseErrors,
      'Malformed or oversized response events and bodies the middleware skipped',
      ['endpoint', 'reason'],
      (visit) => this.parseErrors.forEach(visit),
    );
  }

  /** The hot-path cells of a model label, created on first use (bounded by the model label cap). */
  seriesFor(model: string): ModelSeries {
    return this.cellsOf(model).series;
  }

  private cellsOf(model: string): ModelCells {
    let cells = this.models.get(model);
    if (cells === undefined) {
      cells = new ModelCells(model, this.buckets);
      this.models.set(model, cells);
    }
    return cells;
  }

  /** One item per model (`pick` chooses which), in the order the models were first seen. */
  private eachModel<T>(pick: (model: ModelCells) => T): ForEach<T> {
    return (visit) => {
      for (const model of this.models.values()) visit(pick(model));
    };
  }

  /** The cells of one counter labelled by endpoint and request type: `pick` visits them in each model's kinds. */
  private eachRequestKind(pick: (kind: RequestKindCells, visit: (cell: ScalarCell) => void) => void): ForEach<ScalarCell> {
    return (visit) => {
      for (const model of this.models.values()) model.forEachRequestKind((kind) => pick(kind, visit));
    };
  }

  requestInFlight(model: string, delta: 1 | -1, queued: boolean): void {
    const cells = this.cellsOf(model);
    cells.inflightRequests.add(delta);
    cells.activeRequests.add(delta);
    if (queued) cells.queuedRequests.add(delta);
  }

  requestStarted(labels: RequestLabels): void {
    this.cellsOf(labels.model).requestKind(labels.endpoint, labels.requestType).started.add(1);
  }

  /** Cells for tokens whose model label is not known yet; never scraped until added to a model's series. */
  detachedSeries(): ModelSeries {
    return new ModelSeries(UNKNOWN_MODEL, this.buckets.interTokenLatency);
  }

  /** The request is no longer waiting for its first token (its gauges sit under `gaugeModel`). */
  firstToken(gaugeModel: string): void {
    this.cellsOf(gaugeModel).queuedRequests.add(-1);
  }

  observeTimeToFirstToken(model: string, secondsSinceArrival: number): void {
    this.cellsOf(model).timeToFirstToken.cells.observe(secondsSinceArrival);
  }

  promptTokens(model: string, inputTokens: number, cachedTokens: number | undefined): void {
    const cells = this.cellsOf(model);
    cells.inputTokens.add(inputTokens);
    cells.inputSequenceTokens.cells.observe(inputTokens);
    if (cachedTokens !== undefined) cells.cachedTokens.cells.observe(cachedTokens);
  }

  overcount(model: string, tokens: number): void {
    this.cellsOf(model).outputTokensOvercount.add(tokens);
  }

  /** A request ended without stated usage: all of its counted output tokens are estimated. */
  estimatedOutput(model: string, tokens: number): void {
    this.cellsOf(model).outputTokensEstimated.add(tokens);
  }

  parseError(endpoint: string, reason: string): void {
    const key = endpoint + SEP + reason;
    (this.parseErrors.get(key) ?? this.parseErrors.create(key, { endpoint, reason })).add(1);
  }

  requestEnded(
    labels: RequestLabels,
    outcome: {
      errorType: ErrorType | undefined;
      clientDisconnected: boolean;
      durationSeconds: number;
      outputTokens: number;
      finishReason: string | undefined;
    },
  ): void {
    const { model, endpoint, requestType } = labels;
    const cells = this.cellsOf(model);
    const kind = cells.requestKind(endpoint, requestType);
    kind.endedCell(outcome.errorType ?? '').add(1);
    if (outcome.clientDisconnected) {
      this.disconnectedClients.add(1);
      kind.cancelled.add(1);
    }
    cells.requestDuration.cells.observe(outcome.durationSeconds);
    if (outcome.outputTokens > 0) cells.outputSequenceTokens.cells.observe(outcome.outputTokens);
    const reason = outcome.finishReason;
    if (reason !== undefined) {
      (cells.requestsFinished.get(reason) ?? cells.requestsFinished.create(reason, { model, finish_reason: reason })).add(1);
    }
  }
}
