import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { SCRIPTS, scriptOf } from '../counting/character-classes';
import { StreamEstimator } from '../counting/stream-estimator';
import type { ErrorType } from '../labels';
import { errorTypeForStatus, finishReasonLabel, UNKNOWN_MODEL } from '../labels';
import type { CounterSet, ExtraLabelValues, MetricsStore, RequestType } from '../metrics';
import { NO_EXTRA_LABELS } from '../metrics';
import type { RequestRecorder } from '../metrics/otel';
import type { ResponseOutcome } from '../http/hook';
import type { ChunkCount, ObservationSink } from '../formats/types';

/** Largest usage count believed; beyond it a stated count is malformed, not a request's size. */
const MAX_TOKEN_COUNT = 100_000_000;

/**
 * Token-bearing chunks held while no event has named the model yet (every format names it in its first event;
 * a stream that never does is counted under `unknown_model` after this many, so the counter still moves live).
 */
const MAX_CHUNKS_BEFORE_MODEL = 16;

/** Multipliers of a model without calibration: the estimate as it is. */
const UNSCALED: Float64Array = new Float64Array(SCRIPTS).fill(1);


/** What the request itself says, when a body parser ran before us or by the time the response starts. */
export interface RequestHints {
  model: unknown;
  stream: unknown;
}

/** What the request body says, when a body parser has run (before us, or by the time the response starts). */
export function requestHints(req: IncomingMessage): RequestHints | undefined {
  const body = (req as IncomingMessage & { body?: unknown }).body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const fields = body as Record<string, unknown>;
  return { model: fields.model, stream: fields.stream };
}

export interface RequestStateContext {
  store: MetricsStore;
  endpoint: string;
  /** The user's `countTokens`; without one, each response gets the default {@link StreamEstimator}. */
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
 * request_type from an explicit `stream` flag in the request body, which predicts the response; without one the
 * response head decides (a server may stream by default), and `requests_started_total` waits for it.
 */
function requestTypeOf(hints: RequestHints): RequestType | undefined {
  return hints.stream === true ? 'stream' : hints.stream === false ? 'unary' : undefined;
}

function isTokenCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_TOKEN_COUNT;
}

/**
 * Everything one request has shown so far: labels, timing, counted and stated tokens. Readers report
 * observations to it; it turns them into metric updates, and ends the request exactly once.
 *
 * The `model` label is resolved once: from the request body when a parser ran, else from the first response event
 * that names one, else `unknown_model`. Until then the request sits in the gauges under `unknown_model` and moves
 * when the name is known; `requests_started_total` waits for its labels.
 */
export class RequestState implements ObservationSink {
  private readonly arrivedAt: number;
  private readonly extra: ExtraLabelValues;
  private model: string | undefined;
  /** A name not admitted to a label of its own yet: the response's status decides (see `ModelLabels`). */
  private pendingName: string | undefined;
  /** Whether the response succeeded (2xx head, or tokens written); unknown before the head. */
  private succeeded: boolean | undefined;
  private series: CounterSet | undefined;
  /** Where tokens counted before the model is known wait for their label. */
  private heldSeries: CounterSet | undefined;
  private heldChunks = 0;
  private heldTimeToFirstToken: number | undefined;
  /** The model label the in-flight gauges are counted under right now. */
  private gaugeModel = UNKNOWN_MODEL;
  private requestType: RequestType | undefined;
  private startCounted = false;
  private ended = false;
  private queued = true;
  /** The response is an event stream: token timing applies. */
  private streaming = false;

