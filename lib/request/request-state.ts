import { performance } from 'node:perf_hooks';
import type { ErrorType } from '../labels';
import { finishReasonLabel, UNKNOWN_MODEL } from '../labels';
import type { CounterSet, ExtraLabelValues, MetricsStore, RequestType } from '../metrics';
import { NO_EXTRA_LABELS } from '../metrics';
import type { RequestRecorder } from '../metrics/otel';
import type { ResponseOutcome } from '../http/hook';
import type { ChunkCount, ObservationSink } from '../formats/types';
import { HeldTokens } from './held-tokens';
import { ModelName } from './model-name';
import { isTokenCount, OutputTokens } from './output-tokens';
import { errorTypeOf } from './request-end';
import type { ResponseSeen } from './request-end';
import { requestTypeOf } from './request-model';
import type { RequestHints } from './request-model';
import { TokenTiming } from './token-timing';

export interface RequestStateContext {
  store: MetricsStore;
  endpoint: string;
  /** The user's `countTokens`; without one, each response gets the default estimator. */
  estimate: ((text: string, model: string) => number) | undefined;
  malformed: (endpoint: string, reason: string, detail: string | undefined) => void;
  /** When the request arrived, if before this state was created (a response recognised only at its head). */
  arrivedAt?: number | undefined;
  /** The request's `extraLabels` values, read once when it arrived. */
  extraLabels?: ExtraLabelValues;
  /** Another metrics system fed once per request, at its end (OpenTelemetry when `meter` is set). */
  recorder?: RequestRecorder | undefined;
}

/**
 * Everything one request has shown so far: labels, timing, counted and stated tokens. Readers report
 * observations to it; it turns them into metric updates, and ends the request exactly once. Until its model label
 * is decided (see `ModelName`) the request sits in the gauges under `unknown_model`, and moves when it is;
 * `requests_started_total` waits for its labels.
 */
export class RequestState implements ObservationSink {
  private readonly extra: ExtraLabelValues;
  private model: string | undefined;
  private readonly name: ModelName;
  private series: CounterSet | undefined;
  /** Tokens counted before an event named the model (rare: the formats that name it do in their first event). */
  private held: HeldTokens | undefined;
  /** Whether tokens counted before the model is named wait for its name (see `modelNotInStream`). */
  private holdForModel = true;
  /** The model label the in-flight gauges are counted under right now. */
  private gaugeModel = UNKNOWN_MODEL;
  private requestType: RequestType | undefined;
  private startCounted = false;
  private ended = false;
  /** What the response showed about how it ended; `streaming`: it is an event stream, so token timing applies. */
  private readonly seen: ResponseSeen = { streaming: false, completed: false, reportedError: undefined, bodyUnread: false };
  private readonly tokens: OutputTokens;
  private readonly timing: TokenTiming;
  private finishReasonValue: string | undefined;
  /** Stated prompt usage, for the recorder (the first statement counts). */
  private statedInput: number | undefined;
  private statedCached: number | undefined;

  constructor(
    private readonly context: RequestStateContext,
    hints: RequestHints | undefined,
  ) {
    const { store } = context;
    this.timing = new TokenTiming(context.arrivedAt ?? performance.now());
    this.tokens = new OutputTokens(context.estimate, this);
    this.extra = context.extraLabels ?? NO_EXTRA_LABELS;
    this.name = new ModelName(store.modelLabels);
    const named = hints !== undefined && typeof hints.model === 'string';
    const label = named ? this.name.labelFor(hints.model as string) : undefined;
    if (label !== undefined) this.gaugeModel = label;
    store.requestInFlight(this.gaugeModel, 1, true);
    if (named) this.requestType = requestTypeOf(hints);
    this.nameModel(label);
  }

  /**
   * The response head is known: its status decides whether a name not admitted yet gets its label (the name the
   * request gives now: after routing, the `model` option may answer where it could not before), its type decides
   * `request_type` unless the request body already did.
   */
  responseStarted(isEventStream: boolean, hints: RequestHints | undefined, statusCode = 200): void {
    this.seen.streaming = isEventStream;
    this.name.succeeded = statusCode >= 200 && statusCode < 300;
    if (typeof hints?.model !== 'string' && this.model === undefined && this.name.isWaiting) this.nameModel(this.name.retry());
    else this.requestBodyRead(hints);
    if (typeof hints?.model === 'string') this.requestType ??= requestTypeOf(hints);
    this.requestType ??= isEventStream ? 'stream' : 'unary';
    this.countStart();
  }

