import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { createDenyListAttributesProcessor, InstrumentType } from '@opentelemetry/sdk-metrics';
import express from 'express';
import type { Response } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, GEN_AI_INSTRUMENTS } from '../../lib';
import type { DynamoMetricsError, DynamoMetricsOptions } from '../../lib';
import { GEN_AI_BUCKETS } from '../../lib/metrics/otel';
import { eventually, listen, openStream, postJson, request, sleep } from '../support/http';
import type { RunningServer } from '../support/http';
import { OtelHarness } from '../support/otel-reader';
import type { HistogramPoint } from '../support/otel-reader';
import { labelSets, m, value } from '../support/registry-values';
import { anthropicStream, chatChunk, DONE, responseObject, responsesUsage, sse, typedSse } from '../support/streams';

/**
 * `meter`: the same requests, over a real socket, recorded by the real OpenTelemetry SDK and read back through its
 * collect(): values, attributes, bucket advice, and the rule that unreported usage is recorded only on request.
 */

const I = GEN_AI_INSTRUMENTS;
const MODEL = 'otel-model';
const PIECES = ['Hello', ' there', ' my', ' friend', '!'];
const CHUNK_GAP_MS = 15;

let otel: OtelHarness;
let registry: Registry;
let server: RunningServer | undefined;
let errors: DynamoMetricsError[];

beforeEach(() => {
  otel = new OtelHarness();
  registry = new Registry();
  errors = [];
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await otel.shutdown();
});

/** The response names a dated model, as OpenAI and Anthropic do, so request and response model differ. */
const responseModelOf = (model: string): string => `${model}-2026-01-01`;

async function writeSlowly(res: Response, pieces: string[]): Promise<void> {
  for (const piece of pieces) {
    res.write(piece);
    await sleep(CHUNK_GAP_MS);
  }
}

interface ChatBody {
  model: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  /** Test knob: stop writing after the text and never end the response. */
  hang?: boolean;
  /** Test knob: send the text this many times. */
  repeat?: number;
}

async function start(options: Omit<DynamoMetricsOptions, 'registry' | 'onError'> = {}): Promise<number> {
  const app = express();
  app.use(express.json());
  app.use(dynamoMetrics({ registry, meter: otel.meter, onError: (error) => errors.push(error), ...options }));
  app.post('/v1/chat/completions', async (req, res) => {
    const body = req.body as ChatBody;
    if (body.model === 'missing') {
      res.status(404).json({ error: { message: 'no such model', type: 'invalid_request_error', code: 'model_not_found' } });
      return;
    }
    const model = responseModelOf(body.model);
    if (body.stream !== true) {
      res.json({
        id: 'c',
        object: 'chat.completion',
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: PIECES.join('') }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 },
      });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(sse(chatChunk(model, [{ delta: { role: 'assistant', content: '' } }])));
    const pieces = Array.from({ length: body.repeat ?? 1 }, () => PIECES).flat();
    await writeSlowly(
      res,
      pieces.map((piece) => sse(chatChunk(model, [{ delta: { content: piece } }]))),
    );
    if (body.hang === true) return;
    res.write(sse(chatChunk(model, [{ delta: {}, finish_reason: 'stop' }])));
    if (body.stream_options?.include_usage === true) {
      const usage = {
        prompt_tokens: 11,
        completion_tokens: 6,
        total_tokens: 17,
        prompt_tokens_details: { cached_tokens: 3 },
        completion_tokens_details: { reasoning_tokens: 2 },
      };
      res.write(sse(chatChunk(model, [], usage)));
    }
    res.end(DONE);
  });
  app.post('/v1/messages', async (req, res) => {
    const { model } = req.body as { model: string };
    const events = anthropicStream({
      model: responseModelOf(model),
      prompt: { input_tokens: 20, cache_read_input_tokens: 5 },
      thinking: ['Thinking', ' hard'],
      text: PIECES,
      stopReason: 'end_turn',
      outputTokens: [12],
    });
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    await writeSlowly(res, events.map((event) => typedSse(event)));
    res.end();
  });
  // Unary bodies of the other formats, each stating its usage the way that API does.
  app.post('/v1/completions', (req, res) => {
    const { model } = req.body as { model: string };
    res.json({
      id: 'cmpl',
      object: 'text_completion',
      model: responseModelOf(model),
      choices: [{ index: 0, text: 'Hello', finish_reason: 'stop' }],
      usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
    });
  });
  app.post('/v1/responses', (req, res) => {
    const { model } = req.body as { model: string };
    res.json(responseObject(responseModelOf(model), 'completed', { usage: responsesUsage({ input_tokens: 13, output_tokens: 8, cached: 4, reasoning: 3 }) }));
  });
  app.post('/v1/embeddings', (req, res) => {
    const { model } = req.body as { model: string };
    res.json({ object: 'list', model: responseModelOf(model), data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], usage: { prompt_tokens: 5, total_tokens: 5 } });
  });
  server = await listen(app);
  return server.port;
}

