import type { IncomingMessage } from 'node:http';
import express from 'express';
import type { ErrorRequestHandler, Express } from 'express';
import type { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../lib';
import type { DynamoMetricsOptions } from '../lib';
import { livePage } from './live-page';
import { MOCK_DEFAULTS, mockLlm } from './mock-llm';
import type { MockOptions } from './mock-llm';
import { AI_SDK_ROUTE, mockAiSdk } from './mock-ai-sdk';
import { mockOllama } from './mock-ollama';
import { RequestError, sendError } from './openai-error';
import type { OpenTelemetryExport } from './otel';
import { rememberRawBody, upstreamProxy } from './proxy';
import type { UpstreamOptions } from './proxy';

export interface ExampleAppOptions {
  /** Registry for both the middleware and `/metrics`; tests pass a fresh one. Defaults to prom-client's global. */
  registry?: Registry;
  /** Further middleware options. */
  metrics?: Omit<DynamoMetricsOptions, 'registry'>;
  /** Mock model settings (ignored in proxy mode). */
  mock?: Partial<MockOptions>;
  /** Proxy mode: forward `/v1/*`, Gemini's `/v1beta/*` and Ollama's `/api/chat`, `/api/generate` here instead of answering with the mock. */
  upstream?: UpstreamOptions;
  /** Also record to OpenTelemetry, served at `/otel/metrics` beside `/metrics`. */
  openTelemetry?: OpenTelemetryExport;
}

// LLM prompts are large: body-parser's 100 kB default would reject long conversations.
const BODY_LIMIT = '32mb';

const openAIErrors: ErrorRequestHandler = (error: unknown, _req, res, next) => {
  if (res.headersSent) return next(error);
  const { status, type, message } = error as { status?: number; type?: string; message?: string };
  if (type === 'entity.parse.failed') {
    return sendError(res, new RequestError(400, `the request body is not valid JSON: ${message}`, null, 'invalid_json'));
  }
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return sendError(res, new RequestError(status, message ?? 'bad request'));
  }
  console.error(error);
  sendError(res, new RequestError(500, 'internal error in the example app', null, null, 'server_error'));
};

function jsonBody(req: IncomingMessage): boolean {
  return /^\/api\//.test(req.url ?? '') || /^application\/(?:[\w.+-]*\+)?json\b/i.test(req.headers['content-type'] ?? '');
}

/**
 * The example gateway: body parser, the metrics middleware, `/metrics` and the live page, then the mock model (OpenAI routes, an
 * Ollama-compatible `/api/chat` and an AI SDK route) or the upstream proxy.
 */
export function createApp(options: ExampleAppOptions = {}): Express {
  const { registry, upstream, openTelemetry } = options;
  const app = express();
  app.disable('x-powered-by');
  // Mounted before dynamoMetrics so it can label requests with the model the client asked for at arrival. Ollama's
  // routes take JSON whatever its content type says, as Ollama does (`curl -d` sends a form's).
  app.use(express.json({ limit: BODY_LIMIT, verify: upstream ? rememberRawBody : undefined, type: jsonBody }));
  const mock: MockOptions = { ...MOCK_DEFAULTS, ...options.mock };
  // The AI SDK route's requests name no model (the app picks it): the model option names it.
  const aiSdkModel = (req: IncomingMessage): string | undefined => (!upstream && req.url?.split('?')[0] === AI_SDK_ROUTE ? mock.models[0] : undefined);
  app.use(dynamoMetrics({ model: aiSdkModel, ...options.metrics, registry, meter: openTelemetry?.meter }));
  app.use(metricsRouter({ registry }));
  if (openTelemetry) app.get('/otel/metrics', openTelemetry.metricsHandler);
  app.use(livePage());
  if (upstream) {
    app.use(upstreamProxy(upstream));
  } else {
    app.use(mockLlm(options.mock), mockOllama(mock), mockAiSdk(mock));
  }
  app.use('/v1', (req, res) => {
    sendError(res, new RequestError(404, `no route for ${req.method} ${req.originalUrl}`, null, 'unknown_url'));
  });
  app.use(openAIErrors);
  return app;
}