  /**
   * The request body has been read (a body parser mounted after the middleware has run): the model it names
   * decides the gauges' label now, so the request waits for its first token under it, not under `unknown_model`.
   * Its start is counted at the response head, which may still show another format than the path did.
   */
  requestBodyRead(hints: RequestHints | undefined): void {
    if (this.ended || this.model !== undefined || typeof hints?.model !== 'string') return;
    this.nameModel(this.name.labelFor(hints.model));
  }

  /**
   * The response's events need not name the model before its text (the AI SDK's streams, plain text): its tokens
   * are counted at once, under `unknown_model` unless the request named a model, instead of waiting for a name.
   */
  modelNotInStream(): void {
    this.holdForModel = false;
  }

  /** The response head showed another format than the path did: the label follows while nothing is counted under it. */
  recognisedAs(endpoint: string): void {
    if (!this.startCounted) this.context.endpoint = endpoint;
  }

  /** The request's `extraLabels` values (label name → value), for recorders besides Prometheus. */
  get extraLabels(): Readonly<Record<string, string>> {
    return this.extra.labels;
  }

  responseModel(model: unknown): void {
    // A missing or malformed name decides nothing: a later event may still name the model.
    if (this.name.fromResponse !== undefined || typeof model !== 'string' || model.length === 0) return;
    this.name.fromResponse = model;
    if (this.model === undefined && !this.name.isWaiting) this.nameModel(this.name.labelFor(model));
  }

  generatedTokens(tokens: number, reasoning: number): void {
    const count = this.tokens;
    const chunkTokens = count.generated(tokens, reasoning);
    if (chunkTokens > 0) this.addTokens(count.added, count.addedReasoning, chunkTokens, true);
  }

  /** An empty text field: counted once per chunk, and only if nothing else in the chunk had text. */
  emptyText(): void {
    this.tokens.emptyText();
  }

  /** A chunk whose whole meaning is this generated text (all of it reasoning, or none). */
  textDelta(text: string, reasoning: boolean): void {
    const tokens = this.estimate(text);
    this.generatedTokens(tokens, reasoning ? tokens : 0);
  }

  statedOutputTokens(total: unknown, reasoningTotal: unknown, chunk: ChunkCount, live: boolean, choice?: number): void {
    const count = this.tokens;
    const increase = count.statedTotal(total, reasoningTotal, chunk, live, choice);
    // Not a count: the chunk's own count stands (generatedTokens handles its empty text field, if any).
    if (increase < 0) return this.generatedTokens(chunk.tokens, chunk.reasoning);
    if (increase > 0) this.addTokens(count.added, count.addedReasoning, increase, count.increaseTimed);
    if (count.reasoningStatedIncrease > 0) this.seriesOrResolve().addTokens(0, count.reasoningStatedIncrease);
  }

  promptTokens(input: unknown, cached: unknown): void {
    if (this.statedInput !== undefined) return;
    if (!isTokenCount(input)) {
      this.malformed('invalid_usage', `prompt tokens: ${String(input)}`);
      return;
    }
    this.seriesOrResolve();
    this.statedInput = input;
    this.statedCached = isTokenCount(cached) ? cached : undefined;
    this.context.store.promptTokens(this.model as string, input, this.statedCached, this.extra);
  }

  finishReason(reason: unknown): void {
    if (typeof reason === 'string' && reason.length > 0) this.finishReasonValue = finishReasonLabel(reason);
  }

  completed(): void {
    this.seen.completed = true;
  }

  failed(errorType: ErrorType): void {
    this.seen.reportedError ??= errorType;
  }

  /** The response reader gave up on the body (compressed bytes, an internal error); the request is still counted. */
  bodyUnreadable(): void {
    this.seen.bodyUnread = true;
  }

  malformed(reason: string, detail?: string): void {
    this.context.malformed(this.context.endpoint, reason, detail);
  }

  estimate(text: string): number {
    return this.tokens.estimate(text, this.model ?? UNKNOWN_MODEL);
  }

  /** The response reader reads another write: its chunks arrived together (see `TokenTiming`). */
  newWrite(): void {
    this.timing.newWrite();
  }