const CHAT = '/v1/chat/completions';

/** The end of a request is reported on the server's next ticks; wait until it has been recorded. */
async function recordedRequests(count: number): Promise<HistogramPoint[]> {
  let points: HistogramPoint[] = [];
  await eventually(async () => {
    points = await otel.histogram(I.requestDuration);
    return points.reduce((total, point) => total + point.count, 0) >= count;
  });
  return points;
}

function only<T>(points: T[]): T {
  expect(points).toHaveLength(1);
  return points[0] as T;
}

const base = (operation: string, provider: string, model = MODEL): Record<string, string> => ({
  'gen_ai.operation.name': operation,
  'gen_ai.provider.name': provider,
  'gen_ai.request.model': model,
  'gen_ai.response.model': responseModelOf(model),
});

describe('a streamed OpenAI chat completion with usage', () => {
  test('records duration, time to first token, time per output token and the stated usage, once each', async () => {
    const port = await start();
    const response = await postJson(port, CHAT, { model: MODEL, stream: true, stream_options: { include_usage: true }, messages: [] });
    expect(response.status).toBe(200);
    const attributes = base('chat', 'openai');

    const duration = only(await recordedRequests(1));
    expect(duration.attributes).toEqual(attributes);
    expect(duration.count).toBe(1);
    expect(duration.sum).toBeGreaterThanOrEqual((PIECES.length * CHUNK_GAP_MS * 0.8) / 1000);
    expect(duration.boundaries).toEqual(GEN_AI_BUCKETS.duration);
    // The same request in the Prometheus histogram: the two are one observation.
    expect(await value(registry, m('request_duration_seconds'), { model: MODEL }, 'count')).toBe(1);

    const ttft = only(await otel.histogram(I.timeToFirstToken));
    expect(ttft.attributes).toEqual(attributes);
    expect(ttft.count).toBe(1);
    expect(ttft.sum).toBeGreaterThan(0);
    expect(ttft.sum).toBeLessThan(duration.sum);
    expect(ttft.boundaries).toEqual(GEN_AI_BUCKETS.timeToFirstToken);
    expect(ttft.sum).toBeCloseTo(await value(registry, m('time_to_first_token_seconds'), { model: MODEL }, 'sum'), 9);

    // The conventions' definition: the time after the first token over the tokens after the first (usage says 6).
    const tpot = only(await otel.histogram(I.timePerOutputToken));
    expect(tpot.attributes).toEqual(attributes);
    expect(tpot.sum).toBeCloseTo((duration.sum - ttft.sum) / 5, 9);
    expect(tpot.boundaries).toEqual(GEN_AI_BUCKETS.timePerOutputToken);

    const usage = await otel.histogram(I.tokenUsage);
    expect(usage).toHaveLength(2);
    const byType = Object.fromEntries(usage.map((point) => [point.attributes['gen_ai.token.type'], point]));
    expect(byType.input).toMatchObject({ attributes: { ...attributes, 'gen_ai.token.type': 'input' }, count: 1, sum: 11 });
    expect(byType.output).toMatchObject({ attributes: { ...attributes, 'gen_ai.token.type': 'output' }, count: 1, sum: 6 });
    expect(byType.input?.boundaries).toEqual(GEN_AI_BUCKETS.tokens);

    expect(only(await otel.histogram(I.operationInputTokens))).toMatchObject({ attributes, count: 1, sum: 11 });
    expect(only(await otel.histogram(I.operationOutputTokens))).toMatchObject({ attributes, count: 1, sum: 6 });
    const counted = { ...attributes, 'gen_ai.token.modality': 'unknown' };
    expect(await otel.sum(I.usageInputTokens)).toEqual([{ attributes: counted, value: 11 }]);
    expect(await otel.sum(I.usageOutputTokens)).toEqual([{ attributes: counted, value: 6 }]);
    expect(await otel.sum(I.usageCacheReadInputTokens)).toEqual([{ attributes: counted, value: 3 }]);
    expect(await otel.sum(I.usageReasoningOutputTokens)).toEqual([{ attributes: counted, value: 2 }]);
    expect(errors).toEqual([]);
  });

  test('several requests add up per model, and the Prometheus totals agree with the OpenTelemetry ones', async () => {
    const port = await start();
    const body = (model: string) => ({ model, stream: true, stream_options: { include_usage: true }, messages: [] });
    await Promise.all([postJson(port, CHAT, body('a')), postJson(port, CHAT, body('a')), postJson(port, CHAT, body('b'))]);
    await recordedRequests(3);
    const outputs = await otel.sum(I.usageOutputTokens);
    const byModel = Object.fromEntries(outputs.map((point) => [point.attributes['gen_ai.request.model'], point.value]));
    expect(byModel).toEqual({ a: 12, b: 6 });
    expect(await value(registry, m('output_tokens_total'), { model: 'a' })).toBe(12);
    expect(await value(registry, m('output_tokens_total'), { model: 'b' })).toBe(6);
  });
});

