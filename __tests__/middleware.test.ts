/**
 * `dynamoMetrics()` as what it is, a `(req, res, next)` function on Node's own request and response: mounted on a
 * bare `http` server (no framework), it calls `next()` once whatever happens, turns the user's callbacks' mistakes
 * into `onError` reports instead of failures, counts a response once however many instances watch it, and claims a
 * POST on an unknown path only when its head shows an AI SDK stream.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../lib/middleware';
import type { DynamoMetricsMiddleware } from '../lib/middleware';
import type { DynamoMetricsError, DynamoMetricsOptions } from '../lib/options';
import { eventually, listen, postJson, request } from './support/http';
import type { RunningServer } from './support/http';
import { m, value } from './support/registry-values';
import { chatChunk, codePoints, DONE, sse } from './support/streams';
import { watchWarnings } from './support/warnings';

const TEXTS = ['Hé', 'llo', ' wörld', ' 🌍'];
const TOKENS = TEXTS.reduce((sum, text) => sum + codePoints(text), 0);

function writeChatStream(res: ServerResponse, model: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const text of TEXTS) res.write(sse(chatChunk(model, [{ delta: { content: text } }])));
  res.end(sse(chatChunk(model, [{ delta: {}, finish_reason: 'stop' }])) + DONE);
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A bare Node server: every middleware in turn, then the handler, as a framework would chain them. */
async function serve(middlewares: DynamoMetricsMiddleware[], handler: Handler, nextCalls: number[] = []): Promise<RunningServer> {
  server = await listen((req, res) => {
    let index = 0;
    const next = (): void => {
      nextCalls.push(index);
      const middleware = middlewares[index++];
      if (middleware === undefined) handler(req, res);
      else middleware(req, res, next);
    };
    next();
  });
  return server;
}

function withErrors(options: DynamoMetricsOptions = {}): { options: DynamoMetricsOptions; errors: DynamoMetricsError[]; registry: Registry } {
  const errors: DynamoMetricsError[] = [];
  const registry = new Registry();
  // Counted by code points unless a test says otherwise, so expected counts are exact.
  return { options: { countTokens: codePoints, ...options, registry, onError: (error) => errors.push(error) }, errors, registry };
}

const requestsEnded = async (registry: Registry, count = 1): Promise<void> =>
  eventually(async () => (await value(registry, m('requests_total'))) === count);

