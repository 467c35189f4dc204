/**
 * The real `ai` package writing into Express: `streamText(...).pipeUIMessageStreamToResponse(res)` and
 * `pipeTextStreamToResponse(res)` on a `MockLanguageModelV3`, read back from the registry and /metrics.
 */
import http from 'node:http';
import express from 'express';
import { Registry } from 'prom-client';
import { smoothStream, streamText } from 'ai';
import type { UIMessageStreamOptions, UIMessage } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { dynamoMetrics } from '../../lib';
import { closedAfterEach, eventually, listen, openStream, postJson, signal } from '../support/http';
import { meteredApp } from '../support/metered-app';
import { modelStream } from '../support/model-stream';
import type { StreamGate } from '../support/model-stream';
import type { MeteredApp, MeteredOptions, Route } from '../support/metered-app';
import { m, value, valueFromText } from '../support/registry-values';
import { codePoints } from '../support/streams';
import { o200kTokens, oneTokenStream } from '../support/token-streams';

const servers = closedAfterEach();

type StreamPart = Parameters<ReadableStreamDefaultController<unknown>['enqueue']>[0];

const TEXT = ['Hello', ', wörld', ' 🌍', ' ça', ' va?'];
const REASONING = ['Thïnk', 'ing'];
const TEXT_TOKENS = TEXT.reduce((n, t) => n + codePoints(t), 0);
const REASONING_TOKENS = REASONING.reduce((n, t) => n + codePoints(t), 0);

/** What a provider streams into the SDK: reasoning, text, then the finish with its usage (LanguageModelV3 parts). */
function modelParts(options: { error?: boolean; finishReason?: string } = {}): StreamPart[] {
  return [
    { type: 'stream-start', warnings: [] },
    { type: 'response-metadata', id: 'resp-1', modelId: 'mock-model-id', timestamp: new Date(0) },
    { type: 'reasoning-start', id: 'r-0' },
    ...REASONING.map((delta) => ({ type: 'reasoning-delta', id: 'r-0', delta })),
    { type: 'reasoning-end', id: 'r-0' },
    { type: 'text-start', id: 't-0' },
    ...TEXT.map((delta) => ({ type: 'text-delta', id: 't-0', delta })),
    ...(options.error === true ? [{ type: 'error', error: new Error('provider broke') }] : []),
    { type: 'text-end', id: 't-0' },
    {
      type: 'finish',
      finishReason: { unified: options.finishReason ?? 'stop', raw: options.finishReason ?? 'stop' },
      usage: { inputTokens: { total: 120, noCache: 20, cacheRead: 100, cacheWrite: undefined }, outputTokens: { total: 57, text: 45, reasoning: 12 } },
    },
  ];
}

/** A mock model whose stream can be held before part `gate.at` until the test releases it. */
function mockModel(parts: StreamPart[], gate?: StreamGate): MockLanguageModelV3 {
  return new MockLanguageModelV3({ doStream: async () => ({ stream: modelStream(parts, gate) as never }) });
}

/** The app with its routes, and a form route that is not an LLM request. */
const serve = (routes: Record<string, Route>, options: MeteredOptions = {}): Promise<MeteredApp> =>
  meteredApp({ ...routes, '/api/form': (_req, res) => void res.json({ ok: true }) }, options);

function uiRoute(parts: StreamPart[] = modelParts(), options: UIMessageStreamOptions<UIMessage> = {}, gate?: StreamGate): Route {
  return (req, res) => {
    // The SDK logs stream errors by default; the error test checks what reaches the client and the metrics instead.
    const result = streamText({ model: mockModel(parts, gate), prompt: String((req.body as { prompt?: unknown }).prompt ?? 'hi'), onError: () => undefined });
    result.pipeUIMessageStreamToResponse(res, options);
  };
}

/** The model named when the message starts, the usage when it finishes. */
const FINISH_USAGE: UIMessageStreamOptions<UIMessage> = {
  messageMetadata: ({ part }) => (part.type === 'start' ? { model: 'gpt-4o-mini' } : part.type === 'finish' ? { totalUsage: part.totalUsage } : undefined),
};