describe('usage the response did not state', () => {
  const body = { model: MODEL, stream: true, messages: [] };

  test('is not recorded by default, though the Prometheus counter counts the estimate', async () => {
    const port = await start();
    await postJson(port, CHAT, body);
    const duration = only(await recordedRequests(1));
    expect(duration.attributes['error.type']).toBeUndefined();
    expect(await value(registry, m('output_tokens_total'), { model: MODEL })).toBeGreaterThan(0);
    expect(await otel.histogram(I.tokenUsage)).toEqual([]);
    expect(await otel.histogram(I.operationOutputTokens)).toEqual([]);
    expect(await otel.sum(I.usageOutputTokens)).toEqual([]);
    // Timing is not usage: it is recorded, spread over the counted tokens.
    expect(only(await otel.histogram(I.timeToFirstToken)).count).toBe(1);
  });

  test('is recorded with otelEstimatedUsage, equal to what the Prometheus counter counted', async () => {
    const port = await start({ otelEstimatedUsage: true });
    await postJson(port, CHAT, body);
    await recordedRequests(1);
    const counted = await value(registry, m('output_tokens_total'), { model: MODEL });
    expect(counted).toBeGreaterThan(0);
    const output = only(await otel.histogram(I.tokenUsage));
    expect(output).toMatchObject({ attributes: { 'gen_ai.token.type': 'output' }, count: 1, sum: counted });
    expect(await otel.sum(I.usageOutputTokens)).toEqual([{ attributes: expect.objectContaining({ 'gen_ai.request.model': MODEL }), value: counted }]);
    // Input usage has no estimate: without a stated count it is never recorded.
    expect(await otel.sum(I.usageInputTokens)).toEqual([]);
  });
});

