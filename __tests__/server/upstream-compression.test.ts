/**
 * A proxy whose upstream compresses (the client's Accept-Encoding forwarded): the middleware reads a decoded copy
 * of gzip, deflate and br bodies, streamed or unary, and counts them exactly; it never reads compressed bytes as
 * text, even a brotli stream whose first byte is a line end; the request ends once, after the copy is read.
 */
import http from 'node:http';
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { closedAfterEach, eventually, listen } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { everyGaugeSeriesZero, P, settled, total, value } from '../support/registry-values';
import { chatEvent, codePoints } from '../support/streams';
import { watchWarnings } from '../support/warnings';
import type { WarningWatch } from '../support/warnings';

const TEXTS = ['Hé', 'llo', ' 世界', ' 🌍', ' and', ' more'];
const EVENTS = [...Array.from({ length: 30 }, (_, i) => chatEvent('m', TEXTS[i % TEXTS.length])), chatEvent('m', undefined, 'stop'), 'data: [DONE]\n\n'];
const TOKENS = Array.from({ length: 30 }, (_, i) => codePoints(TEXTS[i % TEXTS.length] as string)).reduce((a, b) => a + b, 0);
const UNARY = JSON.stringify({
  object: 'chat.completion',
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'word '.repeat(3000) }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 9, completion_tokens: 3000, total_tokens: 3009 },
});

type Encoding = 'gzip' | 'deflate' | 'br';

type Squash = Transform & { flush(callback: () => void): void };

function compressor(encoding: Encoding): Squash {
  if (encoding === 'gzip') return zlib.createGzip();
  if (encoding === 'deflate') return zlib.createDeflate();
  // A window of 2^23 makes the first byte of the stream 0x0d, a carriage return: a text sniffer would take it for SSE.
  return zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_LGWIN]: 23 } });
}

/** An upstream that compresses as the client asked, flushing each event so the stream stays live. */
function upstreamHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  const encoding = String(req.headers['accept-encoding'] ?? '') as Encoding | 'zstd';
  const unary = req.url?.includes('unary') === true;
  if (encoding === 'zstd') {
    // An encoding the middleware does not decode: the bytes are passed on, the request counted, the body unread.
    res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'zstd' });
    res.end(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3]));
    return;
  }
  res.writeHead(200, { 'content-type': unary ? 'application/json' : 'text/event-stream', 'content-encoding': encoding });
  const squash = compressor(encoding);
  squash.pipe(res);
  if (unary) {
    squash.end(UNARY);
    return;
  }
  let i = 0;
  const next = (): void => {
    if (res.destroyed) {
      squash.destroy();
      return;
    }
    if (i === EVENTS.length) {
      squash.end();
      return;
    }
    squash.write(EVENTS[i++] as string);
    squash.flush(() => setImmediate(next));
  };
  next();
}

interface Received {
  status: number;
  raw: Buffer;
}

function post(port: number, path: string, encoding: string, abortAfterBytes?: number): Promise<Received> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'accept-encoding': encoding, 'content-type': 'application/json' } },
      (res) => {
        const parts: Buffer[] = [];
        let length = 0;
        res.on('data', (part: Buffer) => {
          parts.push(part);
          length += part.length;
          if (abortAfterBytes !== undefined && length >= abortAfterBytes) {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, raw: Buffer.concat(parts) });
          }
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, raw: Buffer.concat(parts) }));
        res.on('error', () => undefined);
      },
    );
    req.on('error', (error) => (abortAfterBytes === undefined ? reject(error) : undefined));
    req.end('{"messages":[]}');
  });
}

const decode: Record<Encoding, (bytes: Buffer) => Buffer> = { gzip: zlib.gunzipSync, deflate: zlib.inflateSync, br: zlib.brotliDecompressSync };

let watch: WarningWatch;
beforeAll(() => (watch = watchWarnings()));
afterAll(() => watch.stop());