describe('the AI SDK UI message stream (real ai package) on a real server', () => {
  it('is counted on /api/chat as ai_sdk_ui, not Ollama: every delta live, reasoning apart, finish, model from the model option', async () => {
    const app = await serve({ '/api/chat': uiRoute() }, { model: () => 'gpt-4o-mini' });
    const response = await postJson(app.port, '/api/chat', { messages: [] });
    expect(response.headers['x-vercel-ai-ui-message-stream']).toBe('v1');
    expect(response.body.toString('utf8')).toContain('data: [DONE]');
    await app.ended();
    const model = { model: 'gpt-4o-mini' };
    expect(await app.get('output_tokens_total', model)).toBe(TEXT_TOKENS + REASONING_TOKENS);
    expect(await app.get('reasoning_tokens_total', model)).toBe(REASONING_TOKENS);
    expect(await app.get('requests_total', { ...model, endpoint: 'ai_sdk_ui', request_type: 'stream', status: 'success', error_type: '' })).toBe(1);
    expect(await app.get('requests_started_total', { ...model, endpoint: 'ai_sdk_ui' })).toBe(1);
    expect(await app.get('requests_finished_total', { ...model, finish_reason: 'stop' })).toBe(1);
    expect(await app.get('time_to_first_token_seconds', model, 'count')).toBe(1);
    expect(await app.get('inter_token_latency_seconds', model, 'count')).toBe(TEXT_TOKENS + REASONING_TOKENS - codePoints(REASONING[0] as string));
    expect(await app.get('requests_total', { endpoint: 'ollama_chat' })).toBe(0);
  });

  it('is counted on any route the app chose, from its arrival; other POST routes stay uncounted', async () => {
    const app = await serve({ '/assistant/stream': uiRoute() });
    await postJson(app.port, '/assistant/stream', { prompt: 'hi' });
    await postJson(app.port, '/api/form', { a: 1 });
    await app.ended();
    await postJson(app.port, '/api/form', { a: 2 });
    expect(await app.get('requests_total')).toBe(1);
    expect(await app.get('requests_total', { model: 'unknown_model', endpoint: 'ai_sdk_ui', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'unknown_model' })).toBe(TEXT_TOKENS + REASONING_TOKENS);
    expect(await app.get('inflight_requests', { model: 'unknown_model' })).toBe(0);
  });

  it('a model named only in the finish metadata comes too late: the tokens were counted live, under unknown_model', async () => {
    const gate = signal();
    const lateModel: UIMessageStreamOptions<UIMessage> = {
      messageMetadata: ({ part }) => (part.type === 'finish' ? { model: 'gpt-4o-mini', totalUsage: part.totalUsage } : undefined),
    };
    const app = await serve({ '/api/chat': uiRoute(modelParts(), lateModel, { at: 8, wait: gate.wait }) });
    const stream = await openStream(app.port, '/api/chat', { messages: [] });
    await eventually(async () => (await app.get('output_tokens_total', { model: 'unknown_model' })) > 0);
    gate.release();
    await stream.done;
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'unknown_model' })).toBe(57);
    expect(await app.get('requests_total', { model: 'unknown_model', endpoint: 'ai_sdk_ui', status: 'success' })).toBe(1);
  });

  it("counts smoothStream()'s word chunks, each ending in a space, near the model's tokens, with the default estimator", async () => {
    const text =
      'A sourdough starter is a living culture of wild yeast and bacteria. Feed it flour and water every day and keep ' +
      'it warm; within a week it doubles a few hours after each feeding, and then it is ready to raise a loaf of bread.';
    const { deltas } = oneTokenStream(text, 'empty');
    const parts: StreamPart[] = [
      { type: 'stream-start', warnings: [] },
      { type: 'text-start', id: 't-0' },
      ...deltas.map((delta) => ({ type: 'text-delta', id: 't-0', delta })),
      { type: 'text-end', id: 't-0' },
      { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: { inputTokens: { total: 9 }, outputTokens: { total: deltas.length } } },
    ];
    const smoothed: Route = (_req, res) => {
      streamText({ model: mockModel(parts), prompt: 'hi', experimental_transform: smoothStream({ delayInMs: null }) }).pipeUIMessageStreamToResponse(res);
    };
    const app = await serve({ '/api/chat': smoothed }, { model: () => 'gpt-4o-mini', countTokens: undefined });
    const body = (await postJson(app.port, '/api/chat', { messages: [] })).body.toString('utf8');
    // The client received words with their trailing spaces, as smoothStream() cuts them.
    expect(body).toContain('"delta":"sourdough "');
    await app.ended();
    const tokens = o200kTokens(text);
    const counted = await app.get('output_tokens_total', { model: 'gpt-4o-mini' });
    expect(Math.abs(counted - tokens) / tokens).toBeLessThanOrEqual(0.1);
  });

  it('with totalUsage in messageMetadata the counts are exact: output, reasoning, input, cached; the model from the metadata', async () => {
    const app = await serve({ '/api/chat': uiRoute(modelParts(), FINISH_USAGE) });
    await postJson(app.port, '/api/chat', { messages: [] });
    await app.ended();
    const model = { model: 'gpt-4o-mini' };
    expect(await app.get('output_tokens_total', model)).toBe(57);
    expect(await app.get('reasoning_tokens_total', model)).toBe(12);
    expect(await app.get('input_tokens_total', model)).toBe(120);
    expect(await app.get('cached_tokens', model, 'sum')).toBe(100);
    expect(await app.get('output_sequence_tokens', model, 'sum')).toBe(57);
  });

  it('moves live: while the model is held mid-answer, /metrics already shows the deltas written so far', async () => {
    const gate = signal();
    const app = await serve({ '/chat': uiRoute(modelParts(), {}, { at: 8, wait: gate.wait }) }, { model: () => 'live-model' });
    const stream = await openStream(app.port, '/chat', {});
    // Held before the second text delta: the reasoning and "Hello" have been written.
    await stream.waitFor('"delta":"Hello"');
    const soFar = REASONING_TOKENS + codePoints('Hello');
    await eventually(async () => valueFromText(await app.scrape(), m('output_tokens_total'), { model: 'live-model' }) === soFar);
    expect(valueFromText(await app.scrape(), m('inflight_requests'), { model: 'live-model' })).toBe(1);
    gate.release();
    await stream.done;
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'live-model' })).toBe(TEXT_TOKENS + REASONING_TOKENS);
  });

  it('an error in the stream ({"type":"error"}) ends the request as an internal error', async () => {
    const app = await serve({ '/api/chat': uiRoute(modelParts({ error: true })) });
    const response = await postJson(app.port, '/api/chat', {});
    expect(response.body.toString('utf8')).toContain('"type":"error"');
    await app.ended();
    expect(await app.get('requests_total', { endpoint: 'ai_sdk_ui', status: 'error', error_type: 'internal' })).toBe(1);
  });

  it('a client that leaves mid-stream is cancelled', async () => {
    const gate = signal();
    const app = await serve({ '/api/chat': uiRoute(modelParts(), {}, { at: 8, wait: gate.wait }) });
    const stream = await openStream(app.port, '/api/chat', {});
    await stream.waitFor('Hello');
    stream.abort();
    await app.ended();
    gate.release();
    expect(await app.get('requests_total', { endpoint: 'ai_sdk_ui', status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await app.get('disconnected_clients')).toBe(1);
  });

  it('the model label: the model option first, then the request body, else unknown_model', async () => {
    const app = await serve({ '/api/chat': uiRoute() }, { model: (req) => (req.headers['x-model'] === undefined ? undefined : String(req.headers['x-model'])) });
    await postJson(app.port, '/api/chat', { model: 'from-body' });
    await app.ended(1);
    await postJson(app.port, '/api/chat', {});
    await app.ended(2);
    const withHeader = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: app.port, method: 'POST', path: '/api/chat', headers: { 'x-model': 'from-option', 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'from-body' }));
    });
    expect(withHeader).toBe(200);
    await app.ended(3);
    expect(await app.get('requests_total', { model: 'from-body', endpoint: 'ai_sdk_ui' })).toBe(1);
    expect(await app.get('requests_total', { model: 'unknown_model', endpoint: 'ai_sdk_ui' })).toBe(1);
    expect(await app.get('requests_total', { model: 'from-option', endpoint: 'ai_sdk_ui' })).toBe(1);
  });

  it('a model option that throws is reported through onError; the request is counted with the body model', async () => {
    const codes: string[] = [];
    const app = await serve({ '/api/chat': uiRoute() }, {
      model: () => {
        throw new Error('no model here');
      },
      onError: (error) => codes.push(error.code),
    });
    const response = await postJson(app.port, '/api/chat', { model: 'from-body' });
    expect(response.status).toBe(200);
    await app.ended();
    expect(await app.get('requests_total', { model: 'from-body', endpoint: 'ai_sdk_ui', status: 'success' })).toBe(1);
    expect(codes.length).toBeGreaterThan(0);
    expect(new Set(codes)).toEqual(new Set(['model_option_failed']));
  });

  it('the endpoint option still decides: a request it leaves alone is not counted, a label it gives stands', async () => {
    const app = await serve({ '/api/chat': uiRoute(), '/ui': uiRoute() }, { endpoint: (req) => (req.url === '/ui' ? 'my_chat' : undefined) });
    await postJson(app.port, '/api/chat', {});
    await postJson(app.port, '/ui', {});
    await app.ended(1);
    expect(await app.get('requests_total')).toBe(1);
    expect(await app.get('requests_total', { endpoint: 'my_chat', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total')).toBe(TEXT_TOKENS + REASONING_TOKENS);
  });
});

test('two middleware on one registry: the one whose endpoint option names the request counts it, once', async () => {
  const registry = new Registry();
  const app = express();
  app.use(express.json());
  app.use(dynamoMetrics({ registry, countTokens: codePoints }));
  app.use(dynamoMetrics({ registry, countTokens: codePoints, endpoint: (req) => (req.url === '/ui' ? 'my_chat' : undefined) }));
  app.post('/ui', uiRoute());
  const server = await listen(app);
  servers.push(server);
  await postJson(server.port, '/ui', {});
  await eventually(async () => (await value(registry, m('requests_total'))) >= 1);
  expect(await value(registry, m('requests_total'), { endpoint: 'my_chat' })).toBe(1);
  expect(await value(registry, m('requests_total'))).toBe(1);
  expect(await value(registry, m('output_tokens_total'))).toBe(TEXT_TOKENS + REASONING_TOKENS);
});

describe("the AI SDK's text stream protocol (pipeTextStreamToResponse)", () => {
  const textRoute: Route = (_req, res) => {
    streamText({ model: mockModel(modelParts()), prompt: 'hi' }).pipeTextStreamToResponse(res);
  };

  it('is counted on /api/chat as ai_sdk_text: the text written, estimated live', async () => {
    const app = await serve({ '/api/chat': textRoute }, { model: () => 'gpt-4o-mini' });
    const response = await postJson(app.port, '/api/chat', {});
    expect(response.body.toString('utf8')).toBe(TEXT.join(''));
    await app.ended();
    expect(await app.get('requests_total', { model: 'gpt-4o-mini', endpoint: 'ai_sdk_text', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'gpt-4o-mini' })).toBe(TEXT_TOKENS);
  });

  it('moves live without a model name: the text so far shows under unknown_model while the stream waits', async () => {
    const gate = signal();
    const app = await serve({
      '/api/chat': (_req, res) => {
        streamText({ model: mockModel(modelParts(), { at: 8, wait: gate.wait }), prompt: 'hi' }).pipeTextStreamToResponse(res);
      },
    });
    const stream = await openStream(app.port, '/api/chat', {});
    await stream.waitFor('Hello');
    await eventually(async () => (await app.get('output_tokens_total', { model: 'unknown_model' })) >= codePoints('Hello'));
    gate.release();
    await stream.done;
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'unknown_model' })).toBe(TEXT_TOKENS);
  });

  it("is counted on useCompletion's default route, /api/completion, without options; other text is left alone", async () => {
    const app = await serve({
      '/api/completion': textRoute,
      '/api/notes': (_req, res) => {
        res.type('text/plain').send('not a model answer');
      },
    });
    expect((await postJson(app.port, '/api/completion?x=1', {})).body.toString('utf8')).toBe(TEXT.join(''));
    await postJson(app.port, '/api/notes', {});
    await app.ended();
    expect(await app.get('requests_total')).toBe(1);
    expect(await app.get('requests_total', { endpoint: 'ai_sdk_text', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total')).toBe(TEXT_TOKENS);
  });

  it('on another route, when the endpoint option labels it ai_sdk_text', async () => {
    const app = await serve({ '/api/completion': textRoute }, { endpoint: (req) => (req.url === '/api/completion' ? 'ai_sdk_text' : undefined) });
    await postJson(app.port, '/api/completion', {});
    await app.ended();
    expect(await app.get('output_tokens_total')).toBe(TEXT_TOKENS);
    expect(await app.get('requests_total', { endpoint: 'ai_sdk_text', status: 'success' })).toBe(1);
  });
});