test('a unary response records its body usage and no token timing', async () => {
  const port = await start();
  const response = await postJson(port, CHAT, { model: MODEL, messages: [] });
  expect(response.status).toBe(200);
  const duration = only(await recordedRequests(1));
  expect(duration.attributes).toEqual(base('chat', 'openai'));
  expect(await otel.histogram(I.timeToFirstToken)).toEqual([]);
  expect(await otel.histogram(I.timePerOutputToken)).toEqual([]);
  const sums = Object.fromEntries((await otel.histogram(I.tokenUsage)).map((point) => [point.attributes['gen_ai.token.type'], point.sum]));
  expect(sums).toEqual({ input: 9, output: 7 });
});

test.each([
  { path: '/v1/completions', operation: 'text_completion', input: 4, output: 2, cached: undefined, reasoning: undefined },
  { path: '/v1/responses', operation: 'chat', input: 13, output: 8, cached: 4, reasoning: 3 },
  { path: '/v1/embeddings', operation: 'embeddings', input: 5, output: undefined, cached: undefined, reasoning: undefined },
])('$path: gen_ai.operation.name $operation and the usage its body states', async ({ path: route, operation, input, output, cached, reasoning }) => {
  const port = await start();
  expect((await postJson(port, route, { model: MODEL, input: 'hi', prompt: 'hi' })).status).toBe(200);
  const attributes = base(operation, 'openai');
  expect(only(await recordedRequests(1)).attributes).toEqual(attributes);
  const counted = { ...attributes, 'gen_ai.token.modality': 'unknown' };
  const totals = async (name: string): Promise<number | undefined> => (await otel.sum(name))[0]?.value;
  expect(await otel.sum(I.usageInputTokens)).toEqual([{ attributes: counted, value: input }]);
  expect(await totals(I.usageOutputTokens)).toBe(output);
  expect(await totals(I.usageCacheReadInputTokens)).toBe(cached);
  expect(await totals(I.usageReasoningOutputTokens)).toBe(reasoning);
});

test('an Anthropic stream is provider anthropic, with input including cache reads and the stated output', async () => {
  const port = await start();
  const response = await postJson(port, '/v1/messages', { model: 'claude-test', stream: true, max_tokens: 100, messages: [] });
  expect(response.status).toBe(200);
  const attributes = base('chat', 'anthropic', 'claude-test');
  expect(only(await recordedRequests(1)).attributes).toEqual(attributes);
  expect(only(await otel.histogram(I.timeToFirstToken)).attributes).toEqual(attributes);
  const counted = { ...attributes, 'gen_ai.token.modality': 'unknown' };
  expect(await otel.sum(I.usageInputTokens)).toEqual([{ attributes: counted, value: 25 }]);
  expect(await otel.sum(I.usageCacheReadInputTokens)).toEqual([{ attributes: counted, value: 5 }]);
  expect(await otel.sum(I.usageOutputTokens)).toEqual([{ attributes: counted, value: 12 }]);
  expect(await value(registry, m('output_tokens_total'), { model: 'claude-test' })).toBe(12);
});

test('an error response records its duration with error.type and nothing else', async () => {
  const port = await start();
  const response = await postJson(port, CHAT, { model: 'missing', stream: true, messages: [] });
  expect(response.status).toBe(404);
  const duration = only(await recordedRequests(1));
  // The model attribute is the Prometheus `model` label, bounded by the same admission rules.
  const [labels] = await labelSets(registry, m('requests_total'));
  expect(labels).toMatchObject({ status: 'error', error_type: 'not_found' });
  expect(duration.attributes).toEqual({
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': labels?.model,
    'error.type': 'not_found',
  });
  expect(await otel.histogram(I.timeToFirstToken)).toEqual([]);
  expect(await otel.histogram(I.tokenUsage)).toEqual([]);
});

test('a client that leaves mid-stream: duration with error.type cancelled, no timing of a successful response, no usage', async () => {
  const port = await start();
  const stream = await openStream(port, CHAT, { model: MODEL, stream: true, hang: true, messages: [] });
  await stream.waitFor(PIECES[PIECES.length - 1] as string);
  stream.abort();
  const duration = only(await recordedRequests(1));
  expect(duration.attributes).toEqual({ ...base('chat', 'openai'), 'error.type': 'cancelled' });
  expect(await otel.histogram(I.timeToFirstToken)).toEqual([]);
  expect(await otel.histogram(I.timePerOutputToken)).toEqual([]);
  expect(await otel.histogram(I.tokenUsage)).toEqual([]);
  expect(await value(registry, m('model_cancellation_total'), { model: MODEL })).toBe(1);
});

