import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { MetricsStore } from '../../lib/metrics';
import type * as MetricsModule from '../../lib/metrics';
import { resolveOptions } from '../../lib/options';
import type * as OptionsModule from '../../lib/options';
import type { RequestRecorder } from '../../lib/metrics/otel';
import type { RequestFormat } from '../../lib/formats/recognise';
import { requestHints } from '../../lib/request/request-model';
import type * as RequestModelModule from '../../lib/request/request-model';
import type * as RequestStateModule from '../../lib/request/request-state';
import type * as ResponseReaderModule from '../../lib/http/response-reader';
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
import { RequestState as RequestStateSource } from '../../lib/request/request-state';
import { ResponseReader as ResponseReaderSource } from '../../lib/http/response-reader';
export { SseParser } from '../../lib/events/sse';

/**
 * What a request's state needs from its middleware, built as `dynamoMetrics()` builds it, on `registry`; with a
 * recorder, as with the `meter` option.
 */
export function requestContext(registry: Registry, recorder?: RequestRecorder, lib: ReaderInternals = SOURCE): RequestStateContext {
  const options = lib.resolveOptions({ registry });
  const store = lib.MetricsStore.for({
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
export function readerSettings(lib: ReaderInternals = SOURCE): ConstructorParameters<typeof ResponseReader>[2] {
  const { requestHints } = lib;
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

/** What the response reader's whole path needs, from lib/'s TypeScript source or from a tsc build of it. */
export interface ReaderInternals {
  MetricsStore: typeof MetricsModule.MetricsStore;
  resolveOptions: typeof OptionsModule.resolveOptions;
  requestHints: typeof RequestModelModule.requestHints;
  RequestState: typeof RequestStateModule.RequestState;
  ResponseReader: typeof ResponseReaderModule.ResponseReader;
}

const SOURCE: ReaderInternals = {
  MetricsStore,
  resolveOptions,
  requestHints,
  RequestState: RequestStateSource,
  ResponseReader: ResponseReaderSource,
};

/**
 * The same internals from a tsc build of lib/ in `dir` (see buildLibForBench): what users run. Through tsx every
 * imported binding is read through a getter, which inflates per-event figures such as instruction counts.
 */
export function compiledInternals(dir: string): ReaderInternals {
  const load = createRequire(__filename);
  const from = <T>(name: string): T => load(join(dir, name)) as T;
  return {
    MetricsStore: from<typeof MetricsModule>('metrics/index.js').MetricsStore,
    resolveOptions: from<typeof OptionsModule>('options.js').resolveOptions,
    // Builds from before the request state was split kept it in request-state.js (a `--baseline` may be one).
    requestHints: from<typeof RequestModelModule>('request/request-model.js').requestHints ?? from<typeof RequestModelModule>('request/request-state.js').requestHints,
    RequestState: from<typeof RequestStateModule>('request/request-state.js').RequestState,
    ResponseReader: from<typeof ResponseReaderModule>('http/response-reader.js').ResponseReader,
  };
}
