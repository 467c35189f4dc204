/**
 * Unary bodies of any size are read with bounded memory: a large embeddings or chat body keeps its usage (the
 * old 8 MiB buffer dropped it), and many large bodies at once cost the server little beyond their own writes.
 */
import type { Response } from 'express';
import { garbageCollector, heapAfterGc, MB } from '../support/gc';
import { closedAfterEach, listen, request } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { settled, total } from '../support/registry-values';

function embeddingsBody(inputs: number): Buffer {
  const data = Array.from({ length: inputs }, (_, index) => ({
    object: 'embedding',
    index,
    embedding: Array.from({ length: 1536 }, (_, i) => Math.sin(index * 1536 + i) / 7),
  }));
  return Buffer.from(JSON.stringify({ object: 'list', data, model: 'text-embedding-3-small', usage: { prompt_tokens: 4321, total_tokens: 4321 } }));
}

/** Written the way a proxy writes it: 64 KiB at a time, waiting for the socket. */
async function writeInPieces(res: Response, body: Buffer): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json' });
  for (let offset = 0; offset < body.length; offset += 64 * 1024) {
    if (!res.write(body.subarray(offset, offset + 64 * 1024))) await new Promise((resolve) => res.once('drain', resolve));
  }
  res.end();
}

const servers = closedAfterEach();

it('a 12 MiB embeddings body (past the default maxBodyBytes) keeps its usage, with no parse error', async () => {
  const body = embeddingsBody(400);
  expect(body.length).toBeGreaterThan(12 * MB);
  const { app, registry } = metricsApp();
  app.post('/v1/embeddings', (_req, res) => void writeInPieces(res, body));
  const served = await listen(app);
  servers.push(served);
  expect((await request(served.port, 'POST', '/v1/embeddings', { input: 'x' })).body.equals(body)).toBe(true);
  await settled(registry);
  expect(await total(registry, 'input_tokens_total', { model: 'text-embedding-3-small' })).toBe(4321);
  expect(await total(registry, 'requests_total', { model: 'text-embedding-3-small', status: 'success', request_type: 'unary' })).toBe(1);
  expect(await total(registry, 'parse_errors_total')).toBe(0);
});

it('a chat body with 20 MiB of text keeps its usage; its text is not kept', async () => {
  const body = Buffer.from(
    JSON.stringify({
      object: 'chat.completion',
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'token '.repeat(3_500_000) }, finish_reason: 'length' }],
      usage: { prompt_tokens: 12, completion_tokens: 3_500_000, total_tokens: 3_500_012 },
    }),
  );
  const { app, registry } = metricsApp();
  app.post('/v1/chat/completions', (_req, res) => void writeInPieces(res, body));
  const served = await listen(app);
  servers.push(served);
  await request(served.port, 'POST', '/v1/chat/completions', { model: 'm' });
  await settled(registry);
  expect(await total(registry, 'output_tokens_total', { model: 'm' })).toBe(3_500_000);
  expect(await total(registry, 'input_tokens_total', { model: 'm' })).toBe(12);
  expect(await total(registry, 'requests_finished_total', { model: 'm', finish_reason: 'length' })).toBe(1);
  expect(await total(registry, 'parse_errors_total', { reason: 'body_too_large' })).toBe(1);
}, 30_000);

it('16 concurrent 7.5 MiB embeddings bodies: the middleware holds none of them', async () => {
  const body = embeddingsBody(250);
  expect(body.length).toBeGreaterThan(7 * MB);
  const gc = garbageCollector();
  const { app, registry } = metricsApp();
  app.post('/v1/embeddings', (_req, res) => void writeInPieces(res, body));
  const served = await listen(app);
  servers.push(served);
  const start = heapAfterGc(gc);
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().heapUsed)), 2);
  try {
    await Promise.all(Array.from({ length: 16 }, () => request(served.port, 'POST', '/v1/embeddings', { input: 'x' })));
  } finally {
    clearInterval(sampler);
  }
  await settled(registry);
  expect(await total(registry, 'input_tokens_total')).toBe(16 * 4321);
  // Buffering each body and JSON.parse at its end peaked at ≈ 70 MB more here; reading as the bytes arrive, the
  // heap holds the writes in flight and little else.
  const added = (peak - start) / MB;
  expect(added).toBeLessThan(40);
}, 60_000);