test('the meter is called per request, never per chunk: ten times the chunks, the same calls', async () => {
  let calls = 0;
  const counting = {
    createHistogram: (name: string, options?: Parameters<typeof otel.meter.createHistogram>[1]) => {
      const histogram = otel.meter.createHistogram(name, options);
      return { record: (v: number, a?: Record<string, string | number | boolean>) => (calls++, histogram.record(v, a)) };
    },
    createCounter: (name: string, options?: Parameters<typeof otel.meter.createCounter>[1]) => {
      const counter = otel.meter.createCounter(name, options);
      return { add: (v: number, a?: Record<string, string | number | boolean>) => (calls++, counter.add(v, a)) };
    },
  };
  const port = await start({ meter: counting });
  const callsFor = async (repeat: number, done: number): Promise<number> => {
    const before = calls;
    await postJson(port, CHAT, { model: MODEL, stream: true, stream_options: { include_usage: true }, repeat, messages: [] });
    await recordedRequests(done);
    return calls - before;
  };
  const few = await callsFor(1, 1);
  const many = await callsFor(10, 2);
  expect(few).toBeGreaterThan(0);
  expect(many).toBe(few);
  // Both responses stated 6 output tokens; that, not the live count of the longer text, is the recorded usage.
  expect(only(await otel.sum(I.usageOutputTokens)).value).toBe(6 + 6);
});

test('a meter that throws is reported through onError; the response and the Prometheus metrics are untouched', async () => {
  const broken = {
    createHistogram: () => ({
      record: () => {
        throw new Error('exporter exploded');
      },
    }),
    createCounter: () => ({ add: () => undefined }),
  };
  const port = await start({ meter: broken });
  const response = await postJson(port, CHAT, { model: MODEL, stream: true, stream_options: { include_usage: true }, messages: [] });
  expect(response.body.toString()).toContain('data: [DONE]');
  await eventually(() => errors.length > 0);
  expect(errors.map((error) => error.code)).toEqual(['otel_record_failed']);
  expect(await value(registry, m('requests_total'), { model: MODEL, status: 'success' })).toBe(1);
  expect(await value(registry, m('output_tokens_total'), { model: MODEL })).toBe(6);
});

test('response model names are bounded like model labels', async () => {
  const port = await start({ maxModels: 1 });
  for (const model of ['first', 'second']) {
    await postJson(port, CHAT, { model, messages: [] });
  }
  const points = await recordedRequests(2);
  const responseModels = points.map((point) => point.attributes['gen_ai.response.model']).sort();
  expect(responseModels).toEqual([responseModelOf('first'), 'unknown_model']);
});

test('extraLabels values become attributes of every instrument, bounded and hashed as on the Prometheus side', async () => {
  const port = await start({
    extraLabels: {
      tenant: { value: (req) => req.headers['x-tenant'] as string | undefined, maxValues: 2 },
      user: { value: (req) => req.headers['x-user'] as string | undefined, hash: true },
    },
  });
  const body = { model: MODEL, stream: true, stream_options: { include_usage: true }, messages: [] };
  const send = (tenant: string) => request(port, 'POST', CHAT, body, undefined, { 'x-tenant': tenant, 'x-user': 'alice@example.com' });
  for (const tenant of ['acme', 'globex', 'initech', 'acme']) await send(tenant);
  const durations = await recordedRequests(4);
  const tenants = Object.fromEntries(durations.map((point) => [point.attributes.tenant, point.count]));
  // Past maxValues (2) a new tenant is `other`, on both sides; no request is lost.
  expect(tenants).toEqual({ acme: 2, globex: 1, other: 1 });
  expect(await value(registry, m('requests_total'), { tenant: 'other' })).toBe(1);
  const users = new Set(durations.map((point) => point.attributes.user));
  expect(users.size).toBe(1);
  const [user] = [...users];
  expect(user).toMatch(/^[0-9a-f]{16}$/);
  expect(await value(registry, m('requests_total'), { user: user as string })).toBe(4);
  // Every instrument carries them, the token counters too.
  for (const point of await otel.sum(I.usageOutputTokens)) expect(point.attributes).toMatchObject({ user, 'gen_ai.request.model': MODEL });
  const outputByTenant = Object.fromEntries((await otel.sum(I.usageOutputTokens)).map((point) => [point.attributes.tenant, point.value]));
  expect(outputByTenant).toEqual({ acme: 12, globex: 6, other: 6 });
  expect(only(await otel.histogram(I.timeToFirstToken).then((points) => points.filter((p) => p.attributes.tenant === 'other')))).toMatchObject({ count: 1 });
});

