import type { Registry } from 'prom-client';
import { MetricsStore } from '../../lib/metrics';
import { resolveOptions } from '../../lib/options';
import type { RequestRecorder } from '../../lib/metrics/otel';
import type { RequestFormat } from '../../lib/formats/recognise';
import { requestHints } from '../../lib/request/request-model';
import type { RequestStateContext } from '../../lib/request/request-state';
import type { ResponseReader } from '../../lib/http/response-reader';

/**
 * The one door from bench/ into lib/'s internals: the stage benchmarks time the pipeline's pieces one by one,
 * which the public API cannot reach. When lib/ is reorganised, this file is the only one in bench/ to follow it.
 */

export { ResponseTextDecoder } from '../../lib/http/decode';
export { estimateTokens } from '../../lib/counting/estimate';
export { hookResponse } from '../../lib/http/hook';
export type { ResponseListener } from '../../lib/http/hook';
export { GenAiRecorder } from '../../lib/metrics/otel';
export { openAiReader } from '../../lib/formats/openai';
export type { ObservationSink } from '../../lib/formats/types';
export { RequestState } from '../../lib/request/request-state';
export { ResponseReader } from '../../lib/http/response-reader';
export { SseParser } from '../../lib/events/sse';

/**
 * What a request's state needs from its middleware, built as `dynamoMetrics()` builds it, on `registry`; with a
 * recorder, as with the `meter` option.
 */
export function requestContext(registry: Registry, recorder?: RequestRecorder): RequestStateContext {
  const options = resolveOptions({ registry });
  const store = MetricsStore.for({
    registry,
    prefix: options.prefix,
    models: options.models,
    maxModels: options.maxModels,
    buckets: options.buckets,
  });
  // No countTokens: each request state keeps its own default estimator, as with dynamoMetrics().
  return { store, endpoint: 'chat_completions', estimate: undefined, malformed: () => undefined, recorder };
}

/**
 * Registers the metrics on `registry` as `dynamoMetrics({ registry, maxModels })` will, but rendered through
 * prom-client's own formatter: the path any prom-client other than the tested 15.1 releases takes. The middleware
 * created afterwards on the same registry shares these metrics.
 */
export function registerWithPublicTextOnly(registry: Registry, maxModels: number): void {
  const options = resolveOptions({ registry, maxModels });
  MetricsStore.for({ ...options, publicTextOnly: true });
}

/** The response reader's per-middleware settings, with the defaults' limits; a listener bug fails the bench loudly. */
export function readerSettings(): ConstructorParameters<typeof ResponseReader>[2] {
  return {
    maxEventBytes: 1024 * 1024,
    maxBodyBytes: 8 * 1024 * 1024,
    internalError: (error) => {
      throw error;
    },
    compressedBody: () => undefined,
    hints: (req) => requestHints(req),
  };
}

/** A chat completions request as the middleware describes it to the response reader (path-matched, no option). */
export const CHAT_REQUEST: RequestFormat = { endpoint: 'chat_completions', byOption: false, url: '/v1/chat/completions' };
