/**
 * Bounded cardinality: 10,000 requests with random model names (in the request body, or only in the response as
 * behind a proxy), random finish reasons and random path prefixes create at most `maxModels + 1` series per
 * metric; the `models` allow-list keeps only listed names; a 10 kB name becomes `unknown_model`; no prompt or
 * response text ever appears in a label of `/metrics`.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Request, Response } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import type { DynamoMetricsOptions } from '../../lib';
import { listen, request, scrape } from '../support/http';
import type { RunningServer } from '../support/http';
import { seededRandom } from '../support/prng';
import { P } from '../support/registry-values';
import { pipelined } from '../support/sockets';
import { chatEvent } from '../support/streams';

const SEED = Number(process.env.HARDENING_SEED ?? 20261127);
const REQUESTS = 10_000;
const MAX_MODELS = 20;

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
afterAll(() => agent.destroy());

/**
 * An app whose handler answers with the model named in `x-response-model` (what an upstream would say), streaming
 * when the request asks for it, with the finish reason of `x-finish-reason`. The request body (model, prompt) is
 * parsed before the middleware, as in the example app.
 */
async function start(options: Omit<DynamoMetricsOptions, 'registry'>): Promise<{ server: RunningServer; registry: Registry }> {
  const registry = new Registry();
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.use(dynamoMetrics({ ...options, registry }));
  app.use(metricsRouter({ registry }));
  app.use((req: Request, res: Response) => {
    const model = String(req.headers['x-response-model'] ?? 'm');
    const finish = String(req.headers['x-finish-reason'] ?? 'stop');
    const text = String(req.headers['x-response-text'] ?? 'hello');
    if ((req.body as { stream?: boolean } | undefined)?.stream === true) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(chatEvent(model, text));
      res.write(chatEvent(model, undefined, finish));
      res.end('data: [DONE]\n\n');
      return;
    }
    res.json({
      id: 'c1',
      object: 'chat.completion',
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: finish }],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
  });
  return { server: await listen(app as unknown as (req: IncomingMessage, res: ServerResponse) => void), registry };
}

interface Series {
  name: string;
  labels: Record<string, string>;
}

/** Every series of the Prometheus text, histograms by their `_count` line. */
function seriesOf(text: string): Series[] {
  const result: Series[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (match === null) throw new Error(`unparsable line: ${line.slice(0, 200)}`);
    const name = match[1] as string;
    if (name.endsWith('_bucket') || name.endsWith('_sum')) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    result.push({ name, labels });
  }
  return result;
}

function randomName(random: () => number, length: number): string {
  const alphabet = Array.from('abcdefghijklmnopqrstuvwxyz0123456789-_./:é你🌍"\\ ');
  return Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
}