const servers = closedAfterEach();

async function gateway() {
  const upstream = await listen(upstreamHandler);
  servers.push(upstream);
  // The proxy recipe: no body parser, the client's Accept-Encoding reaches the upstream as it is.
  const { app, registry } = metricsApp({ countTokens: codePoints });
  app.use('/v1', createProxyMiddleware({ target: `${upstream.url}/v1` }));
  const served = await listen(app);
  servers.push(served);
  return { port: served.port, registry };
}

describe.each(['gzip', 'deflate', 'br'] as const)('upstream answers %s', (encoding) => {
  it('a stream: counted exactly from a decoded copy; the request ends once, after it', async () => {
    const { port, registry } = await gateway();
    const received = await post(port, '/v1/chat/completions', encoding);
    if (encoding === 'br') expect(received.raw[0]).toBe(0x0d);
    expect(decode[encoding](received.raw).toString()).toBe(EVENTS.join(''));
    await eventually(async () => (await total(registry, 'requests_total')) === 1);
    // Read the moment the request has ended: every token is already there.
    expect(await total(registry, 'output_tokens_total', { model: 'm' })).toBe(TOKENS);
    expect(await total(registry, 'requests_total', { model: 'm', status: 'success', error_type: '', request_type: 'stream' })).toBe(1);
    expect(await total(registry, 'requests_finished_total', { finish_reason: 'stop' })).toBe(1);
    expect(await value(registry, `${P}_time_to_first_token_seconds`, { model: 'm' }, 'count')).toBe(1);
    expect(await total(registry, 'parse_errors_total')).toBe(0);
    expect(await everyGaugeSeriesZero(registry)).toBe(true);
  });

  it('a unary body: its usage read from the decoded copy', async () => {
    const { port, registry } = await gateway();
    const received = await post(port, '/v1/unary/chat/completions', encoding);
    expect(decode[encoding](received.raw).toString()).toBe(UNARY);
    await settled(registry);
    expect(await total(registry, 'output_tokens_total', { model: 'm' })).toBe(3000);
    expect(await total(registry, 'input_tokens_total', { model: 'm' })).toBe(9);
    expect(await total(registry, 'requests_total', { model: 'm', status: 'success', request_type: 'unary' })).toBe(1);
    expect(await total(registry, 'parse_errors_total')).toBe(0);
  });

  it('a client that leaves mid-stream: cancelled once, what was decoded stays counted, gauges back to 0', async () => {
    const { port, registry } = await gateway();
    await post(port, '/v1/chat/completions', encoding, 200);
    await settled(registry);
    expect(await total(registry, 'requests_total')).toBe(1);
    expect(await total(registry, 'requests_total', { error_type: 'cancelled' })).toBe(1);
    expect(await total(registry, 'output_tokens_total')).toBeLessThanOrEqual(TOKENS);
    expect(await total(registry, 'parse_errors_total')).toBe(0);
    expect(await everyGaugeSeriesZero(registry)).toBe(true);
  });
});

it('an encoding it does not decode: never read as text, counted as a request, compressed_body, one warning', async () => {
  const before = watch.warnings.length;
  const { port, registry } = await gateway();
  for (let i = 0; i < 2; i++) expect((await post(port, '/v1/chat/completions', 'zstd')).status).toBe(200);
  await settled(registry);
  expect(await total(registry, 'requests_total', { status: 'success' })).toBe(2);
  expect(await total(registry, 'output_tokens_total')).toBe(0);
  expect(await total(registry, 'parse_errors_total', { reason: 'compressed_body' })).toBe(2);
  expect(await total(registry, 'parse_errors_total')).toBe(2);
  const warnings = watch.warnings.slice(before).filter((w) => w.code === 'DYNAMO_METRICS_COMPRESSED');
  expect(warnings).toHaveLength(1);
  expect(warnings[0]?.message).toMatch(/zstd/);
});
