/**
 * The model label: where it comes from and which names may take one.
 */
import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import { CHAT, describeOnEachExpress, heldStream, writeSse } from '../support/express-suite';
import type { Handler } from '../support/express-suite';
import { closedAfterEach, eventually, listen, openStream, postJson, signal } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { everyGaugeSeriesZero, labelSets, m, settled, total } from '../support/registry-values';
import { contentChunk, DONE, finishChunk, roleChunk, sse } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, gauges, get, start } = t;

  describe('model label', () => {
    const stream = (responseModel: string): Handler => (_req, res) => writeSse(res, [roleChunk(responseModel), contentChunk(responseModel, 'abc'), finishChunk(responseModel), DONE]);

    it('comes from the request body when a body parser ran before the middleware', async () => {
      const port = await start(chatRoute(stream('served-name')));
      await postJson(port, CHAT, { model: 'Asked-Name', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'Asked-Name' })).toBe(3);
      expect(await get('requests_total', { model: 'Asked-Name' })).toBe(1);
      expect(await get('output_tokens_total', { model: 'served-name' })).toBe(0);
    });

    it('comes from the response when no body parser ran (proxy-like), with the gauges moved to it', async () => {
      const rest = signal();
      const port = await start(
        chatRoute(heldStream([roleChunk('served-name')], rest.wait, [contentChunk('served-name', 'abc'), finishChunk('served-name'), DONE])),
        { bodyParser: false },
      );
      const open = await openStream(port, CHAT, { model: 'asked-name', stream: true });
      await open.waitFor('assistant');
      expect(await gauges('served-name')).toEqual([1, 1, 1]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await get('requests_started_total', { model: 'served-name', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
      rest.release();
      await open.done;
      await ended();
      expect(await get('output_tokens_total', { model: 'served-name' })).toBe(3);
      expect(await get('requests_total', { model: 'served-name', status: 'success' })).toBe(1);
      expect(await get('requests_started_total')).toBe(1);
      expect(await gauges('served-name')).toEqual([0, 0, 0]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    });

    it('moves the gauges right when the response names the model in its first, token-bearing chunk', async () => {
      const rest = signal();
      const port = await start(
        chatRoute(heldStream([contentChunk('served', 'abc')], rest.wait, [finishChunk('served'), DONE])),
        { bodyParser: false },
      );
      const open = await openStream(port, CHAT, { model: 'asked', stream: true });
      await open.waitFor('abc');
      expect(await gauges('served')).toEqual([1, 1, 0]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await get('time_to_first_token_seconds', { model: 'served' }, 'count')).toBe(1);
      rest.release();
      await open.done;
      await ended();
      expect(await gauges('served')).toEqual([0, 0, 0]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await get('requests_total', { model: 'served', status: 'success' })).toBe(1);
    });

    it('is unknown_model when neither the request nor the response names it', async () => {
      const port = await start(
        chatRoute((_req, res) => writeSse(res, [sse({ choices: [{ index: 0, delta: { content: 'abc' }, finish_reason: null }] }), finishChunk(''), DONE])),
        { bodyParser: false },
      );
      await postJson(port, CHAT, { stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'unknown_model' })).toBe(3);
      expect(await get('requests_total', { model: 'unknown_model', status: 'success' })).toBe(1);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    });

    it('maps names outside the models allow-list to unknown_model', async () => {
      const port = await start(chatRoute(stream('x')), { metrics: { models: ['allowed'] } });
      await postJson(port, CHAT, { model: 'allowed', stream: true });
      await postJson(port, CHAT, { model: 'random-1', stream: true });
      await ended(2);
      expect(await get('output_tokens_total', { model: 'allowed' })).toBe(3);
      expect(await get('output_tokens_total', { model: 'unknown_model' })).toBe(3);
      expect((await labelSets(t.registry, m('requests_total'))).map((l) => l.model).sort()).toEqual(['allowed', 'unknown_model']);
    });

    it('caps distinct names at maxModels; the rest become unknown_model', async () => {
      const port = await start(chatRoute(stream('x')), { metrics: { maxModels: 2 } });
      for (const model of ['a', 'b', 'c', 'd', 'a']) await postJson(port, CHAT, { model, stream: true });
      await ended(5);
      expect(await get('requests_total', { model: 'a' })).toBe(2);
      expect(await get('requests_total', { model: 'b' })).toBe(1);
      expect(await get('requests_total', { model: 'unknown_model' })).toBe(2);
      const models = new Set((await labelSets(t.registry, m('output_tokens_total'))).map((l) => l.model));
      expect([...models].sort()).toEqual(['a', 'b', 'unknown_model']);
    });
  });
});