test(`${REQUESTS.toLocaleString('en')} requests with random model names create at most maxModels + 1 series per metric`, async () => {
  const { server, registry } = await start({ maxModels: MAX_MODELS });
  const random = seededRandom(SEED);
  const plans = Array.from({ length: REQUESTS }, (_, i) => ({
    model: randomName(random, 1 + Math.floor(random() * 40)),
    inBody: random() < 0.5,
    stream: random() < 0.3,
    finish: random() < 0.5 ? 'stop' : randomName(random, 12),
    prefix: random() < 0.5 ? '/v1' : `/${randomName(random, 6).replace(/[^a-z0-9]/g, 'x')}/v1`,
    i,
  }));
  try {
    const started = Date.now();
    const requests = plans.map((plan) => ({
      path: `${plan.prefix}/chat/completions`,
      body: { ...(plan.inBody ? { model: plan.model } : {}), stream: plan.stream, messages: [{ role: 'user', content: `SECRET-PROMPT-${plan.i}` }] },
      headers: {
        'x-response-model': encodeURIComponent(plan.model),
        'x-finish-reason': encodeURIComponent(plan.finish),
        'x-response-text': `SECRET-RESPONSE-${plan.i}`,
      },
    }));
    const connections = 8;
    const perConnection = Math.ceil(REQUESTS / connections);
    const answered = await Promise.all(
      Array.from({ length: connections }, (_, c) => pipelined(server.port, requests.slice(c * perConnection, (c + 1) * perConnection))),
    );
    expect(answered.reduce((a, b) => a + b, 0)).toBe(REQUESTS);
    const seconds = (Date.now() - started) / 1000;
    const text = await scrape(server.port);
    const series = seriesOf(text);
    const byMetric = new Map<string, Series[]>();
    for (const s of series) byMetric.set(s.name, [...(byMetric.get(s.name) ?? []), s]);

    for (const [name, list] of byMetric) {
      if (!name.startsWith(P)) continue;
      const models = new Set(list.map((s) => s.labels.model).filter((m) => m !== undefined));
      expect({ name, models: models.size }).toEqual({ name, models: Math.min(models.size, MAX_MODELS + 1) });
    }
    // Per metric, series = model × the other labels' (fixed, small) value sets.
    const requestSeries = byMetric.get(`${P}_requests_total`) ?? [];
    expect(new Set(requestSeries.map((s) => s.labels.model)).size).toBe(MAX_MODELS + 1);
    expect(new Set(requestSeries.map((s) => s.labels.endpoint))).toEqual(new Set(['chat_completions']));
    expect(requestSeries.length).toBeLessThanOrEqual((MAX_MODELS + 1) * 2);
    expect(requestSeries.some((s) => s.labels.model === 'unknown_model')).toBe(true);
    // Finish reasons from the upstream are bounded too (unknown ones become "other").
    const finishes = new Set((byMetric.get(`${P}_requests_finished_total`) ?? []).map((s) => s.labels.finish_reason));
    expect([...finishes].sort()).toEqual(['other', 'stop']);
    // Every request counted once.
    const counted = (await registry.getSingleMetric(`${P}_requests_total`)?.get())?.values ?? [];
    expect(counted.reduce((sum, v) => sum + v.value, 0)).toBe(REQUESTS);
    // No prompt or response text anywhere in the exposition.
    expect(text).not.toContain('SECRET');
    // Label values are bounded in length.
    const longest = Math.max(...series.flatMap((s) => Object.values(s.labels).map((v) => v.length)));
    expect(longest).toBeLessThanOrEqual(256);
    process.stdout.write(
      `hardening-cardinality: ${JSON.stringify({ requests: REQUESTS, seconds, series: series.length, metrics: byMetric.size, maxModelsPerMetric: MAX_MODELS + 1, exposition: text.length })}\n`,
    );
  } finally {
    await server.close();
  }
}, 90_000);

test('the models allow-list keeps only listed names', async () => {
  const { server } = await start({ models: ['llama-3', 'qwen-2'] });
  try {
    for (const model of ['llama-3', 'qwen-2', 'gpt-4o', 'LLAMA-3', 'llama-3 ', 'qwen-2\u0000', '']) {
      await request(server.port, 'POST', '/v1/chat/completions', { model, stream: false }, agent, { 'x-response-model': 'evil-upstream-name' });
      await request(server.port, 'POST', '/v1/chat/completions', { stream: true }, agent, { 'x-response-model': encodeURIComponent(model) });
    }
    const models = new Set(seriesOf(await scrape(server.port)).map((s) => s.labels.model).filter((m) => m !== undefined));
    expect([...models].sort()).toEqual(['llama-3', 'qwen-2', 'unknown_model']);
  } finally {
    await server.close();
  }
});

test('a 10 kB model name becomes unknown_model, in the request body and in the response', async () => {
  const { server, registry } = await start({});
  try {
    const huge = 'm'.repeat(10 * 1024);
    await request(server.port, 'POST', '/v1/chat/completions', { model: huge, stream: false }, agent);
    await request(server.port, 'POST', '/v1/chat/completions', { stream: true }, agent, { 'x-response-model': 'r'.repeat(7000) });
    const text = await scrape(server.port);
    expect(text).not.toContain('mmmmmmmmmm');
    expect(text).not.toContain('rrrrrrrrrr');
    const requests = (await registry.getSingleMetric(`${P}_requests_total`)?.get())?.values ?? [];
    expect(requests.map((v) => v.labels.model)).toEqual(['unknown_model', 'unknown_model'].slice(0, requests.length));
    expect(requests.reduce((sum, v) => sum + v.value, 0)).toBe(2);
  } finally {
    await server.close();
  }
});
