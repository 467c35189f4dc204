/**
 * Which requests are counted under which endpoint: Express's 404 and next(err), legacy completions, embeddings,
 * non-LLM requests, differently cased paths, a custom endpoint(req), sub-path mounts, piped streams.
 */
import { Readable } from 'node:stream';
import type { Application } from 'express';
import { dynamoMetrics } from '../../lib/index';
import type { DynamoMetricsError } from '../../lib/index';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { postJson, request, sleep } from '../support/http';
import { labelSets, m } from '../support/registry-values';
import { codePoints, contentChunk, DONE, finishChunk, roleChunk, sse } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, expressLib, gauges, get, serve, start } = t;

  it('counts a route that does not exist (404 from Express) as not_found, and next(err) (500) as internal', async () => {
    const port = await start(
      (app) => {
        app.post('/v1/completions', (_req, _res, next) => next(new Error('handler failed')));
      },
      { metrics: { models: ['m'] } },
    );
    expect((await postJson(port, CHAT, { model: 'm', stream: true })).status).toBe(404);
    expect((await postJson(port, '/v1/completions', { model: 'm', prompt: 'x' })).status).toBe(500);
    await ended(2);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'error', error_type: 'not_found' })).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'completions', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('reads a legacy completions stream on /v1/completions', async () => {
    const text = (t: string, finish: string | null = null): string =>
      sse({ id: 'cmpl-1', object: 'text_completion', created: 1, model: 'm', choices: [{ index: 0, text: t, logprobs: null, finish_reason: finish }] });
    const port = await start((app) => {
      app.post('/v1/completions', (_req, res) =>
        writeSse(res, [text('Once'), text(' upon'), text('', 'length'), sse({ object: 'text_completion', model: 'm', choices: [], usage: { prompt_tokens: 2, completion_tokens: 9, total_tokens: 11 } }), DONE]),
      );
    });
    await postJson(port, '/v1/completions', { model: 'm', stream: true, prompt: 'x' });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(9);
    expect(await get('requests_total', { model: 'm', endpoint: 'completions', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await get('requests_finished_total', { model: 'm', finish_reason: 'length' })).toBe(1);
    expect(await get('input_tokens_total', { model: 'm' })).toBe(2);
  });

  it('counts an embeddings request as unary with its prompt tokens and no output tokens', async () => {
    const port = await start((app) => {
      app.post('/v1/embeddings', (_req, res) => {
        res.json({ object: 'list', model: 'emb', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], usage: { prompt_tokens: 8, total_tokens: 8 } });
      });
    });
    await postJson(port, '/v1/embeddings', { model: 'emb', input: 'hello' });
    await ended();
    expect(await get('requests_total', { model: 'emb', endpoint: 'embeddings', request_type: 'unary', status: 'success', error_type: '' })).toBe(1);
    expect(await get('input_tokens_total', { model: 'emb' })).toBe(8);
    expect(await get('output_tokens_total', { model: 'emb' })).toBe(0);
    expect(await get('output_sequence_tokens', {}, 'count')).toBe(0);
  });

  it('leaves non-LLM requests untouched and uncounted', async () => {
    const routes = (app: Application): void => {
      app.get('/health', (_req, res) => {
        res.json({ ok: true });
      });
      app.post('/v1/other', (_req, res) => writeSse(res, [contentChunk('m', 'abc'), DONE]));
      app.get('/v1/models', (_req, res) => {
        res.json({ data: [{ id: 'm' }] });
      });
      app.options(CHAT, (_req, res) => {
        res.set('Access-Control-Allow-Methods', 'POST').status(204).end();
      });
      app.head(CHAT, (_req, res) => {
        res.status(200).end();
      });
    };
    const withPort = await start(routes);
    const withoutPort = await start(routes, { withMiddleware: false });
    for (const [method, path] of [['GET', '/health'], ['POST', '/v1/other'], ['GET', '/v1/models'], ['OPTIONS', CHAT], ['HEAD', CHAT]] as const) {
      const a = await request(withPort, method, path, method === 'POST' ? { model: 'm' } : undefined);
      const b = await request(withoutPort, method, path, method === 'POST' ? { model: 'm' } : undefined);
      expect(a.body.equals(b.body)).toBe(true);
      expect(a.status).toBe(b.status);
    }
    await sleep(30);
    for (const name of ['requests_total', 'requests_started_total', 'output_tokens_total', 'inflight_requests', 'parse_errors_total']) {
      expect(await labelSets(t.registry, m(name))).toEqual([]);
    }
  });

  it('counts a request to a differently cased path that Express routes to the LLM handler', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE])));
    const response = await postJson(port, '/V1/Chat/Completions', { model: 'm', stream: true });
    expect(response.status).toBe(200);
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
  });

  it('uses a custom endpoint(req) to pick LLM requests and their endpoint label', async () => {
    const port = await start(
      (app) => {
        app.post('/generate', (_req, res) => writeSse(res, [contentChunk('m', 'abcd'), finishChunk('m'), DONE]));
        app.post(CHAT, (_req, res) => writeSse(res, [contentChunk('m', 'ab'), finishChunk('m'), DONE]));
      },
      { metrics: { endpoint: (req) => (req.url?.startsWith('/generate') ? 'generate' : undefined) } },
    );
    await postJson(port, '/generate', { model: 'm', stream: true });
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    await sleep(30);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'generate', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(4);
  });

  it('recognises LLM routes when the middleware and the routes are mounted on a sub-path', async () => {
    const app = expressLib() as unknown as Application;
    const router = expressLib.Router();
    router.post('/chat/completions', (_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE]));
    app.use('/v1', expressLib.json(), dynamoMetrics({ registry: t.registry, countTokens: codePoints }), router);
    const server = await serve(app);
    await postJson(server.port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
  });

  it('keeps backpressure for a piped stream: same bytes, same counts', async () => {
    const texts = Array.from({ length: 400 }, (_, i) => `tok${i % 10}${'·'.repeat(i % 5)}`);
    const expected = texts.reduce((sum, text) => sum + codePoints(text), 0);
    const pieces = [roleChunk('m'), ...texts.flatMap((text, i) => (i % 50 === 0 ? [`: ${'pad'.repeat(20000)}\n\n`, contentChunk('m', text)] : [contentChunk('m', text)])), finishChunk('m'), DONE];
    const port = await start(
      chatRoute((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        Readable.from(pieces.map((p) => Buffer.from(p)), { objectMode: false }).pipe(res);
      }),
    );
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.body.equals(Buffer.from(pieces.join('')))).toBe(true);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(expected);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
  });

  it('labels request_type by the response: an event stream is "stream" even when the body has no stream flag', async () => {
    const port = await start(
      (app) => {
        app.post('/generate', (_req, res) => writeSse(res, [contentChunk('m', 'abcd'), finishChunk('m'), DONE]));
      },
      { metrics: { endpoint: (req) => (req.url?.startsWith('/generate') ? 'generate' : undefined) } },
    );
    await postJson(port, '/generate', { model: 'm', prompt: 'hi' });
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'generate', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await get('requests_started_total', { model: 'm', endpoint: 'generate', request_type: 'stream' })).toBe(1);
    expect(await get('model_cancellation_total')).toBe(0);
  });

  it('leaves the request untouched and reports it when a custom endpoint(req) throws', async () => {
    const errors: DynamoMetricsError[] = [];
    const port = await start(chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE])), {
      metrics: {
        endpoint: () => {
          throw new Error('bad routing rule');
        },
        onError: (e) => errors.push(e),
      },
    });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(200);
    expect(response.body.toString()).toContain('[DONE]');
    await sleep(30);
    expect(errors).toHaveLength(1);
    expect(await labelSets(t.registry, m('requests_total'))).toEqual([]);
    expect(await labelSets(t.registry, m('inflight_requests'))).toEqual([]);
  });

  it('counts a request whose target carries a fragment, which Express routes as the path without it', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [roleChunk('m'), contentChunk('m', 'abc'), finishChunk('m'), DONE])));
    for (const path of [`${CHAT}#x`, `${CHAT}#`]) expect((await postJson(port, path, { model: 'm', stream: true })).status).toBe(200);
    await ended(2);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'success' })).toBe(2);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(2 * codePoints('abc'));
  });

  it("counts Claude on Vertex AI (Anthropic's Messages API at :streamRawPredict) under the model in its path", async () => {
    const vertex = '/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict';
    const events = [
      { event: 'message_start', data: { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-20250514', content: [], stop_reason: null, usage: { input_tokens: 9, output_tokens: 1 } } } },
      { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
      { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hey' } } },
      { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
      { event: 'message_delta', data: { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } } },
      { event: 'message_stop', data: { type: 'message_stop' } },
    ];
    const port = await start((app) => {
      app.post(/streamRawPredict$/, (_req, res) => writeSse(res, events.map(({ event, data }) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)));
    });
    expect((await postJson(port, vertex, { anthropic_version: 'vertex-2023-10-16', stream: true, max_tokens: 50, messages: [] })).status).toBe(200);
    await ended();
    expect(await get('requests_total', { model: 'claude-sonnet-4@20250514', endpoint: 'anthropic_messages', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'claude-sonnet-4@20250514' })).toBe(3);
    expect(await get('input_tokens_total', { model: 'claude-sonnet-4@20250514' })).toBe(9);
  });
});