describe('mounted before the body parser, as the README mounts it', () => {
  const servers = closedAfterEach();

  it('moves a waiting request to its model once the body is parsed, before its response starts', async () => {
    const { app, registry } = metricsApp({ models: ['llama'] });
    app.use(express.json());
    const arrived = signal();
    const rest = signal();
    app.post(CHAT, async (_req, res) => {
      arrived.release();
      await rest.wait;
      writeSse(res, [roleChunk('llama'), contentChunk('llama', 'abc'), finishChunk('llama'), DONE]);
    });
    const served = await listen(app);
    servers.push(served);
    // Resolves at the response head, which waits for the release.
    const opening = openStream(served.port, CHAT, { model: 'llama', stream: true });
    await arrived.wait;
    const waiting = async (model: string): Promise<number[]> =>
      Promise.all(['inflight_requests', 'active_requests', 'queued_requests'].map((gauge) => total(registry, gauge, { model })));
    await eventually(async () => (await waiting('llama')).every((value) => value === 1));
    expect(await waiting('unknown_model')).toEqual([0, 0, 0]);
    // Its start is counted at the response head, which may still show another format than the path did.
    expect(await total(registry, 'requests_started_total')).toBe(0);
    rest.release();
    await (await opening).done;
    await settled(registry);
    expect(await total(registry, 'requests_total', { model: 'llama', status: 'success' })).toBe(1);
    expect(await total(registry, 'requests_started_total')).toBe(1);
    expect(await everyGaugeSeriesZero(registry)).toBe(true);
  });

  it('keeps the label the response head shows: an AI SDK stream on /api/chat whose body names a known model', async () => {
    const { app, registry } = metricsApp({ models: ['gpt-4o-mini'] });
    app.use(express.json());
    app.post('/api/chat', async (_req, res) => {
      // The model's answer takes a moment to start, as streamText's does: the body is parsed long before the head.
      await new Promise((resolve) => setTimeout(resolve, 30));
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-vercel-ai-ui-message-stream': 'v1' });
      for (const part of [{ type: 'start' }, { type: 'text-delta', id: '0', delta: 'Hello' }, { type: 'finish', finishReason: 'stop' }]) res.write(`data: ${JSON.stringify(part)}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    const served = await listen(app);
    servers.push(served);
    await postJson(served.port, '/api/chat', { model: 'gpt-4o-mini', stream: true, messages: [] });
    await settled(registry);
    expect(await total(registry, 'requests_total', { model: 'gpt-4o-mini', endpoint: 'ai_sdk_ui', status: 'success' })).toBe(1);
    expect(await total(registry, 'requests_started_total', { model: 'gpt-4o-mini', endpoint: 'ai_sdk_ui' })).toBe(1);
    expect(await total(registry, 'requests_total', { endpoint: 'ollama_chat' })).toBe(0);
  });
});

describe('the model option', () => {
  const servers = closedAfterEach();
  const DEPLOYMENTS: Record<string, string> = { prod: 'gpt-4o', cheap: 'gpt-4o-mini' };

  for (const order of ['parser before the middleware', 'parser after it, with an async check before the route'] as const) {
    it(`answered from req.params at the response head, decides over names clients put in the body (${order})`, async () => {
      const registry = new Registry();
      const app = express();
      const metered = dynamoMetrics({ registry, maxModels: 3, model: (req) => DEPLOYMENTS[String((req as express.Request).params?.deployment)] });
      if (order === 'parser before the middleware') app.use(express.json(), metered);
      else app.use(metered, express.json(), async (_req, _res, next) => setTimeout(next, 1));
      app.post('/deployments/:deployment/chat/completions', (req, res) => {
        const model = DEPLOYMENTS[String(req.params.deployment)] as string;
        writeSse(res, [roleChunk(model), contentChunk(model, 'abc'), finishChunk(model), DONE]);
      });
      const served = await listen(app);
      servers.push(served);
      for (let i = 0; i < 6; i++) await postJson(served.port, '/deployments/prod/chat/completions', { model: `client-invented-${i}`, stream: true });
      await postJson(served.port, '/deployments/cheap/chat/completions', { stream: true });
      await settled(registry);
      expect(await total(registry, 'requests_total', { model: 'gpt-4o', status: 'success' })).toBe(6);
      expect(await total(registry, 'requests_total', { model: 'gpt-4o-mini', status: 'success' })).toBe(1);
      expect(await total(registry, 'output_tokens_total', { model: 'gpt-4o' })).toBeGreaterThanOrEqual(6);
      expect(await total(registry, 'output_tokens_total', { model: 'unknown_model' })).toBe(0);
      expect((await labelSets(registry, m('requests_total'))).map((labels) => labels.model).sort()).toEqual(['gpt-4o', 'gpt-4o-mini']);
    });
  }
});