  private outputTokens = 0;
  private reasoningTokens = 0;
  private statedOutput: number | undefined;
  /** The default estimator's state for this response (created on the first text it counts). */
  private estimator: StreamEstimator | undefined;
  /** A text field of the current chunk was an empty string (a token that ended inside a character). */
  private pendingEmpty = false;
  /** Script of the text last estimated (see `scriptOf`): the calibration scales each script's tokens by its own. */
  private script = 0;
  /**
   * Estimated tokens as the readers reported them, unscaled, by script: in chunks counted live (`liveByScript`;
   * `estimatedRaw` and `reasoningRaw` are its sum and reasoning part), and in all chunks, usage or not
   * (`allByScript`, what the calibration learns from).
   */
  private readonly liveByScript = new Float64Array(SCRIPTS);
  private readonly allByScript = new Float64Array(SCRIPTS);
  private estimatedRaw = 0;
  private reasoningRaw = 0;
  /** What the scaled estimate has added to the counters so far. */
  private estimatedOutput = 0;
  private estimatedReasoning = 0;
  /** The model's calibration: multiplier of each script's estimate, and rounding down (usage will top it up). */
  private scales: Float64Array = UNSCALED;
  private leanLow = false;
  private firstTokenSeen = false;
  private lastTokenAt = 0;
  /** Inside one write: its token chunks arrived together and share one timestamp (-1: not read yet). */
  private inWrite = false;
  private writeTime = -1;
  private promptSeen = false;
  private finishReasonValue: string | undefined;
  private completedMarker = false;
  private reportedError: ErrorType | undefined;
  // What only the recorder needs: the response's own model name, time to first token, stated usage.
  private responseModelName: string | undefined;
  private timeToFirstToken: number | undefined;
  private statedInput: number | undefined;
  private statedCached: number | undefined;
  private statedReasoning: number | undefined;
  /** The body could not be read (compressed beneath us): a missing end marker says nothing then. */
  private bodyUnread = false;

  constructor(
    private readonly context: RequestStateContext,
    hints: RequestHints | undefined,
  ) {
    const { store } = context;
    this.arrivedAt = context.arrivedAt ?? performance.now();
    this.extra = context.extraLabels ?? NO_EXTRA_LABELS;
    if (hints !== undefined && typeof hints.model === 'string') {
      const label = store.modelLabels.labelOf(hints.model);
      if (label !== undefined) this.gaugeModel = label;
      store.requestInFlight(this.gaugeModel, 1, true);
      this.requestType = requestTypeOf(hints);
      this.nameModel(hints.model);
    } else {
      store.requestInFlight(this.gaugeModel, 1, true);
    }
  }

  /**
   * The response head is known: its status decides whether a name not admitted yet gets its label, its type
   * decides `request_type` unless the request body already did.
   */
  responseStarted(isEventStream: boolean, hints: RequestHints | undefined, statusCode = 200): void {
    this.streaming = isEventStream;
    this.succeeded = statusCode >= 200 && statusCode < 300;
    if (this.model === undefined) {
      if (this.pendingName !== undefined) {
        this.nameModel(this.pendingName);
      } else if (hints !== undefined && typeof hints.model === 'string') {
        this.requestType ??= requestTypeOf(hints);
        this.nameModel(hints.model);
      }
    }
    this.requestType ??= isEventStream ? 'stream' : 'unary';
    this.countStart();
  }

  /** The response head showed another format than the path did: the label follows while nothing is counted under it. */
  recognisedAs(endpoint: string): void {
    if (!this.startCounted) this.context.endpoint = endpoint;
  }

  /** The request's `extraLabels` values (label name → value), for recorders besides Prometheus. */
  get extraLabels(): Readonly<Record<string, string>> {
    return this.extra.labels;
  }

  // ---- observations from the readers -------------------------------------------------------------------------

  responseModel(model: unknown): void {
    // A missing or malformed name decides nothing: a later event may still name the model.
    if (this.responseModelName !== undefined || typeof model !== 'string' || model.length === 0) return;
    this.responseModelName = model;
    if (this.model === undefined && this.pendingName === undefined) this.nameModel(model);
  }

