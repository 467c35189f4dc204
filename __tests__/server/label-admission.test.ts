/**
 * Who can take a `model` label: only a name a response succeeded for, or one in `models` (Dynamo's
 * unknown-model rule). Requests that fail with made-up names count under `unknown_model`, whoever rejects them
 * (the route, an auth check mounted after us, Express's own 404), so real models keep their slots.
 */
import express from 'express';
import type { Request, Response } from 'express';
import type { Registry } from 'prom-client';
import { listen, request } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { labelSets, P, settled, total } from '../support/registry-values';

function completion(model: string): Record<string, unknown> {
  return {
    id: 'c1',
    object: 'chat.completion',
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi there' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  };
}

const KNOWN = new Set(['llama-3', 'qwen-3']);

function gateway(options: Parameters<typeof metricsApp>[0] = {}) {
  const { app, registry } = metricsApp(options);
  app.use(express.json());
  // An auth check mounted after the metrics: its 401s must not mint labels either.
  app.use('/v1', (req: Request, res: Response, next) => {
    if (req.headers.authorization === 'Bearer ok') next();
    else res.status(401).json({ error: { message: 'no key', type: 'authentication_error' } });
  });
  app.post('/v1/chat/completions', (req: Request, res: Response) => {
    const model = (req.body as { model?: string }).model ?? '';
    if (KNOWN.has(model)) res.json(completion(model));
    else res.status(404).json({ error: { message: `no model ${model}`, type: 'not_found_error' } });
  });
  return { app, registry };
}

/** A chat request with this model and API key; resolves with the status. */
async function post(port: number, path: string, model: unknown, key = 'ok'): Promise<number> {
  const body = { model, messages: [{ role: 'user', content: 'hi' }] };
  return (await request(port, 'POST', path, body, undefined, { authorization: `Bearer ${key}` })).status;
}

async function modelsOf(registry: Registry, suffix: string): Promise<string[]> {
  return [...new Set((await labelSets(registry, `${P}_${suffix}`)).map((labels) => String(labels.model)))].sort();
}

describe('label admission', () => {
  it('failed requests with made-up names take no slot; real models still get theirs after the cap is "attacked"', async () => {
    const { app, registry } = gateway({ maxModels: 3 });
    const served = await listen(app);
    try {
      for (let i = 0; i < 20; i++) {
        expect(await post(served.port, '/v1/chat/completions', `fake-${i}`)).toBe(404); // the route
        expect(await post(served.port, '/v1/chat/completions', `stolen-${i}`, 'bad')).toBe(401); // auth after us
        expect(await post(served.port, '/v1/nothing/here/chat/completions', `lost-${i}`)).toBe(404); // Express's 404
      }
      expect(await post(served.port, '/v1/chat/completions', 'llama-3')).toBe(200);
      expect(await post(served.port, '/v1/chat/completions', 'qwen-3')).toBe(200);
      await settled(registry);
      for (const suffix of ['requests_total', 'requests_started_total', 'inflight_requests', 'output_tokens_total']) {
        expect(await modelsOf(registry, suffix)).toEqual(expect.arrayContaining(['llama-3', 'qwen-3']));
        expect((await modelsOf(registry, suffix)).filter((m) => m.startsWith('fake') || m.startsWith('stolen') || m.startsWith('lost'))).toEqual([]);
      }
      expect(await total(registry, 'requests_total', { model: 'unknown_model' })).toBe(60);
      expect(await total(registry, 'requests_total', { model: 'unknown_model', error_type: 'not_found' })).toBe(40);
      expect(await total(registry, 'requests_total', { model: 'unknown_model', error_type: 'validation' })).toBe(20);
      expect(await total(registry, 'requests_started_total', { model: 'unknown_model' })).toBe(60);
      expect(await total(registry, 'output_tokens_total', { model: 'llama-3' })).toBe(2);
      // Once admitted, a failing request for a real model counts under its own label.
      expect(await post(served.port, '/v1/chat/completions', 'llama-3', 'bad')).toBe(401);
      await settled(registry);
      expect(await total(registry, 'requests_total', { model: 'llama-3', error_type: 'validation' })).toBe(1);
      expect(await total(registry, 'requests_started_total', { model: 'llama-3' })).toBe(2);
    } finally {
      await served.close();
    }
  });

  it('beyond maxModels admitted names, new names count under unknown_model even when they succeed', async () => {
    const { app, registry } = metricsApp({ maxModels: 2 });
    app.use(express.json());
    app.post('/v1/chat/completions', (req: Request, res: Response) => res.json(completion((req.body as { model: string }).model)));
    const served = await listen(app);
    try {
      for (const model of ['a', 'b', 'c', 'd', 'a']) expect(await post(served.port, '/v1/chat/completions', model)).toBe(200);
      await settled(registry);
      expect(await modelsOf(registry, 'requests_total')).toEqual(['a', 'b', 'unknown_model']);
      expect(await total(registry, 'requests_total', { model: 'a' })).toBe(2);
      expect(await total(registry, 'requests_total', { model: 'unknown_model' })).toBe(2);
    } finally {
      await served.close();
    }
  });

  it('an allow-listed name has its label from the first request, even one that fails', async () => {
    const { app, registry } = gateway({ models: ['llama-3'] });
    const served = await listen(app);
    try {
      expect(await post(served.port, '/v1/chat/completions', 'llama-3', 'bad')).toBe(401);
      await settled(registry);
      expect(await total(registry, 'requests_total', { model: 'llama-3', error_type: 'validation' })).toBe(1);
    } finally {
      await served.close();
    }
  });

  it('a name known only from the response (a proxy) is admitted when that response succeeds', async () => {
    const { app, registry } = metricsApp();
    app.post('/v1/chat/completions', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(completion('from-upstream')));
    });
    app.post('/v1/completions', (_req, res) => {
      res.status(500).setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ...completion('broken-upstream'), error: { message: 'boom' } }));
    });
    const served = await listen(app);
    try {
      expect((await request(served.port, 'POST', '/v1/chat/completions', { messages: [] })).status).toBe(200);
      expect((await request(served.port, 'POST', '/v1/completions', { prompt: 'x' })).status).toBe(500);
      await settled(registry);
      expect(await modelsOf(registry, 'requests_total')).toEqual(['from-upstream', 'unknown_model']);
    } finally {
      await served.close();
    }
  });

  it('two lone surrogates are one label value, printed once', async () => {
    const { app, registry } = metricsApp();
    app.use(express.json());
    app.post('/v1/chat/completions', (req: Request, res: Response) => res.json(completion((req.body as { model: string }).model)));
    const served = await listen(app);
    try {
      // Sent as JSON escapes: "\ud800" and "\udbff" are two different strings once parsed.
      for (const escaped of ['\\ud800', '\\udbff', '\\ud800']) {
        const body = `{"model":"${escaped}","messages":[]}`;
        expect((await request(served.port, 'POST', '/v1/chat/completions', body)).status).toBe(200);
      }
      await settled(registry);
      const text = await registry.metrics();
      const lines = text.split('\n').filter((line) => line.startsWith(`${P}_requests_total{`) && line.includes('\ufffd'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/ 3$/);
      expect(await modelsOf(registry, 'requests_total')).toEqual(['\ufffd']);
    } finally {
      await served.close();
    }
  });
});