  /** Ends the request exactly once; later calls do nothing. */
  end(outcome: ResponseOutcome, statusCode: number): void {
    if (this.ended) return;
    this.ended = true;
    const { store } = this.context;
    // A name still waiting for its label belongs to a request that never succeeded.
    const model = this.model ?? this.resolveModel(UNKNOWN_MODEL);
    this.requestType ??= this.seen.streaming ? 'stream' : 'unary';
    this.countStart();
    const shortfall = this.tokens.settleWithoutUsage();
    if (shortfall > 0) this.seriesOrResolve().addTokens(shortfall, 0);
    const { total, stated } = this.tokens;
    if (stated === undefined) {
      if (total > 0) store.estimatedOutput(model, total, this.extra);
    } else if (total > stated) {
      store.overcount(model, total - stated, this.extra);
    }
    // Only streams that ran to their end say whether this model's streams state usage, and how the estimate fares.
    if (this.seen.streaming && outcome === 'finished' && this.series !== undefined) {
      this.series.calibration.learn(stated, this.tokens.allByScript);
    }
    store.requestInFlight(this.gaugeModel, -1, this.timing.queued);
    const errorType = errorTypeOf(outcome, statusCode, this.seen);
    const durationSeconds = this.timing.elapsed();
    const outputTokens = stated ?? total;
    const { endpoint } = this.context;
    const ended = { errorType, clientDisconnected: outcome === 'client_left', durationSeconds, outputTokens, finishReason: this.finishReasonValue };
    store.requestEnded({ model, endpoint, requestType: this.requestType, extra: this.extra }, ended);
    this.context.recorder?.requestEnded({
      endpoint, model, responseModel: this.name.fromResponse, streaming: this.seen.streaming, errorType, durationSeconds,
      timeToFirstTokenSeconds: this.timing.timeToFirstToken, inputTokens: this.statedInput, cachedInputTokens: this.statedCached,
      outputTokens, outputTokensStated: stated !== undefined, reasoningTokens: this.tokens.statedReasoning,
      extraAttributes: this.extra === NO_EXTRA_LABELS ? undefined : this.extra.labels,
    });
  }

  // ---- internals -------------------------------------------------------------------------------------------

  /** A label decided for the request's name (see `ModelName`); undefined: the name waits for the status. */
  private nameModel(label: string | undefined): void {
    if (label !== undefined) this.resolveModel(label);
  }

  private resolveModel(model: string): string {
    const { store } = this.context;
    this.model = model;
    const series = store.seriesFor(model, this.extra);
    this.series = series;
    // Tokens counted before the model was known were not scaled: the scale applies from here on.
    this.tokens.calibrateWith(series.calibration);
    if (this.gaugeModel !== model && !this.ended) {
      const { queued } = this.timing;
      store.requestInFlight(this.gaugeModel, -1, queued);
      store.requestInFlight(model, 1, queued);
      this.gaugeModel = model;
    }
    this.countStart();
    this.held?.release(series, store);
    return model;
  }

  private seriesOrResolve(): CounterSet {
    return this.series ?? (this.resolveModel(UNKNOWN_MODEL), this.series as unknown as CounterSet);
  }

  /** The series tokens go to: the model's, or a holding one until an event names the model. */
  private tokenSeries(): CounterSet {
    if (this.series !== undefined) return this.series;
    return (this.holdForModel ? (this.held ??= new HeldTokens()).seriesForChunk(this.context.store) : undefined) ?? this.seriesOrResolve();
  }

  private countStart(): void {
    if (this.startCounted || this.model === undefined || this.requestType === undefined) return;
    this.startCounted = true;
    this.context.store.requestStarted({
      model: this.model,
      endpoint: this.context.endpoint,
      requestType: this.requestType,
      extra: this.extra,
    });
  }

  /**
   * Adds `tokens` to the counters; `chunkTokens` is the chunk's own token count, for timing (the scaled count of a
   * chunk can be 0 while the chunk still carried tokens).
   */
  private addTokens(tokens: number, reasoning: number, chunkTokens: number, timed: boolean): void {
    // A response that produces tokens succeeded, whatever its status said; a name it reports later is admitted.
    if (this.model === undefined && chunkTokens > 0) this.name.succeeded = true;
    const series = this.tokenSeries();
    series.addTokens(tokens, reasoning);
    if (!timed || !this.seen.streaming) return;
    const gap = this.timing.tokenChunk();
    if (gap >= 0) {
      series.interTokenLatency.record(gap, chunkTokens);
      return;
    }
    const seconds = this.timing.timeToFirstToken as number;
    this.context.store.firstToken(this.gaugeModel);
    if (this.model === undefined) (this.held ??= new HeldTokens()).timeToFirstToken = seconds;
    else this.context.store.observeTimeToFirstToken(this.model, seconds);
  }
}
