import type { IncomingMessage } from 'node:http';
import type { Registry, RegistryContentType } from 'prom-client';
import type { ExtraLabelsOption } from './metrics/extra-labels';
import type { GenAiMeter } from './metrics/otel';

// What a user may pass to `dynamoMetrics()`, documented field by field; options.ts checks it and fills in the defaults.

/**
 * A prom-client registry of either exposition format: `new Registry()` (Prometheus text) or
 * `new Registry(openMetricsContentType)` (OpenMetrics).
 */
export type MetricsRegistry = Registry<RegistryContentType>;

/**
 * The request as option callbacks receive it: Node's `IncomingMessage` plus whatever the framework added
 * (Express's `path`, `originalUrl` and `body`, NestJS's and Fastify's raw request), so `(req) => req.path` compiles
 * without importing a framework's types. Annotate the parameter (`(req: Request) => …`) for the framework's exact type.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- what a framework adds to the request is its own business
export type HttpRequest = IncomingMessage & Record<string, any>;

/**
 * Histogram bounds, in the histogram's unit, in increasing order; each one given replaces Dynamo's default for that
 * histogram. Dynamo's defaults are `[0]` then log-spaced bounds, overridable with
 * `DYN_METRICS_<METRIC SUFFIX>_{MIN,MAX,COUNT}` as in Dynamo.
 */
export interface BucketOptions {
  /**
   * `request_duration_seconds`, in seconds.
   * @defaultValue `[0, 2, 4, 8, 16, 32, 64, 130, 260, 510]`
   */
  requestDuration?: readonly number[] | undefined;
  /**
   * `time_to_first_token_seconds`, in seconds.
   * @defaultValue `[0, 0.0022, 0.0047, 0.01, 0.022, 0.047, 0.1, 0.22, 0.47, 1, 2.2, 4.7, 10, 22, 48, 100, 220, 480]`
   */
  timeToFirstToken?: readonly number[] | undefined;
  /**
   * `inter_token_latency_seconds`, in seconds.
   * @defaultValue `[0, 0.0019, 0.0035, 0.0067, 0.013, 0.024, 0.045, 0.084, 0.16, 0.3, 0.56, 1.1, 2]`
   */
  interTokenLatency?: readonly number[] | undefined;
  /**
   * `input_sequence_tokens`, in tokens.
   * @defaultValue `[0, 100, 210, 430, 870, 1800, 3600, 7400, 15000, 31000, 63000, 130000]`
   */
  inputSequenceTokens?: readonly number[] | undefined;
  /**
   * `output_sequence_tokens`, in tokens.
   * @defaultValue `[0, 100, 210, 430, 880, 1800, 3700, 7600, 16000, 32000]`
   */
  outputSequenceTokens?: readonly number[] | undefined;
  /**
   * `cached_tokens`, in tokens.
   * @defaultValue `[0, 100, 210, 430, 870, 1800, 3600, 7400, 15000, 31000, 63000, 130000]`
   */
  cachedTokens?: readonly number[] | undefined;
}

/** Something went wrong inside the middleware; the response was left untouched. */
export interface DynamoMetricsError extends Error {
  /** Machine-readable reason, e.g. `invalid_json`, `event_too_large`, `compressed_body`, `internal`. */
  code: string;
}

/**
 * Options of `dynamoMetrics()`. Every field may be omitted or `undefined` (which means the default), so
 * `{ prefix: process.env.PREFIX }` compiles under `exactOptionalPropertyTypes`.
 */