  generatedTokens(tokens: number, reasoning: number): void {
    // With countTokens the character held back is counted in full once it arrives, so only the default counts "".
    if (tokens <= 0 && this.pendingEmpty && this.context.estimate === undefined) tokens = this.estimatorFor().count('');
    this.pendingEmpty = false;
    if (!(tokens > 0)) return;
    this.allByScript[this.script]! += tokens;
    this.liveByScript[this.script]! += tokens;
    this.estimatedRaw += tokens;
    if (reasoning > 0) this.reasoningRaw += Math.min(reasoning, tokens);
    if (this.scales === UNSCALED) {
      this.estimatedOutput += tokens;
      this.addTokens(tokens, Math.min(reasoning, tokens), tokens, true);
      return;
    }
    const { scales, liveByScript: live } = this;
    let scaled = 0;
    for (let s = 0; s < SCRIPTS; s++) scaled += scales[s]! * live[s]!;
    const output = Math.max(0, this.whole(scaled) - this.estimatedOutput);
    let reasoningAdded = 0;
    if (this.reasoningRaw > 0) {
      const reasoningScaled = this.whole((this.reasoningRaw * scaled) / this.estimatedRaw);
      reasoningAdded = Math.max(0, Math.min(output, reasoningScaled - this.estimatedReasoning));
    }
    this.estimatedOutput += output;
    this.estimatedReasoning += reasoningAdded;
    this.addTokens(output, reasoningAdded, tokens, true);
  }

  /** An empty text field: counted once per chunk, and only if nothing else in the chunk had text. */
  emptyText(): void {
    this.pendingEmpty = true;
  }

  /** A chunk whose whole meaning is this generated text (all of it reasoning, or none). */
  textDelta(text: string, reasoning: boolean): void {
    const tokens = this.estimate(text);
    this.generatedTokens(tokens, reasoning ? tokens : 0);
  }

  statedOutputTokens(total: unknown, reasoningTotal: unknown, chunk: ChunkCount, live: boolean): void {
    if (!isTokenCount(total)) {
      // generatedTokens handles this chunk's empty text field, if any.
      this.malformed('invalid_usage', `completion tokens: ${String(total)}`);
      this.generatedTokens(chunk.tokens, chunk.reasoning);
      return;
    }
    // Usage that goes backwards is not believed; what was counted stays counted.
    if (this.statedOutput !== undefined && total < this.statedOutput) {
      this.malformed('usage_backwards', `${total} after ${this.statedOutput}`);
      return;
    }
    if (chunk.tokens > 0) this.allByScript[this.script]! += chunk.tokens;
    else if (this.pendingEmpty && live && this.context.estimate === undefined) this.allByScript[this.script]! += this.estimatorFor().count('');
    this.pendingEmpty = false;
    this.statedOutput = total;
    const increase = total - this.outputTokens;
    const reasoningStated = isTokenCount(reasoningTotal);
    if (increase > 0) {
      const reasoning = reasoningStated ? 0 : Math.min(chunk.reasoning, increase);
      this.addTokens(increase, reasoning, increase, live);
    }
    if (reasoningStated) {
      const reasoningIncrease = reasoningTotal - this.reasoningTokens;
      this.statedReasoning = reasoningTotal;
      if (reasoningIncrease > 0) {
        this.reasoningTokens += reasoningIncrease;
        this.seriesOrResolve().pendingReasoningTokens += reasoningIncrease;
      }
    } else if (reasoningTotal !== undefined && reasoningTotal !== null) {
      this.malformed('invalid_usage', `reasoning tokens: ${String(reasoningTotal)}`);
    }
  }

  promptTokens(input: unknown, cached: unknown): void {
    if (this.promptSeen) return;
    if (!isTokenCount(input)) {
      this.malformed('invalid_usage', `prompt tokens: ${String(input)}`);
      return;
    }
    this.promptSeen = true;
    this.seriesOrResolve();
    this.statedInput = input;
    this.statedCached = isTokenCount(cached) ? cached : undefined;
    this.context.store.promptTokens(this.model as string, input, this.statedCached, this.extra);
  }

  finishReason(reason: unknown): void {
    if (typeof reason === 'string' && reason.length > 0) this.finishReasonValue = finishReasonLabel(reason);
  }

  completed(): void {
    this.completedMarker = true;
  }

  failed(errorType: ErrorType): void {
    this.reportedError ??= errorType;
  }

