import middie from '@fastify/middie';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import { sumOf } from '../../example-app/metrics-text';
import { Gate, scrapeSamples, streamAndScrapeMidway, TEXTS, TOKENS_BEFORE_PAUSE, TOTAL_TOKENS, writeStream } from '../support/framework-stream';
import { codePoints } from '../support/streams';

/**
 * The README's Fastify recipe in a real Fastify app on a real socket: the middleware through `@fastify/middie`
 * (Fastify has no Connect-style middleware of its own), a streaming route that takes the raw response with
 * `reply.hijack()`, and `/metrics` served by the same handler as in Express.
 */
const MODEL = 'fastify-model';

let app: FastifyInstance;
let registry: Registry;
let baseUrl: string;
let gate: Gate;

beforeEach(async () => {
  registry = new Registry();
  gate = new Gate();
  // --- the recipe ---
  app = Fastify();
  await app.register(middie);
  app.use(dynamoMetrics({ registry, countTokens: codePoints }));
  app.use(metricsRouter({ registry }));
  app.post('/v1/chat/completions', async (_request, reply) => {
    // Fastify would otherwise answer for the route itself; the stream is written on Node's response instead.
    reply.hijack();
    await writeStream(reply.raw, MODEL, gate);
  });
  // --- end of the recipe ---
  baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterEach(async () => {
  gate.open();
  await app.close();
});

test('counts a hijacked stream live and at its end, served on /metrics through middie', async () => {
  const result = await streamAndScrapeMidway(baseUrl, `${baseUrl}/metrics`, MODEL, () => gate.open());
  expect(result.text).toBe(TEXTS.join(''));
  expect(result.completionTokens).toBe(TOTAL_TOKENS);
  // While the stream was paused half-way, Prometheus would already have seen the first half's tokens.
  expect(result.liveCounter).toBe(TOKENS_BEFORE_PAUSE);

  const after = await scrapeSamples(`${baseUrl}/metrics`);
  expect(after.status).toBe(200);
  expect(after.contentType).toBe(registry.contentType);
  expect(sumOf(after.samples, 'dynamo_frontend_output_tokens_total', { model: MODEL })).toBe(TOTAL_TOKENS);
  expect(sumOf(after.samples, 'dynamo_frontend_requests_total', { model: MODEL, endpoint: 'chat_completions', status: 'success' })).toBe(1);
  expect(sumOf(after.samples, 'dynamo_frontend_inflight_requests', { model: MODEL })).toBe(0);
});

test("counts a unary completion sent with Fastify's own reply.send(), and leaves other routes and 404s alone", async () => {
  await app.close();
  app = Fastify();
  await app.register(middie);
  app.use(dynamoMetrics({ registry }));
  app.use(metricsRouter({ registry }));
  app.post('/v1/completions', async () => ({
    id: 'cmpl-1',
    object: 'text_completion',
    model: MODEL,
    choices: [{ index: 0, text: 'Hi', finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 },
  }));
  app.get('/health', async () => ({ ok: true }));
  baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });

  const unary = await fetch(`${baseUrl}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"fastify-model","prompt":"Hi"}' });
  expect(((await unary.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(9);
  expect(await (await fetch(`${baseUrl}/health`)).json()).toEqual({ ok: true });
  const missing = await fetch(`${baseUrl}/nothing-here`);
  expect(missing.status).toBe(404);

  const metrics = await scrapeSamples(`${baseUrl}/metrics`);
  expect(sumOf(metrics.samples, 'dynamo_frontend_output_tokens_total', { model: MODEL })).toBe(9);
  expect(sumOf(metrics.samples, 'dynamo_frontend_input_tokens_total', { model: MODEL })).toBe(3);
  // Only the LLM request is counted: /health, the 404 and the scrapes are not LLM paths.
  expect(sumOf(metrics.samples, 'dynamo_frontend_requests_total')).toBe(1);
});

test('serves /metrics as a Fastify route on the raw request and response (the docs/frameworks.md variant)', async () => {
  await app.close();
  app = Fastify();
  const serveMetrics = metricsRouter({ registry });
  app.get('/metrics', (request, reply) => {
    reply.hijack();
    serveMetrics(request.raw, reply.raw);
  });
  baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  const metrics = await scrapeSamples(`${baseUrl}/metrics`);
  expect(metrics.status).toBe(200);
  expect(metrics.contentType).toBe(registry.contentType);
  // Nothing has run yet, but the families are registered by the middleware created in beforeEach.
  expect(metrics.samples.some((s) => s.name.startsWith('dynamo_frontend_'))).toBe(true);
});