export interface DynamoMetricsOptions<Req extends IncomingMessage = HttpRequest> {
  /**
   * Registry the metrics are registered in. Two middleware instances on the same registry share the metrics.
   * @defaultValue prom-client's global `register`
   */
  registry?: MetricsRegistry | undefined;
  /**
   * Metric name prefix; names are `${prefix}_${suffix}`.
   * @defaultValue `process.env.DYN_METRICS_PREFIX`, else `dynamo_frontend`
   */
  prefix?: string | undefined;
  /**
   * Allow-list of model label values. Other model names are counted as `unknown_model`.
   * @defaultValue every name, up to `maxModels`
   */
  models?: readonly string[] | undefined;
  /**
   * Cap on distinct model label values; names seen after the cap is reached are counted as `unknown_model`. Must
   * hold every name of `models`.
   * @defaultValue 100, or the number of names in `models` when that is larger
   */
  maxModels?: number | undefined;
  /**
   * Histogram bounds replacing Dynamo's defaults, per histogram.
   * @defaultValue Dynamo's bounds for every histogram
   */
  buckets?: BucketOptions | undefined;
  /**
   * Labels of your own on every counter that carries `model` (not on gauges or histograms), read once per request:
   * `{ tenant: (req) => req.headers['x-tenant'] as string | undefined }`, or `{ tenant: { value, maxValues, hash } }`
   * to change the cap of distinct values (beyond it a value is counted as `other`) or print a digest instead of the
   * value. A function that throws or returns a non-string counts the request with `""` and reports to `onError`.
   * See docs/tenant-labels.md.
   * @defaultValue none; each label keeps at most 100 distinct values unless `maxValues` says otherwise
   */
  extraLabels?: ExtraLabelsOption<Req> | undefined;
  /**
   * Decides which requests are LLM requests and their `endpoint` label: return a label value, or `undefined`/`false`
   * to leave the request alone. The label picks the wire-format reader (`chat_completions`, `completions`,
   * `responses`, `anthropic_messages`, `embeddings`, `gemini_generate_content`, `ollama_chat`, `ollama_generate`,
   * `ai_sdk_ui`, `ai_sdk_text`, `ai_sdk_data`), unless the response head shows its format (an AI SDK stream, NDJSON);
   * other labels are read by the request path's format, else as OpenAI chat/completions.
   * @defaultValue `POST` requests, by path suffix: `/chat/completions`, `/completions`, `/responses`, `/messages`, `/embeddings`,
   * `:generateContent`, `:streamGenerateContent`, `/api/chat`, `/api/generate`, Claude on Vertex AI's
   * `…/publishers/anthropic/models/…:streamRawPredict` and `:rawPredict`; and any POST whose response is an
   * AI SDK UI message stream or AI SDK 4 data stream
   */
  endpoint?: ((req: Req) => string | undefined | false | null) | undefined;
  /**
   * The model label of a request, for apps whose requests name no model (an AI SDK app picks the model on the
   * server): return its name, or `undefined` to fall back to the request body's `model`, then the model the
   * response names. Called when the request arrives, once its body has been read, and when its response starts
   * (after body parsers and routing), so `req.body` and `req.params` can be used.
   * @defaultValue the request body's `model` (for Gemini, the model in the path), else the response's, else `unknown_model`
   */
  model?: ((req: Req) => string | undefined | null) | undefined;
  /**
   * Counts the tokens of one generated text delta when the stream does not state the count itself, rounded to a
   * whole number per delta. Where it throws or returns no count (NaN, negative), the default estimate is used and
   * `onError` hears of it once per middleware.
   * @defaultValue a cheap length-based estimator (see README, "How accurate the counts are")
   */
  countTokens?: ((text: string, model: string) => number) | undefined;
  /**
   * Called for problems the middleware skipped (malformed events, oversized bodies, internal errors). Never throws
   * into the request.
   * @defaultValue none: problems are only counted in `parse_errors_total`
   */
  onError?: ((error: DynamoMetricsError) => void) | undefined;
  /**
   * Largest SSE event kept for parsing, in decoded characters of its `data` values plus its other lines (comments,
   * `event:`), counted the same however the stream is cut; larger events are skipped and counted in
   * `parse_errors_total{reason="event_too_large"}`.
   * @defaultValue 1048576 (1 MiB)
   */
  maxEventBytes?: number | undefined;
  /**
   * How much of a unary (non-stream) JSON body is kept while it is read, in characters: bodies of any size are
   * read as they are written, and past this their text is no longer kept (it only matters when a body states no
   * usage; `parse_errors_total{reason="body_too_large"}`), while model, usage, finish reason and error are still
   * read. Numbers inside arrays (embedding vectors, token ids) are never kept.
   * @defaultValue 8388608 (8 MiB)
   */
  maxBodyBytes?: number | undefined;
  /**
   * An `@opentelemetry/api` `Meter`: every request is also recorded, at its end, to the OpenTelemetry GenAI
   * semantic-convention instruments (`gen_ai.server.request.duration`, `gen_ai.server.time_to_first_token`, …; see
   * docs/opentelemetry.md). `@opentelemetry/api` is an optional peer dependency, never loaded by this package.
   * @defaultValue none: nothing is recorded to OpenTelemetry
   */
  meter?: GenAiMeter | undefined;
  /**
   * Also record output token usage to the OpenTelemetry instruments when it is an estimate of the text (the
   * response stated no usage), which the conventions allow only as opt-in "offline token counting".
   * @defaultValue false: only usage the response stated is recorded
   */
  otelEstimatedUsage?: boolean | undefined;
}
