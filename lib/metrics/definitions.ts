/**
 * Every metric the package keeps, once: its name suffix, type, help, built-in labels and, for histograms,
 * Dynamo's default bucket range. Registration, bucket resolution, option validation and the exported
 * `METRIC_SUFFIXES` all read this table.
 */

/** Dynamo's (min, max, count) for a histogram; `DYN_METRICS_<SUFFIX IN UPPER CASE>_{MIN,MAX,COUNT}` overrides it. */
export interface BucketRange {
  min: number;
  max: number;
  count: number;
}

export interface MetricDefinition {
  suffix: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  /** Built-in labels, in the order they print. */
  labels: readonly string[];
  /** Also labelled with the user's `extraLabels` (printed after the built-in ones). */
  extraLabels?: true;
  buckets?: BucketRange;
  /** A gauge of requests in flight: `registry.resetMetrics()` cannot end them, so it keeps their values. */
  inFlight?: true;
}

const MODEL = ['model'] as const;
const REQUEST = ['model', 'endpoint', 'request_type'] as const;
const INPUT_TOKENS: BucketRange = { min: 50, max: 128000, count: 12 };

/** In registration order, which is the order a scrape prints them in. */
export const METRICS = {
  outputTokens: {
    suffix: 'output_tokens_total',
    type: 'counter',
    help: 'Output tokens generated, counted as each streamed chunk is written to the client (unary: at body end)',
    labels: MODEL,
    extraLabels: true,
  },
  reasoningTokens: {
    suffix: 'reasoning_tokens_total',
    type: 'counter',
    help: 'Reasoning (thinking) tokens generated, a subset of output tokens, counted as they stream',
    labels: MODEL,
    extraLabels: true,
  },
  requests: {
    suffix: 'requests_total',
    type: 'counter',
    help: 'LLM requests ended (finished, failed or aborted)',
    labels: [...REQUEST, 'status', 'error_type'],
    extraLabels: true,
  },
  requestsStarted: { suffix: 'requests_started_total', type: 'counter', help: 'LLM requests started', labels: REQUEST, extraLabels: true },
  inflightRequests: {
    suffix: 'inflight_requests',
    type: 'gauge',
    help: 'LLM requests in flight (deprecated in Dynamo; same as active_requests)',
    labels: MODEL,
    inFlight: true,
  },
  activeRequests: { suffix: 'active_requests', type: 'gauge', help: 'LLM requests being served', labels: MODEL, inFlight: true },
  queuedRequests: { suffix: 'queued_requests', type: 'gauge', help: 'LLM requests waiting for their first token', labels: MODEL, inFlight: true },
  disconnectedClients: {
    suffix: 'disconnected_clients',
    type: 'gauge',
    help: 'Clients that went away before their response ended (never decremented, as in Dynamo)',
    labels: [],
  },
  modelCancellation: {
    suffix: 'model_cancellation_total',
    type: 'counter',
    help: 'LLM requests cancelled because the client disconnected',
    labels: REQUEST,
    extraLabels: true,
  },
  requestDuration: {
    suffix: 'request_duration_seconds',
    type: 'histogram',
    help: 'LLM request duration, from arrival to end',
    labels: MODEL,
    buckets: { min: 1, max: 512, count: 10 },
  },
  timeToFirstToken: {
    suffix: 'time_to_first_token_seconds',
    type: 'histogram',
    help: 'Time from request arrival to the first chunk with tokens written to the client (streaming)',
    labels: MODEL,
    buckets: { min: 0.001, max: 480, count: 18 },
  },
  interTokenLatency: {
    suffix: 'inter_token_latency_seconds',
    type: 'histogram',
    help: "Time between token-bearing chunks divided over the chunk's tokens (streaming)",
    labels: MODEL,
    buckets: { min: 0.001, max: 2, count: 13 },
  },
  inputSequenceTokens: { suffix: 'input_sequence_tokens', type: 'histogram', help: 'Prompt tokens per request', labels: MODEL, buckets: INPUT_TOKENS },
  outputSequenceTokens: {
    suffix: 'output_sequence_tokens',
    type: 'histogram',
    help: 'Output tokens per request, at request end',
    labels: MODEL,
    buckets: { min: 50, max: 32000, count: 10 },
  },
  cachedTokens: {
    suffix: 'cached_tokens',
    type: 'histogram',
    help: 'Cached prompt tokens per request, when reported',
    labels: MODEL,
    buckets: INPUT_TOKENS,
  },
  inputTokens: {
    suffix: 'input_tokens_total',
    type: 'counter',
    help: "Prompt tokens, counted when a request's prompt token count is first known",
    labels: MODEL,
    extraLabels: true,
  },
  requestsFinished: {
    suffix: 'requests_finished_total',
    type: 'counter',
    help: 'LLM requests that ended with a finish reason',
    labels: ['model', 'finish_reason'],
    extraLabels: true,
  },
  outputTokensOvercount: {
    suffix: 'output_tokens_overcount_total',
    type: 'counter',
    help: 'Output tokens the live estimate counted beyond the final usage (a counter cannot go down)',
    labels: MODEL,
    extraLabels: true,
  },
  outputTokensEstimated: {
    suffix: 'output_tokens_estimated_total',
    type: 'counter',
    help: 'Output tokens of requests that ended without a stated usage: the part of output_tokens_total that is an estimate',
    labels: MODEL,
    extraLabels: true,
  },
  parseErrors: {
    suffix: 'parse_errors_total',
    type: 'counter',
    help: 'Malformed or oversized response events and bodies the middleware skipped',
    labels: ['endpoint', 'reason'],
  },
} as const satisfies Record<string, MetricDefinition>;

export type MetricKey = keyof typeof METRICS;
type KeysOfType<T extends MetricDefinition['type']> = { [K in MetricKey]: (typeof METRICS)[K]['type'] extends T ? K : never }[MetricKey];
export type CounterKey = KeysOfType<'counter'>;
export type GaugeKey = KeysOfType<'gauge'>;
export type HistogramName = KeysOfType<'histogram'>;

export const METRIC_KEYS = Object.keys(METRICS) as MetricKey[];
export const HISTOGRAM_NAMES = METRIC_KEYS.filter((key): key is HistogramName => METRICS[key].type === 'histogram');

/** Metric name suffixes; the full name is `${prefix}_${suffix}`. */
export const METRIC_SUFFIXES = Object.fromEntries(METRIC_KEYS.map((key) => [key, METRICS[key].suffix])) as {
  readonly [K in MetricKey]: (typeof METRICS)[K]['suffix'];
};

/** Label names the package itself uses, which `extraLabels` may not take (plus prom-client's reserved `le`). */
export const BUILT_IN_LABELS: ReadonlySet<string> = new Set([
  ...METRIC_KEYS.flatMap((key): readonly string[] => METRICS[key].labels),
  'le',
  'quantile',
]);
