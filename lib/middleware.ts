import type { IncomingMessage, ServerResponse } from 'node:http';
import { estimateTokens } from './counting/estimate';
import { closeWatchFor } from './http/connection';
import { hookResponse } from './http/hook';
import { MetricsStore } from './metrics';
import type { ExtraLabelProblem } from './metrics/extra-labels';
import type { DynamoMetricsError, DynamoMetricsOptions, HttpRequest } from './option-types';
import { resolveOptions } from './options';
import { GenAiRecorder } from './metrics/otel';
import { requestModelHints } from './request/request-model';
import { RequestState } from './request/request-state';
import type { RequestHints } from './request/request-model';
import { ResponseReader } from './http/response-reader';
import type { ResponseReaderSettings } from './http/response-reader';
import { UnmatchedResponse } from './http/unmatched-response';

/**
 * A `(req, res, next)` middleware on Node's own request and response, for Express, Connect, NestJS's `app.use()`
 * or Fastify through `@fastify/middie`.
 */
export type DynamoMetricsMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

function makeError(code: string, message: string, cause?: unknown): DynamoMetricsError {
  const error = new Error(message, cause === undefined ? undefined : { cause }) as DynamoMetricsError;
  error.code = code;
  return error;
}

/**
 * Middleware that observes every LLM response (streaming or not) and keeps the `dynamo_frontend_*` metrics. Mount
 * it first: it reads the parsed request body when the response starts, and a compressed response from a decoded
 * copy, so body parsers and `compression` may come before or after it. It uses nothing but Node's
 * `req`/`res`, so any framework that hands them to middleware can mount it. `Req` is the request type the
 * `endpoint` callback receives, inferred from its annotation.
 */
export function dynamoMetrics<Req extends IncomingMessage = HttpRequest>(options?: DynamoMetricsOptions<Req>): DynamoMetricsMiddleware {
  const config = resolveOptions(options);
  const store = MetricsStore.for(config);
  const { countTokens, onError } = config;
  let warnedCompressed = false;

  const report = (error: DynamoMetricsError): void => {
    if (onError === undefined) return;
    try {
      onError(error);
    } catch {
      // An onError that throws must not break the response either.
    }
  };

  // A countTokens that fails, fails on every chunk: each way it fails is reported once per middleware.
  const countTokensReported = new Set<string>();
  const countTokensFailed = (error: DynamoMetricsError): void => {
    if (countTokensReported.has(error.code)) return;
    countTokensReported.add(error.code);
    report(error);
  };
  // Without countTokens each request state keeps its own default estimator (it follows the stream's shape).
  const estimate =
    countTokens === undefined
      ? undefined
      : (text: string, model: string): number => {
          try {
            const count = countTokens(text, model);
            if (typeof count === 'number' && Number.isFinite(count) && count >= 0) return Math.round(count);
            countTokensFailed(makeError('invalid_count', `countTokens returned ${String(count)}; using the default estimate (reported once)`));
          } catch (error) {
            countTokensFailed(makeError('count_tokens_failed', 'countTokens threw; using the default estimate (reported once)', error));
          }
          return estimateTokens(text);
        };

  const extraLabelProblem = (problem: ExtraLabelProblem): void => report(makeError(problem.code, problem.message, problem.cause));

  const recorder =
    config.meter === undefined
      ? undefined
      : new GenAiRecorder(config.meter, {
          estimatedUsage: config.otelEstimatedUsage,
          models: config.models,
          maxModels: config.maxModels,
          failed: (error) => report(makeError('otel_record_failed', 'the OpenTelemetry meter threw while recording a request', error)),
        });

  const malformed = (endpoint: string, reason: string, detail: string | undefined): void => {
    store.parseError(endpoint, reason);
    report(makeError(reason, detail === undefined ? reason : `${reason}: ${detail}`));
  };

  const hints = (req: IncomingMessage, endpoint: string): RequestHints | undefined => {
    try {
      return requestModelHints(req, endpoint, config.model);
    } catch (error) {
      report(makeError('model_option_failed', 'the model option threw; using the request body', error));
      return requestModelHints(req, endpoint, undefined);
    }
  };

  // The same for every response: per-request work is paid on every stream, so it is kept to the request's own state.
  const readerSettings: ResponseReaderSettings = {
    maxEventBytes: config.maxEventBytes,
    maxBodyBytes: config.maxBodyBytes,
    internalError: (error) => report(makeError('internal', 'express-dynamo-metrics stopped reading a response', error)),
    compressedBody: (encoding) => {
      if (warnedCompressed) return;
      warnedCompressed = true;
      process.emitWarning(
        `express-dynamo-metrics sees response bodies with Content-Encoding "${encoding}", which it does not decode (it reads gzip, deflate and br), so it cannot count their tokens`,
        { code: 'DYNAMO_METRICS_COMPRESSED' },
      );
    },
    hints,
  };

  // Outside any request's call stack: a bug here must be reported, never thrown into the process.
  const bodyRead = (state: RequestState, req: IncomingMessage, endpoint: string): void => {
    try {
      state.requestBodyRead(hints(req, endpoint));
    } catch (error) {
      readerSettings.internalError(error);
    }
  };

  const observe = (req: IncomingMessage, endpoint: string, url: string | undefined, arrivedAt: number | undefined): ResponseReader => {
    const extraLabels = store.extraLabels.valuesFor(req, extraLabelProblem);
    const state = new RequestState({ store, endpoint, estimate, malformed, extraLabels, recorder, arrivedAt }, hints(req, endpoint));
    // Mounted before the body parser, the middleware learns the model once the parsed body is there (a turn after
    // the body's end): the request then waits for its first token under its model, not under unknown_model.
    if (!req.readableEnded) req.once('end', () => setImmediate(() => bodyRead(state, req, endpoint)));
    return new ResponseReader(state, { endpoint, byOption: config.endpointByOption, url }, readerSettings, req);
  };

  return function dynamoMetricsMiddleware(req, res, next) {
    try {
      const endpoint = config.endpoint(req);
      const observed = res as ServerResponse & Record<symbol, boolean | undefined>;
      if (observed[store.responseMark] !== true) {
        const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url;
        if (endpoint !== undefined) {
          observed[store.responseMark] = true;
          hookResponse(res, observe(req, endpoint, url, undefined), closeWatchFor(req));
        } else if (!config.endpointByOption && req.method === 'POST') {
          // Any route may send an AI SDK stream; only its response head tells. The response is claimed then, so
          // another middleware on this registry that names the request at arrival still counts it, once.
          const claim = (label: string, arrivedAt: number): ResponseReader | undefined => {
            if (observed[store.responseMark] === true) return undefined;
            observed[store.responseMark] = true;
            return observe(req, label, url, arrivedAt);
          };
          hookResponse(res, new UnmatchedResponse(claim, readerSettings.internalError, url), closeWatchFor(req));
        }
      }
    } catch (error) {
      report(makeError('internal', 'express-dynamo-metrics could not observe a request', error));
    }
    next();
  };
}
