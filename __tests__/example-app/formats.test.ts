/**
 * The example gateway's other formats: its Ollama-compatible /api/chat and AI SDK route on the mock model, and its
 * proxy mode passing Ollama and Gemini paths through, each counted at the gateway.
 */
import express from 'express';
import type { RunningServer } from '../../example-app/listen';
import { fetchMetrics, sumOf } from '../../example-app/metrics-text';
import { countPromptTokens } from '../../example-app/tokens';
import { start, startExample } from '../support/example-app';
import { eventually, postJson, request } from '../support/http';
import { GEMINI_PATH, geminiChunks, geminiSse, PIECES } from '../support/streams';

const MODEL = 'mock-llama-3.1-8b-instruct';
const M = 'dynamo_frontend_';

const portOf = (server: RunningServer): number => Number(new URL(server.url).port);

const ollamaChat = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [{ role: 'user', content: 'Why is the sky blue?' }],
  options: { num_predict: 25 },
  ...extra,
});

describe('the mock model in Ollama and AI SDK form', () => {
  test('/api/chat streams NDJSON, one token per line, and the gateway counts eval_count exactly', async () => {
    const server = await startExample({ mock: { tokensPerSecond: 0 } });
    const response = await postJson(portOf(server), '/api/chat', ollamaChat());
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/x-ndjson');
    const lines = response.body.toString('utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(26);
    expect(lines.at(-1)).toMatchObject({ done: true, done_reason: 'length', eval_count: 25, prompt_eval_count: countPromptTokens('Why is the sky blue?') });
    await eventually(async () => {
      const metrics = await fetchMetrics(server.url);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: MODEL })).toBe(25);
      expect(sumOf(metrics, `${M}input_tokens_total`, { model: MODEL })).toBe(countPromptTokens('Why is the sky blue?'));
      expect(sumOf(metrics, `${M}requests_total`, { model: MODEL, endpoint: 'ollama_chat', request_type: 'stream', status: 'success' })).toBe(1);
      expect(sumOf(metrics, `${M}requests_finished_total`, { model: MODEL, finish_reason: 'length' })).toBe(1);
      return true;
    });
  });

  test("/api/chat reads its body as JSON whatever the content type, as Ollama does (curl -d, as the banner's example sends it)", async () => {
    const server = await startExample({ mock: { tokensPerSecond: 0 } });
    const body = JSON.stringify(ollamaChat({ stream: false }));
    const response = await request(portOf(server), 'POST', '/api/chat', body, undefined, { 'content-type': 'application/x-www-form-urlencoded' });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString('utf8'))).toMatchObject({ model: MODEL, done: true });
  });

  test('/api/chat with stream: false answers one JSON object, counted as unary', async () => {
    const server = await startExample({ mock: { tokensPerSecond: 0 } });
    const response = await postJson(portOf(server), '/api/chat', ollamaChat({ stream: false, options: { num_predict: 9 } }));
    expect(JSON.parse(response.body.toString('utf8'))).toMatchObject({ done: true, eval_count: 9 });
    await eventually(async () => {
      const metrics = await fetchMetrics(server.url);
      expect(sumOf(metrics, `${M}requests_total`, { model: MODEL, endpoint: 'ollama_chat', request_type: 'unary' })).toBe(1);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: MODEL })).toBe(9);
      return true;
    });
  });

  test('the AI SDK route is counted under the model the app names, exactly from its totalUsage metadata', async () => {
    const server = await startExample({ mock: { tokensPerSecond: 0 } });
    const response = await postJson(portOf(server), '/api/assistant', { messages: [{ id: '1', role: 'user', parts: [{ type: 'text', text: 'hi' }] }] });
    expect(response.headers['x-vercel-ai-ui-message-stream']).toBe('v1');
    const body = response.body.toString('utf8');
    const deltas = body.split('\n').filter((line) => line.includes('"type":"text-delta"')).length;
    expect(deltas).toBeGreaterThan(30);
    await eventually(async () => {
      const metrics = await fetchMetrics(server.url);
      expect(sumOf(metrics, `${M}requests_total`, { model: MODEL, endpoint: 'ai_sdk_ui', request_type: 'stream', status: 'success' })).toBe(1);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: MODEL })).toBe(deltas);
      return true;
    });
  });
});

describe('proxy mode passes Ollama and Gemini through', () => {
  test('Ollama /api/chat through the gateway: bytes unchanged, counted exactly at the gateway', async () => {
    const upstream = await startExample({ mock: { tokensPerSecond: 200 } });
    const gateway = await startExample({ upstream: { url: upstream.url, timeoutMs: 5000 } });
    const direct = await postJson(portOf(upstream), '/api/chat', ollamaChat());
    const proxied = await postJson(portOf(gateway), '/api/chat', ollamaChat());
    const strip = (body: Buffer): string => body.toString('utf8').replace(/"created_at":"[^"]*"/g, '');
    expect(strip(proxied.body)).toBe(strip(direct.body));
    await eventually(async () => {
      const metrics = await fetchMetrics(gateway.url);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: MODEL })).toBe(25);
      expect(sumOf(metrics, `${M}time_to_first_token_seconds_count`, { model: MODEL })).toBe(1);
      expect(sumOf(metrics, `${M}requests_total`, { model: MODEL, endpoint: 'ollama_chat', status: 'success' })).toBe(1);
      return true;
    });
  });

  test('Gemini streamGenerateContent through the gateway: counted under the model in the path', async () => {
    const stream = geminiSse(geminiChunks({ model: 'gemini-2.5-flash-001', pieces: PIECES, thoughtsTokens: 30 }));
    const fake = express();
    fake.post(/.*/, (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(stream);
    });
    const upstream = await start(fake);
    const gateway = await startExample({ upstream: { url: upstream.url, timeoutMs: 5000 } });
    const response = await postJson(portOf(gateway), GEMINI_PATH, { contents: [{ parts: [{ text: 'hi' }] }] });
    expect(response.body.toString('utf8')).toBe(stream);
    await eventually(async () => {
      const metrics = await fetchMetrics(gateway.url);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: 'gemini-2.5-flash' })).toBe(2 * PIECES.length + 30);
      expect(sumOf(metrics, `${M}requests_total`, { model: 'gemini-2.5-flash', endpoint: 'gemini_generate_content', status: 'success' })).toBe(1);
      return true;
    });
  });
});
