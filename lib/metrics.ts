import { Counter, Gauge, Histogram } from 'prom-client';
import type { Metric, Registry } from 'prom-client';
import type { HistogramName } from './buckets';
import type { ErrorType } from './labels';
import { ModelLabels, UNKNOWN_MODEL } from './labels';
import { LatencyCells, TokenLatencyHistogram } from './token-latency-histogram';

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
  parseErrors: 'parse_errors_total',
} as const;

export type RequestType = 'stream' | 'unary';

/**
 * The per-model numbers the hot path touches on every chunk. They are plain fields, moved into prom-client only
 * when a scrape collects them, so a chunk costs additions instead of labelled prom-client calls.
 */
export class ModelSeries {
  /** Output tokens not yet moved into the counter. */
  pendingOutputTokens = 0;
  /** Reasoning tokens not yet moved into the counter. */
  pendingReasoningTokens = 0;
  readonly interTokenLatency: LatencyCells;

  constructor(
    readonly model: string,
    interTokenLatencyBounds: readonly number[],
  ) {
    this.interTokenLatency = new LatencyCells(interTokenLatencyBounds);
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
 * The metrics of one registry and prefix: the only module that touches prom-client. Request state calls its
 * domain methods; two middleware instances on the same registry share one store (the first one's settings win).
 */
export class MetricsStore {
  readonly modelLabels: ModelLabels;
  /** Set on a response this store's middleware observes, so mounting it twice does not count twice. */
  readonly responseMark = Symbol('express-dynamo-metrics.observed');
  /** The settings this store was created with, to tell a second middleware that its own are not used. */
  readonly settingsKey: string;
  private readonly series = new Map<string, ModelSeries>();
  private readonly interTokenLatencyBounds: readonly number[];

  private readonly outputTokens: Counter<'model'>;
  private readonly reasoningTokens: Counter<'model'>;
  private readonly requests: Counter<'model' | 'endpoint' | 'request_type' | 'status' | 'error_type'>;
  private readonly requestsStarted: Counter<'model' | 'endpoint' | 'request_type'>;
  private readonly inflightRequests: Gauge<'model'>;
  private readonly activeRequests: Gauge<'model'>;
  private readonly queuedRequests: Gauge<'model'>;
  private readonly disconnectedClients: Gauge;
  private readonly modelCancellation: Counter<'model' | 'endpoint' | 'request_type'>;
  private readonly requestDuration: Histogram<'model'>;
  private readonly timeToFirstToken: Histogram<'model'>;
  private readonly inputSequenceTokens: Histogram<'model'>;
  private readonly outputSequenceTokens: Histogram<'model'>;
  private readonly cachedTokens: Histogram<'model'>;
  private readonly inputTokens: Counter<'model'>;
  private readonly requestsFinished: Counter<'model' | 'finish_reason'>;
  private readonly outputTokensOvercount: Counter<'model'>;
  private readonly parseErrors: Counter<'endpoint' | 'reason'>;

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
    const registers = [registry];
    const name = (suffix: string): string => `${prefix}_${suffix}`;
    const s = METRIC_SUFFIXES;
    this.modelLabels = new ModelLabels(settings.models, settings.maxModels);
    this.settingsKey = settingsKey(settings);
    this.interTokenLatencyBounds = buckets.interTokenLatency;

    // Registered first so that `MetricsStore.for` finds the store through it.
    this.outputTokens = new Counter({
      name: name(s.outputTokens),
      help: 'Output tokens generated, counted as each streamed chunk is written to the client (unary: at body end)',
      labelNames: ['model'],
      registers,
      collect: () => this.flushPending(),
    });
    (this.outputTokens as unknown as WithStore)[STORE] = this;
    this.alsoResetPending(this.outputTokens, (series) => (series.pendingOutputTokens = 0));
    this.reasoningTokens = new Counter({
      name: name(s.reasoningTokens),
      help: 'Reasoning (thinking) tokens generated, a subset of output tokens, counted as they stream',
      labelNames: ['model'],
      registers,
      collect: () => this.flushPending(),
    });
    this.alsoResetPending(this.reasoningTokens, (series) => (series.pendingReasoningTokens = 0));
    this.requests = new Counter({
      name: name(s.requests),
      help: 'LLM requests ended (finished, failed or aborted)',
      labelNames: ['model', 'endpoint', 'request_type', 'status', 'error_type'],
      registers,
    });
    this.requestsStarted = new Counter({
      name: name(s.requestsStarted),
      help: 'LLM requests started',
      labelNames: ['model', 'endpoint', 'request_type'],
      registers,
    });
    this.inflightRequests = new Gauge({
      name: name(s.inflightRequests),
      help: 'LLM requests in flight (deprecated in Dynamo; same as active_requests)',
      labelNames: ['model'],
      registers,
    });
    this.activeRequests = new Gauge({
      name: name(s.activeRequests),
      help: 'LLM requests being served',
      labelNames: ['model'],
      registers,
    });
    this.queuedRequests = new Gauge({
      name: name(s.queuedRequests),
      help: 'LLM requests waiting for their first token',
      labelNames: ['model'],
      registers,
    });
    this.disconnectedClients = new Gauge({
      name: name(s.disconnectedClients),
      help: 'Clients that went away before their response ended (never decremented, as in Dynamo)',
      registers,
    });
    this.modelCancellation = new Counter({
      name: name(s.modelCancellation),
      help: 'LLM requests cancelled because the client disconnected',
      labelNames: ['model', 'endpoint', 'request_type'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: name(s.requestDuration),
      help: 'LLM request duration, from arrival to end',
      labelNames: ['model'],
      buckets: buckets.requestDuration,
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: name(s.timeToFirstToken),
      help: 'Time from request arrival to the first chunk with tokens written to the client (streaming)',
      labelNames: ['model'],
      buckets: buckets.timeToFirstToken,
      registers,
    });
    const interTokenLatency = new TokenLatencyHistogram(
      name(s.interTokenLatency),
      'Time between token-bearing chunks divided over the chunk\'s tokens (streaming)',
      buckets.interTokenLatency,
      () => this.latencyCells(),
    );
    registry.registerMetric(interTokenLatency as unknown as Metric);
    this.inputSequenceTokens = new Histogram({
      name: name(s.inputSequenceTokens),
      help: 'Prompt tokens per request',
      labelNames: ['model'],
      buckets: buckets.inputSequenceTokens,
      registers,
    });
    this.outputSequenceTokens = new Histogram({
      name: name(s.outputSequenceTokens),
      help: 'Output tokens per request, at request end',
      labelNames: ['model'],
      buckets: buckets.outputSequenceTokens,
      registers,
    });
    this.cachedTokens = new Histogram({
      name: name(s.cachedTokens),
      help: 'Cached prompt tokens per request, when reported',
      labelNames: ['model'],
      buckets: buckets.cachedTokens,
      registers,
    });
    this.inputTokens = new Counter({
      name: name(s.inputTokens),
      help: 'Prompt tokens, counted when a request\'s prompt token count is first known',
      labelNames: ['model'],
      registers,
    });
    this.requestsFinished = new Counter({
      name: name(s.requestsFinished),
      help: 'LLM requests that ended with a finish reason',
      labelNames: ['model', 'finish_reason'],
      registers,
    });
    this.outputTokensOvercount = new Counter({
      name: name(s.outputTokensOvercount),
      help: 'Output tokens the live estimate counted beyond the final usage (a counter cannot go down)',
      labelNames: ['model'],
      registers,
    });
    this.parseErrors = new Counter({
      name: name(s.parseErrors),
      help: 'Malformed or oversized response events and bodies the middleware skipped',
      labelNames: ['endpoint', 'reason'],
      registers,
    });
  }

  /** The hot-path cells of a model label, created on first use (bounded by the model label cap). */
  seriesFor(model: string): ModelSeries {
    let series = this.series.get(model);
    if (series === undefined) {
      series = new ModelSeries(model, this.interTokenLatencyBounds);
      this.series.set(model, series);
    }
    return series;
  }

  /** `registry.resetMetrics()` must also drop tokens counted but not yet moved into the counter. */
  private alsoResetPending(counter: Counter<'model'>, zero: (series: ModelSeries) => void): void {
    const reset = counter.reset.bind(counter);
    counter.reset = () => {
      for (const series of this.series.values()) zero(series);
      reset();
    };
  }

  private *latencyCells(): Iterable<[string, LatencyCells]> {
    for (const [model, series] of this.series) yield [model, series.interTokenLatency];
  }

  private flushPending(): void {
    for (const series of this.series.values()) {
      if (series.pendingOutputTokens > 0) {
        this.outputTokens.inc({ model: series.model }, series.pendingOutputTokens);
        series.pendingOutputTokens = 0;
      }
      if (series.pendingReasoningTokens > 0) {
        this.reasoningTokens.inc({ model: series.model }, series.pendingReasoningTokens);
        series.pendingReasoningTokens = 0;
      }
    }
  }

  requestInFlight(model: string, delta: 1 | -1, queued: boolean): void {
    this.inflightRequests.inc({ model }, delta);
    this.activeRequests.inc({ model }, delta);
    if (queued) this.queuedRequests.inc({ model }, delta);
  }

  requestStarted(labels: RequestLabels): void {
    this.requestsStarted.inc({ model: labels.model, endpoint: labels.endpoint, request_type: labels.requestType });
  }

  /** Cells for tokens whose model label is not known yet; never scraped until added to a model's series. */
  detachedSeries(): ModelSeries {
    return new ModelSeries(UNKNOWN_MODEL, this.interTokenLatencyBounds);
  }

  /** The request is no longer waiting for its first token (its gauges sit under `gaugeModel`). */
  firstToken(gaugeModel: string): void {
    this.queuedRequests.dec({ model: gaugeModel });
  }

  observeTimeToFirstToken(model: string, secondsSinceArrival: number): void {
    this.timeToFirstToken.observe({ model }, secondsSinceArrival);
  }

  promptTokens(model: string, inputTokens: number, cachedTokens: number | undefined): void {
    this.inputTokens.inc({ model }, inputTokens);
    this.inputSequenceTokens.observe({ model }, inputTokens);
    if (cachedTokens !== undefined) this.cachedTokens.observe({ model }, cachedTokens);
  }

  overcount(model: string, tokens: number): void {
    this.outputTokensOvercount.inc({ model }, tokens);
  }

  parseError(endpoint: string, reason: string): void {
    this.parseErrors.inc({ endpoint, reason });
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
    this.requests.inc({
      model,
      endpoint,
      request_type: requestType,
      status: outcome.errorType === undefined ? 'success' : 'error',
      error_type: outcome.errorType ?? '',
    });
    if (outcome.clientDisconnected) {
      this.disconnectedClients.inc();
      this.modelCancellation.inc({ model, endpoint, request_type: requestType });
    }
    this.requestDuration.observe({ model }, outcome.durationSeconds);
    if (outcome.outputTokens > 0) this.outputSequenceTokens.observe({ model }, outcome.outputTokens);
    if (outcome.finishReason !== undefined) this.requestsFinished.inc({ model, finish_reason: outcome.finishReason });
  }
}