  /** The response reader gave up on the body (compressed bytes, an internal error); the request is still counted. */
  bodyUnreadable(): void {
    this.bodyUnread = true;
  }

  malformed(reason: string, detail?: string): void {
    this.context.malformed(this.context.endpoint, reason, detail);
  }

  estimate(text: string): number {
    if (text.length === 0) {
      this.pendingEmpty = true;
      return 0;
    }
    const custom = this.context.estimate;
    if (custom !== undefined) {
      this.script = scriptOf(text);
      return custom(text, this.model ?? UNKNOWN_MODEL);
    }
    const estimator = this.estimatorFor();
    const tokens = estimator.count(text);
    this.script = estimator.script;
    return tokens;
  }

  /**
   * The response reader is reading one write: the chunks in it arrived at the same moment, so the clock is read
   * once for all of them (a proxy's writes often hold several events).
   */
  beginWrite(): void {
    this.inWrite = true;
    this.writeTime = -1;
  }

  endWrite(): void {
    this.inWrite = false;
  }

  // ---- end -------------------------------------------------------------------------------------------------

  /** Ends the request exactly once; later calls do nothing. */
  end(outcome: ResponseOutcome, statusCode: number): void {
    if (this.ended) return;
    this.ended = true;
    const { store } = this.context;
    // A name still waiting for its label belongs to a request that never succeeded.
    const model = this.model ?? this.resolveModel(UNKNOWN_MODEL);
    this.requestType ??= this.streaming ? 'stream' : 'unary';
    this.countStart();

    if (this.statedOutput === undefined) {
      if (this.outputTokens > 0) store.estimatedOutput(model, this.outputTokens, this.extra);
    } else if (this.outputTokens > this.statedOutput) {
      store.overcount(model, this.outputTokens - this.statedOutput, this.extra);
    }
    // Only streams that ran to their end say whether this model's streams state usage, and how the estimate fares.
    if (this.streaming && outcome === 'finished' && this.series !== undefined) {
      this.series.calibration.learn(this.statedOutput, this.allByScript);
    }
    store.requestInFlight(this.gaugeModel, -1, this.queued);
    const errorType = this.errorType(outcome, statusCode);
    const durationSeconds = (performance.now() - this.arrivedAt) / 1000;
    const outputTokens = this.statedOutput ?? this.outputTokens;
    store.requestEnded(
      { model, endpoint: this.context.endpoint, requestType: this.requestType, extra: this.extra },
      {
        errorType,
        clientDisconnected: outcome === 'client_left',
        durationSeconds,
        outputTokens,
        finishReason: this.finishReasonValue,
      },
    );
    this.context.recorder?.requestEnded({
      endpoint: this.context.endpoint,
      model,
      responseModel: this.responseModelName,
      streaming: this.streaming,
      errorType,
      durationSeconds,
      timeToFirstTokenSeconds: this.timeToFirstToken,
      inputTokens: this.statedInput,
      cachedInputTokens: this.statedCached,
      outputTokens,
      outputTokensStated: this.statedOutput !== undefined,
      reasoningTokens: this.statedReasoning,
      extraAttributes: this.extra === NO_EXTRA_LABELS ? undefined : this.extra.labels,
    });
  }

  private errorType(outcome: ResponseOutcome, statusCode: number): ErrorType | undefined {
    if (outcome === 'client_left' || outcome === 'never_sent') return 'cancelled';
    if (outcome === 'timed_out') return 'response_timeout';
    if (statusCode >= 400) return errorTypeForStatus(statusCode);
    if (this.reportedError !== undefined) return this.reportedError;
    if (outcome === 'server_aborted') return 'internal';
    // Informational and redirect statuses (a 304 too) are answers, and have no stream to complete.
    if (statusCode < 200 || statusCode >= 300) return undefined;
    // A 2xx stream that ended without its end marker was cut upstream.
    if (this.streaming && !this.completedMarker && !this.bodyUnread) return 'internal';
    return undefined;
  }

  // ---- internals -------------------------------------------------------------------------------------------

