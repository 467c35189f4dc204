/**
 * Node apps that relay an upstream's stream with the official OpenAI SDK, in the ways they write it out: the SDK's
 * own `toReadableStream()` (NDJSON of the chunks, also labelled text/plain), and SSE on a route of their choosing,
 * such as `/api/chat`, which is also Ollama's path. The relayed events are read in the format they show: counted live, exact at the usage.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import express from 'express';
import OpenAI from 'openai';
import { closedAfterEach, eventually, listen, openStream } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { everyGaugeSeriesZero, m, settled, total, value } from '../support/registry-values';

const WORDS = ['Streams', ' relayed', ' by', ' a', ' Node', ' app', ' are', ' counted', ' as', ' they', ' pass', '.'];
const MODEL = 'gpt-4o-mini';

const servers = closedAfterEach();

/** The upstream: an OpenAI-compatible server streaming WORDS with usage, one chunk per word, `gate` before the last half. */
async function upstream(gate: Promise<void>): Promise<string> {
  const app = express();
  app.use(express.json());
  app.post('/v1/chat/completions', async (req, res) => {
    const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: (req.body as { model: string }).model };
    const send = (payload: unknown): boolean => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    res.setHeader('Content-Type', 'text/event-stream');
    for (const [i, content] of WORDS.entries()) {
      if (i === WORDS.length / 2) await gate;
      send({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] });
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    send({ ...base, choices: [], usage: { prompt_tokens: 7, completion_tokens: 20, total_tokens: 27 } });
    res.end('data: [DONE]\n\n');
  });
  const served = await listen(app);
  servers.push(served);
  return `${served.url}/v1`;
}

async function gateway(baseURL: string) {
  const client = new OpenAI({ apiKey: 'test', baseURL, maxRetries: 0 });
  const { app, registry } = metricsApp();
  app.use(express.json());
  const create = (body: { model: string }) => client.chat.completions.create({ model: body.model, messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
  // The SDK's own relay: newline-delimited JSON of the chunks.
  app.post('/v1/chat/completions', async (req, res) => {
    const stream = await create(req.body as { model: string });
    res.setHeader('Content-Type', 'application/x-ndjson');
    Readable.fromWeb(stream.toReadableStream() as WebReadableStream).pipe(res);
  });
  // openai-node's own Express example: the same NDJSON, labelled text/plain, here on a route read as plain text.
  app.post('/api/generate', async (req, res) => {
    const stream = await create(req.body as { model: string });
    res.setHeader('Content-Type', 'text/plain');
    for await (const line of Readable.fromWeb(stream.toReadableStream() as WebReadableStream)) res.write(line);
    res.end();
  });
  // SSE on an app's own chat route.
  app.post('/api/chat', async (req, res) => {
    const stream = await create(req.body as { model: string });
    res.setHeader('Content-Type', 'text/event-stream');
    for await (const chunk of stream) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
    res.end('data: [DONE]\n\n');
  });
  const served = await listen(app);
  servers.push(served);
  return { registry, port: served.port };
}

describe.each([
  ['NDJSON from the SDK\'s toReadableStream() on /v1/chat/completions', '/v1/chat/completions', 'chat_completions'],
  ['SSE on /api/chat', '/api/chat', 'ollama_chat'],
  ['the same NDJSON sent as text/plain on /api/generate, a route read as plain text', '/api/generate', 'ai_sdk_text'],
])('%s', (_name, path, endpoint) => {
  it('is counted live, ends exact at the usage, and succeeds', async () => {
    let release: () => void = () => undefined;
    const { registry, port } = await gateway(await upstream(new Promise<void>((resolve) => (release = resolve))));
    const stream = await openStream(port, path, { model: MODEL, stream: true });
    await stream.waitFor(WORDS[WORDS.length / 2 - 1] as string);
    await eventually(async () => (await total(registry, 'output_tokens_total', { model: MODEL })) >= WORDS.length / 2);
    expect(await value(registry, m('time_to_first_token_seconds'), { model: MODEL }, 'count')).toBe(1);
    release();
    await stream.done;
    await settled(registry);
    expect(await total(registry, 'output_tokens_total', { model: MODEL })).toBe(20);
    expect(await total(registry, 'input_tokens_total', { model: MODEL })).toBe(7);
    expect(await total(registry, 'requests_total', { model: MODEL, endpoint, request_type: 'stream', status: 'success' })).toBe(1);
    expect(await total(registry, 'requests_finished_total', { model: MODEL, finish_reason: 'stop' })).toBe(1);
    expect(await total(registry, 'parse_errors_total')).toBe(0);
    expect(await everyGaugeSeriesZero(registry)).toBe(true);
  });
});