describe('dynamoMetrics() on a bare Node server', () => {
  it('counts a streamed chat completion and passes the request on once', async () => {
    const { options, errors, registry } = withErrors();
    const nextCalls: number[] = [];
    const { port } = await serve([dynamoMetrics(options)], (_req, res) => writeChatStream(res, 'm1'), nextCalls);
    const response = await postJson(port, '/v1/chat/completions', { model: 'm1', stream: true });
    expect(response.status).toBe(200);
    await requestsEnded(registry);
    expect(nextCalls).toEqual([0, 1]);
    expect(await value(registry, m('output_tokens_total'), { model: 'm1' })).toBe(TOKENS);
    expect(await value(registry, m('requests_total'), { model: 'm1', endpoint: 'chat_completions', request_type: 'stream', status: 'success' })).toBe(1);
    expect(errors).toEqual([]);
  });

  it('throws at creation when it is mounted as `app.use(dynamoMetrics)`', () => {
    const { options } = withErrors();
    const mountedWrongly = dynamoMetrics as unknown as (req: unknown) => unknown;
    expect(() => mountedWrongly({ method: 'GET', url: '/', headers: {} })).toThrow(TypeError);
    expect(() => mountedWrongly({ method: 'GET', url: '/', headers: {} })).toThrow('`app.use(dynamoMetrics)` should be `app.use(dynamoMetrics())`');
    expect(() => dynamoMetrics(options)).not.toThrow();
  });

  it('leaves requests the endpoint rule does not name alone: a GET on an LLM path, any other path', async () => {
    const { options, registry } = withErrors();
    const { port } = await serve([dynamoMetrics(options)], (_req, res) => writeChatStream(res, 'm1'));
    await request(port, 'GET', '/v1/chat/completions');
    await postJson(port, '/health', {});
    // A request it does count, after them: once it has ended, the others would have too.
    await postJson(port, '/v1/chat/completions', {});
    await requestsEnded(registry);
    expect(await value(registry, m('requests_total'), { endpoint: 'chat_completions' })).toBe(1);
    expect(await value(registry, m('requests_started_total'))).toBe(1);
    expect(await value(registry, m('output_tokens_total'))).toBe(TOKENS);
  });

  it('reports an endpoint option that throws as internal, calls next() and serves the response untouched', async () => {
    const { options, errors, registry } = withErrors({
      endpoint: () => {
        throw new Error('endpoint bug');
      },
    });
    const nextCalls: number[] = [];
    const { port } = await serve([dynamoMetrics(options)], (_req, res) => writeChatStream(res, 'm1'), nextCalls);
    const response = await postJson(port, '/v1/chat/completions', { model: 'm1' });
    expect(response.body.toString()).toContain('"content":" wörld"');
    expect(nextCalls).toEqual([0, 1]);
    expect(errors.map((error) => error.code)).toEqual(['internal']);
    expect(errors[0]?.cause).toEqual(new Error('endpoint bug'));
    expect(await value(registry, m('requests_total'))).toBe(0);
  });

  it('falls back to the default estimate when countTokens throws or returns no count, and says so', async () => {
    let calls = 0;
    const { options, errors, registry } = withErrors({
      countTokens: (text) => {
        calls++;
        if (text === 'Hé') throw new Error('tokenizer bug');
        if (text === 'llo') return Number.NaN;
        return 10;
      },
    });
    const { port } = await serve([dynamoMetrics(options)], (_req, res) => writeChatStream(res, 'm1'));
    await postJson(port, '/v1/chat/completions', { model: 'm1' });
    await requestsEnded(registry);
    expect(calls).toBe(TEXTS.length);
    expect(errors.map((error) => error.code)).toEqual(['count_tokens_failed', 'invalid_count']);
    // Two deltas by the user's counter (10 each), two by the default estimator (at least one token each).
    const output = await value(registry, m('output_tokens_total'), { model: 'm1' });
    expect(output).toBeGreaterThanOrEqual(22);
    expect(output).toBeLessThanOrEqual(20 + codePoints('Hé') + codePoints('llo'));
    // Each way it failed is reported once, however many chunks it fails on.
    await postJson(port, '/v1/chat/completions', { model: 'm1' });
    await requestsEnded(registry, 2);
    expect(calls).toBe(2 * TEXTS.length);
    expect(errors).toHaveLength(2);
  });

  it('rounds a fractional countTokens result', async () => {
    const { options, errors, registry } = withErrors({ countTokens: () => 1.6 });
    const { port } = await serve([dynamoMetrics(options)], (_req, res) => writeChatStream(res, 'm1'));
    await postJson(port, '/v1/chat/completions', { model: 'm1' });
    await requestsEnded(registry);
    expect(await value(registry, m('output_tokens_total'), { model: 'm1' })).toBe(2 * TEXTS.length);
    expect(errors).toEqual([]);
  });

  it('uses the response model when the model option throws, and reports it', async () => {
    const { options, errors, registry } = withErrors({
      model: () => {
        throw new Error('model bug');
      },
    });
    const { port } = await serve([dynamoMetrics(options)], (_req, res) => writeChatStream(res, 'from-response'));
    await postJson(port, '/v1/chat/completions', { model: 'ignored-without-a-body-parser' });
    await requestsEnded(registry);
    expect(errors.map((error) => error.code)).toContain('model_option_failed');
    expect(await value(registry, m('output_tokens_total'), { model: 'from-response' })).toBe(TOKENS);
  });

  it('survives an onError that throws: the response is served and counted', async () => {
    const registry = new Registry();
    const middleware = dynamoMetrics({
      registry,
      countTokens: codePoints,
      onError: () => {
        throw new Error('onError bug');
      },
    });
    const { port } = await serve([middleware], (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: {not json\n\n${sse(chatChunk('m1', [{ delta: { content: 'ok' } }]))}${DONE}`);
    });
    const response = await postJson(port, '/v1/chat/completions', {});
    expect(response.body.toString()).toContain('data: {not json');
    await requestsEnded(registry);
    expect(await value(registry, m('parse_errors_total'), { endpoint: 'chat_completions', reason: 'invalid_json' })).toBe(1);
    expect(await value(registry, m('output_tokens_total'), { model: 'm1' })).toBe(2);
  });

  it('reports each skipped event to onError with its reason as the code', async () => {
    const { options, errors, registry } = withErrors({ maxEventBytes: 64 });
    const { port } = await serve([dynamoMetrics(options)], (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: {broken\n\n${sse(chatChunk('m1', [{ delta: { content: 'x'.repeat(200) } }]))}${DONE}`);
    });
    await postJson(port, '/v1/chat/completions', {});
    await requestsEnded(registry);
    expect(errors.map((error) => error.code)).toEqual(['invalid_json', 'event_too_large']);
    expect(errors.every((error) => error instanceof Error && error.message.length > 0)).toBe(true);
  });

  it('counts a response once when two instances on the same registry watch it, twice on two registries', async () => {
    const shared = new Registry();
    const other = new Registry();
    const { port } = await serve(
      [shared, shared, other].map((registry) => dynamoMetrics({ registry, countTokens: codePoints })),
      (_req, res) => writeChatStream(res, 'm1'),
    );
    await postJson(port, '/v1/chat/completions', { model: 'm1' });
    await requestsEnded(shared);
    await requestsEnded(other);
    expect(await value(shared, m('output_tokens_total'), { model: 'm1' })).toBe(TOKENS);
    expect(await value(other, m('output_tokens_total'), { model: 'm1' })).toBe(TOKENS);
  });

  describe('a POST on a path it does not know', () => {
    const aiSdkStream: Handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-vercel-ai-ui-message-stream': 'v1' });
      for (const text of TEXTS) res.write(sse({ type: 'text-delta', id: '0', delta: text }));
      res.end(sse({ type: 'finish', finishReason: 'stop' }) + DONE);
    };

    it('is claimed when its response head shows an AI SDK UI message stream', async () => {
      const { options, registry } = withErrors();
      const { port } = await serve([dynamoMetrics(options)], aiSdkStream);
      await postJson(port, '/my/app/route', { messages: [] });
      await requestsEnded(registry);
      expect(await value(registry, m('requests_total'), { endpoint: 'ai_sdk_ui', request_type: 'stream' })).toBe(1);
      expect(await value(registry, m('output_tokens_total'))).toBe(TOKENS);
    });

    it('is left alone when its response is anything else', async () => {
      const { options, registry } = withErrors();
      const { port } = await serve([dynamoMetrics(options)], (_req, res) => writeChatStream(res, 'm1'));
      await postJson(port, '/my/app/route', {});
      await postJson(port, '/my/app/route', {});
      await postJson(port, '/v1/chat/completions', {});
      await requestsEnded(registry);
      expect(await value(registry, m('requests_total'), { endpoint: 'chat_completions' })).toBe(1);
      expect(await value(registry, m('requests_started_total'))).toBe(1);
    });

    it('is not watched at all when the endpoint option decides which requests are LLM requests', async () => {
      const { options, registry } = withErrors({ endpoint: (req) => (req.url === '/llm' ? 'chat_completions' : undefined) });
      const { port } = await serve([dynamoMetrics(options)], aiSdkStream);
      await postJson(port, '/my/app/route', {});
      await postJson(port, '/llm', {});
      await requestsEnded(registry);
      expect(await value(registry, m('requests_total'), { endpoint: 'chat_completions' })).toBe(1);
      expect(await value(registry, m('requests_total'), { endpoint: 'ai_sdk_ui' })).toBe(0);
    });
  });

  it('warns once per middleware about a body in an encoding it cannot decode, and still counts each request', async () => {
    // process.on('warning') never fires inside Jest: watch emitWarning calls instead.
    const watch = watchWarnings();
    try {
      const { options, errors, registry } = withErrors();
      const { port } = await serve([dynamoMetrics(options)], (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'zstd' });
        res.end(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]));
      });
      await postJson(port, '/v1/chat/completions', {});
      await postJson(port, '/v1/chat/completions', {});
      await requestsEnded(registry, 2);
      const warnings = watch.warnings.filter((warning) => warning.code === 'DYNAMO_METRICS_COMPRESSED');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]?.message).toContain('"zstd"');
      expect(errors.map((error) => error.code)).toEqual(['compressed_body', 'compressed_body']);
      expect(await value(registry, m('parse_errors_total'), { reason: 'compressed_body' })).toBe(2);
    } finally {
      watch.stop();
    }
  });
});