  /**
   * A name for the request: its label if it has one, else it waits for the response's status (a request that
   * failed with a name not admitted yet counts under `unknown_model`).
   */
  private nameModel(name: unknown): void {
    const labels = this.context.store.modelLabels;
    const label = this.succeeded === true ? labels.admit(name) : labels.labelOf(name);
    if (label !== undefined) {
      this.pendingName = undefined;
      this.resolveModel(label);
    } else if (this.succeeded === false) {
      this.pendingName = undefined;
      this.resolveModel(UNKNOWN_MODEL);
    } else {
      this.pendingName = name as string;
    }
  }

  private resolveModel(model: string): string {
    const { store } = this.context;
    this.model = model;
    const series = store.seriesFor(model, this.extra);
    this.series = series;
    // Tokens counted before the model was known were not scaled: the scale applies from here on.
    const { calibration } = series;
    if (this.estimatedRaw === 0 && calibration.learned) {
      this.scales = calibration.scales();
      this.leanLow = calibration.leansLow();
    }
    if (this.gaugeModel !== model && !this.ended) {
      store.requestInFlight(this.gaugeModel, -1, this.queued);
      store.requestInFlight(model, 1, this.queued);
      this.gaugeModel = model;
    }
    this.countStart();
    const held = this.heldSeries;
    if (held !== undefined) {
      this.heldSeries = undefined;
      series.pendingOutputTokens += held.pendingOutputTokens;
      series.pendingReasoningTokens += held.pendingReasoningTokens;
      series.interTokenLatency.add(held.interTokenLatency);
      if (this.heldTimeToFirstToken !== undefined) store.observeTimeToFirstToken(model, this.heldTimeToFirstToken);
    }
    return model;
  }

  private seriesOrResolve(): CounterSet {
    return this.series ?? (this.resolveModel(UNKNOWN_MODEL), this.series as unknown as CounterSet);
  }

  /** The series tokens go to: the model's, or a holding one until an event names the model. */
  private tokenSeries(): CounterSet {
    if (this.series !== undefined) return this.series;
    if (++this.heldChunks > MAX_CHUNKS_BEFORE_MODEL) return this.seriesOrResolve();
    return (this.heldSeries ??= this.context.store.detachedSeries());
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

  private now(): number {
    if (!this.inWrite) return performance.now();
    if (this.writeTime < 0) this.writeTime = performance.now();
    return this.writeTime;
  }

  private estimatorFor(): StreamEstimator {
    return (this.estimator ??= new StreamEstimator());
  }

  /** A scaled estimate as whole tokens: rounded down when usage will top it up, else to the nearest. */
  private whole(value: number): number {
    return this.leanLow ? Math.floor(value) : Math.round(value);
  }

  /**
   * Adds `tokens` to the counters; `chunkTokens` is the chunk's own token count, for timing (the scaled count of a
   * chunk can be 0 while the chunk still carried tokens).
   */
  private addTokens(tokens: number, reasoning: number, chunkTokens: number, timed: boolean): void {
    // A response that produces tokens succeeded, whatever its status said; a name it reports later is admitted.
    if (this.model === undefined && chunkTokens > 0) this.succeeded = true;
    const series = this.tokenSeries();
    if (tokens > 0) {
      this.outputTokens += tokens;
      series.pendingOutputTokens += tokens;
    }
    if (reasoning > 0) {
      this.reasoningTokens += reasoning;
      series.pendingReasoningTokens += reasoning;
    }
    if (!timed || !this.streaming) return;
    const now = this.now();
    if (this.firstTokenSeen) {
      series.interTokenLatency.record((now - this.lastTokenAt) / 1000, chunkTokens);
    } else {
      this.firstTokenSeen = true;
      if (this.queued) {
        this.queued = false;
        const seconds = (now - this.arrivedAt) / 1000;
        this.timeToFirstToken = seconds;
        this.context.store.firstToken(this.gaugeModel);
        if (this.model === undefined) this.heldTimeToFirstToken = seconds;
        else this.context.store.observeTimeToFirstToken(this.model, seconds);
      }
    }
    this.lastTokenAt = now;
  }
}
