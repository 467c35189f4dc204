/**
 * `compression` in either order. Mounted before dynamoMetrics our wrapper sits above it and sees plain events.
 * Mounted after it, our wrapper sees gzip bytes, and reads a decoded copy: counted exactly all the same, no parse
 * error, no warning. Either way the client receives valid gzip of the same events.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import express from 'express';
import type { RequestHandler } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import type { DynamoMetricsError } from '../../lib';
import { eventually, listen } from '../support/http';
import { fromSnapshot, nonZeroGauges, P, snapshot } from '../support/registry-values';
import { chatEvent, codePoints } from '../support/streams';
import { watchWarnings } from '../support/warnings';
import type { WarningWatch } from '../support/warnings';

const CHAT = '/v1/chat/completions';
const TEXTS = ['Hé', 'llo', ' 世界', ' 🌍', ' and', ' more', ' text', ' to', ' make', ' gzip', ' worth', ' it'];
const EVENTS = [...Array.from({ length: 40 }, (_, i) => chatEvent('m', TEXTS[i % TEXTS.length])), chatEvent('m', undefined, 'stop'), 'data: [DONE]\n\n'];
const EXPECTED_TOKENS = Array.from({ length: 40 }, (_, i) => codePoints(TEXTS[i % TEXTS.length] as string)).reduce((a, b) => a + b, 0);
const UNARY = JSON.stringify({
  id: 'c1',
  object: 'chat.completion',
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: 'word '.repeat(600) }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 5, completion_tokens: 600, total_tokens: 605 },
});

// process.on('warning') never fires inside Jest: watch emitWarning calls instead.
let watch: WarningWatch;
beforeAll(() => (watch = watchWarnings()));
afterAll(() => watch.stop());

function streamHandler(req: IncomingMessage, res: ServerResponse & { flush?: () => void }): void {
  req.resume();
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8' });
  let i = 0;
  const next = (): void => {
    if (i === EVENTS.length) {
      res.end();
      return;
    }
    res.write(EVENTS[i++] as string);
    // compression buffers until flushed; SSE servers behind it flush every event.
    res.flush?.();
    setImmediate(next);
  };
  next();
}

function unaryHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.setHeader('Content-Type', 'application/json');
  res.end(UNARY);
}

function post(port: number, path: string): Promise<{ headers: http.IncomingHttpHeaders; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json' } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ headers: res.headers, raw: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end('{"model":"m","stream":true}');
  });
}

async function run(order: 'compression first' | 'dynamoMetrics first', path: string, requests = 1) {
  const registry = new Registry();
  const errors: DynamoMetricsError[] = [];
  const metrics = dynamoMetrics({ registry, countTokens: codePoints, onError: (e) => errors.push(e) });
  const app = express();
  const squash = compression({ threshold: 0 }) as unknown as RequestHandler;
  if (order === 'compression first') {
    app.use(squash);
    app.use(metrics);
  } else {
    app.use(metrics);
    app.use(squash);
  }
  app.post(CHAT, streamHandler);
  app.post('/v1/unary/chat/completions', unaryHandler);
  const server = await listen(app);
  try {
    const responses = [];
    for (let i = 0; i < requests; i++) responses.push(await post(server.port, path));
    await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`) === requests);
    return { responses, shot: await snapshot(registry), errors };
  } finally {
    await server.close();
  }
}

describe('compression mounted before dynamoMetrics', () => {
  test('a stream: events counted exactly, the client gets valid gzip of the same events', async () => {
    const { responses, shot, errors } = await run('compression first', CHAT);
    const [response] = responses;
    expect(response?.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(response?.raw as Buffer).toString()).toBe(EVENTS.join(''));
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(EXPECTED_TOKENS);
    expect(fromSnapshot(shot, `${P}_requests_total`, { status: 'success', error_type: '', request_type: 'stream' })).toBe(1);
    expect(fromSnapshot(shot, `${P}_parse_errors_total`)).toBe(0);
    expect(errors).toEqual([]);
  });

  test('a unary body: its usage counted', async () => {
    const { responses, shot } = await run('compression first', '/v1/unary/chat/completions');
    expect(responses[0]?.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(responses[0]?.raw as Buffer).toString()).toBe(UNARY);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(600);
    expect(fromSnapshot(shot, `${P}_parse_errors_total`)).toBe(0);
  });
});

describe('compression mounted after dynamoMetrics (our wrapper sees gzip bytes)', () => {
  test('a stream: read from a decoded copy, counted exactly, no parse error, no warning, valid gzip', async () => {
    const before = watch.warnings.length;
    const { responses, shot, errors } = await run('dynamoMetrics first', CHAT, 3);
    for (const response of responses) {
      expect(response.headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(response.raw).toString()).toBe(EVENTS.join(''));
    }
    expect(fromSnapshot(shot, `${P}_requests_total`)).toBe(3);
    expect(fromSnapshot(shot, `${P}_requests_started_total`)).toBe(3);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(3 * EXPECTED_TOKENS);
    expect(fromSnapshot(shot, `${P}_requests_total`, { status: 'success', error_type: '', request_type: 'stream' })).toBe(3);
    expect(fromSnapshot(shot, `${P}_requests_finished_total`, { finish_reason: 'stop' })).toBe(3);
    expect(fromSnapshot(shot, `${P}_parse_errors_total`)).toBe(0);
    expect(errors).toEqual([]);
    expect(nonZeroGauges(shot)).toEqual([]);
    expect(watch.warnings.slice(before).filter((w) => w.code === 'DYNAMO_METRICS_COMPRESSED')).toHaveLength(0);
  });

  test('a unary body: its usage counted from the decoded copy', async () => {
    const { responses, shot } = await run('dynamoMetrics first', '/v1/unary/chat/completions');
    expect(responses[0]?.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(responses[0]?.raw as Buffer).toString()).toBe(UNARY);
    expect(fromSnapshot(shot, `${P}_requests_total`, { status: 'success', request_type: 'unary' })).toBe(1);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(600);
    expect(fromSnapshot(shot, `${P}_input_tokens_total`)).toBe(5);
    expect(fromSnapshot(shot, `${P}_parse_errors_total`)).toBe(0);
  });
});