test('an SDK view keeps the histograms per model while the token counters keep the tenant (the recipe in the docs)', async () => {
  await otel.shutdown();
  otel = new OtelHarness([{ instrumentType: InstrumentType.HISTOGRAM, attributesProcessors: [createDenyListAttributesProcessor(['tenant'])] }]);
  const port = await start({ extraLabels: { tenant: (req) => req.headers['x-tenant'] as string | undefined } });
  const body = { model: MODEL, stream: true, stream_options: { include_usage: true }, messages: [] };
  for (const tenant of ['acme', 'globex']) await request(port, 'POST', CHAT, body, undefined, { 'x-tenant': tenant });
  const duration = only(await recordedRequests(2));
  expect(duration.count).toBe(2);
  expect(duration.attributes.tenant).toBeUndefined();
  const outputByTenant = Object.fromEntries((await otel.sum(I.usageOutputTokens)).map((point) => [point.attributes.tenant, point.value]));
  expect(outputByTenant).toEqual({ acme: 6, globex: 6 });
});

describe('options', () => {
  test('a meter that is not a Meter, or otelEstimatedUsage without one, throws a TypeError naming the option', () => {
    expect(() => dynamoMetrics({ registry, meter: {} as never })).toThrow(/option "meter"/);
    expect(() => dynamoMetrics({ registry, otelEstimatedUsage: true })).toThrow(/"otelEstimatedUsage" needs option "meter"/);
    expect(() => dynamoMetrics({ registry, meter: otel.meter, otelEstimatedUsage: 'yes' as never })).toThrow(/"otelEstimatedUsage" must be a boolean/);
  });
});

test('without meter the package loads no @opentelemetry module beyond what prom-client itself loads', () => {
  // In a fresh process: jest's own module registry would hide what Node's require() loaded.
  const script = `
    const loaded = () => Object.keys(require.cache).filter((file) => file.includes('@opentelemetry')).sort();
    require('prom-client');
    const byPromClient = loaded();
    const http = require('node:http');
    const { dynamoMetrics } = require('./lib');
    const middleware = dynamoMetrics({ registry: new (require('prom-client').Registry)() });
    const server = http.createServer((req, res) => middleware(req, res, () => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end('data: {"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\\n\\ndata: [DONE]\\n\\n');
    })).listen(0, '127.0.0.1', () => {
      const req = http.request({ host: '127.0.0.1', port: server.address().port, method: 'POST', path: '/v1/chat/completions' }, (res) => {
        res.resume();
        res.on('end', () => setTimeout(() => {
          console.log(JSON.stringify({ byPromClient, after: loaded() }));
          server.close();
        }, 20));
      });
      req.end();
    });
  `;
  const root = path.resolve(__dirname, '..', '..');
  const output = execFileSync(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  const { byPromClient, after } = JSON.parse(output.trim().split('\n').pop() as string) as { byPromClient: string[]; after: string[] };
  expect(after).toEqual(byPromClient);
  // The check would pass vacuously if nothing at all could be seen: prom-client's own import is visible.
  expect(byPromClient.some((file) => file.includes('@opentelemetry/api'))).toBe(true);
});
