/**
 * The proxy recipe (the example app in `UPSTREAM_URL` mode, http-proxy-middleware 3) in front of a faulty upstream
 * started here: it dies mid-stream, answers 429/500/503, stalls, never answers, sends an error event, or is not
 * there. The client gets a clean error or a clean end (never a hang), `requests_total` records the contract's
 * `error_type`, and nothing stays in flight.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { Registry } from 'prom-client';
import { createApp } from '../../example-app/app';
import { closedAfterEach, eventually, listen } from '../support/http';
import { fromSnapshot, nonZeroGauges, P, snapshot } from '../support/registry-values';
import type { Snapshot } from '../support/registry-values';
import { chatEvent } from '../support/streams';

const CHAT = '/v1/chat/completions';
const TIMEOUT_MS = 400;

interface ClientOutcome {
  status: number;
  body: Buffer;
  /** 'end': the response ended normally; 'broken': the connection broke (aborted/reset) before the end. */
  ending: 'end' | 'broken';
  ms: number;
}

/** One streaming request through the gateway; never hangs past `limitMs`. */
function send(port: number, limitMs = 5000): Promise<ClientOutcome> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const payload = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`the client was left hanging for ${limitMs} ms`));
    }, limitMs);
    const req = http.request(
      { host: '127.0.0.1', port, path: CHAT, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const parts: Buffer[] = [];
        let settled = false;
        const finish = (ending: ClientOutcome['ending']): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), ending, ms: Date.now() - started });
        };
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => finish('end'));
        res.on('aborted', () => finish('broken'));
        res.on('error', () => finish('broken'));
        res.on('close', () => finish(res.complete ? 'end' : 'broken'));
      },
    );
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(payload);
  });
}

const servers = closedAfterEach();

async function gatewayTo(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; registry: Registry; sent: Buffer[] }> {
  const sent: Buffer[] = [];
  const upstream = await listen((req, res) => {
    // Record what the upstream wrote, to compare with what reached the client.
    const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) sent.push(Buffer.from(chunk));
      return write(chunk, ...rest);
    }) as ServerResponse['write'];
    const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => ServerResponse;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) sent.push(Buffer.from(chunk));
      return end(chunk, ...rest);
    }) as ServerResponse['end'];
    req.resume();
    handler(req, res);
  });
  servers.push(upstream);
  const registry = new Registry();
  const gateway = await listen(createApp({
    registry,
    upstream: { url: upstream.url, timeoutMs: TIMEOUT_MS },
    // 'm' is a model the gateway serves: its failures count under its own label, not unknown_model.
    metrics: { models: ['m'], countTokens: (t) => Array.from(t).length },
  }));
  servers.push(gateway);
  return { port: gateway.port, registry, sent };
}

async function settled(registry: Registry): Promise<Snapshot> {
  await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`) === 1, 5000);
  const shot = await snapshot(registry);
  expect(fromSnapshot(shot, `${P}_requests_total`)).toBe(1);
  expect(fromSnapshot(shot, `${P}_requests_started_total`)).toBe(1);
  expect(nonZeroGauges(shot)).toEqual([]);
  return shot;
}

const errorTypeOf = (shot: Snapshot, errorType: string): number => fromSnapshot(shot, `${P}_requests_total`, { model: 'm', status: 'error', error_type: errorType });

const SSE_HEAD = { 'Content-Type': 'text/event-stream; charset=utf-8' };

describe('upstream answers with an error status', () => {
  test.each([
    [429, 'overload', { error: { type: 'rate_limit_error', message: 'slow down' } }],
    [500, 'internal', { error: { type: 'server_error', message: 'boom' } }],
    [503, 'unavailable', { error: { type: 'service_unavailable', message: 'later' } }],
  ])('%i reaches the client as is and is counted as %s', async (status, errorType, body) => {
    const gateway = await gatewayTo((_req, res) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    const outcome = await send(gateway.port);
    expect(outcome.status).toBe(status);
    expect(outcome.ending).toBe('end');
    expect(JSON.parse(outcome.body.toString())).toEqual(body);
    const shot = await settled(gateway.registry);
    expect(errorTypeOf(shot, errorType)).toBe(1);
  });
});

describe('upstream fails while streaming', () => {
  test('closes the connection mid-stream: the client sees a broken stream, counted as internal with its tokens', async () => {
    const gateway = await gatewayTo((_req, res) => {
      res.writeHead(200, SSE_HEAD);
      res.write(chatEvent('m', 'ab'));
      res.write(chatEvent('m', 'cde'));
      setTimeout(() => res.socket?.destroy(), 30);
    });
    const outcome = await send(gateway.port);
    expect(outcome.status).toBe(200);
    expect(outcome.ending).toBe('broken');
    expect(outcome.body.toString()).toBe(Buffer.concat(gateway.sent).toString());
    const shot = await settled(gateway.registry);
    expect(errorTypeOf(shot, 'internal')).toBe(1);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(5);
    expect(fromSnapshot(shot, `${P}_disconnected_clients`)).toBe(0);
  });

  test('stalls after the head: the proxy gives up after its timeout, the stream breaks, counted as internal', async () => {
    const gateway = await gatewayTo((_req, res) => {
      res.writeHead(200, SSE_HEAD);
      res.write(chatEvent('m', 'ab'));
      // …and nothing more.
    });
    const outcome = await send(gateway.port);
    expect(outcome.ending).toBe('broken');
    expect(outcome.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    const shot = await settled(gateway.registry);
    expect(errorTypeOf(shot, 'internal')).toBe(1);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(2);
  });

  test('sends an error event and ends: the client gets a clean end, counted as the error type of the event', async () => {
    const gateway = await gatewayTo((_req, res) => {
      res.writeHead(200, SSE_HEAD);
      res.write(chatEvent('m', 'ab'));
      res.end(`data: ${JSON.stringify({ error: { type: 'rate_limit_error', message: 'overloaded', code: null } })}\n\n`);
    });
    const outcome = await send(gateway.port);
    expect(outcome.ending).toBe('end');
    expect(outcome.body.toString()).toBe(Buffer.concat(gateway.sent).toString());
    const shot = await settled(gateway.registry);
    expect(errorTypeOf(shot, 'overload')).toBe(1);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(2);
  });

  test('ends without its end marker: a clean end for the client, counted as internal (the stream was cut upstream)', async () => {
    const gateway = await gatewayTo((_req, res) => {
      res.writeHead(200, SSE_HEAD);
      res.write(chatEvent('m', 'ab'));
      res.end();
    });
    const outcome = await send(gateway.port);
    expect(outcome.ending).toBe('end');
    const shot = await settled(gateway.registry);
    expect(errorTypeOf(shot, 'internal')).toBe(1);
  });
});

describe('upstream never answers or is not there', () => {
  test('never answers: 504 from the proxy after its timeout, counted as internal (504 maps to internal)', async () => {
    const gateway = await gatewayTo(() => undefined);
    const outcome = await send(gateway.port);
    expect(outcome.status).toBe(504);
    expect(outcome.ending).toBe('end');
    expect(outcome.ms).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    const shot = await settled(gateway.registry);
    expect(errorTypeOf(shot, 'internal')).toBe(1);
  });

  test('connection refused: 502, counted as internal', async () => {
    // A port that was just free: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const deadPort = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const registry = new Registry();
    const gateway = await listen(createApp({ registry, upstream: { url: `http://127.0.0.1:${deadPort}`, timeoutMs: TIMEOUT_MS }, metrics: { models: ['m'] } }));
    servers.push(gateway);
    const outcome = await send(gateway.port);
    expect(outcome.status).toBe(502);
    expect(outcome.ending).toBe('end');
    const shot = await settled(registry);
    expect(errorTypeOf(shot, 'internal')).toBe(1);
  });
});

/** The contract's HTTP status → error_type table (metrics.md), written out independently of lib/labels.ts. */
function contractErrorType(status: number): string {
  if (status >= 200 && status < 300) return '';
  const named: Record<number, string> = { 400: 'validation', 404: 'not_found', 429: 'overload', 529: 'overload', 501: 'not_implemented', 503: 'unavailable', 499: 'cancelled' };
  if (named[status] !== undefined) return named[status] as string;
  return status >= 400 && status < 500 ? 'validation' : 'internal';
}

test('every upstream status is counted with the error_type of the contract, JSON or event-stream body', async () => {
  const statuses = [200, 201, 400, 401, 403, 404, 408, 409, 413, 418, 422, 429, 451, 499, 500, 501, 502, 503, 504, 507, 529, 599];
  for (const eventStream of [false, true]) {
    for (const status of statuses) {
      const gateway = await gatewayTo((_req, res) => {
        if (eventStream) {
          res.writeHead(status, SSE_HEAD);
          res.write(chatEvent('m', 'ab'));
          res.write(chatEvent('m', undefined, 'stop'));
          res.end('data: [DONE]\n\n');
        } else {
          res.writeHead(status, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(status < 300 ? { object: 'chat.completion', model: 'm', choices: [], usage: { completion_tokens: 2 } } : { error: { message: 'no' } }));
        }
      });
      const outcome = await send(gateway.port);
      expect(outcome.status).toBe(status);
      expect(outcome.ending).toBe('end');
      const shot = await settled(gateway.registry);
      const expected = contractErrorType(status);
      expect({ status, eventStream, counted: fromSnapshot(shot, `${P}_requests_total`, { status: expected === '' ? 'success' : 'error', error_type: expected }) }).toEqual({
        status,
        eventStream,
        counted: 1,
      });
      while (servers.length > 0) await servers.pop()?.close();
    }
  }
}, 60_000);

test('a healthy upstream through the same gateway: success, exact tokens (the faults above are the only difference)', async () => {
  const gateway = await gatewayTo((_req, res) => {
    res.writeHead(200, SSE_HEAD);
    res.write(chatEvent('m', 'ab'));
    res.write(chatEvent('m', 'cde'));
    res.write(chatEvent('m', undefined, 'stop'));
    res.end('data: [DONE]\n\n');
  });
  const outcome = await send(gateway.port);
  expect(outcome.ending).toBe('end');
  expect(outcome.body.toString()).toBe(Buffer.concat(gateway.sent).toString());
  const shot = await settled(gateway.registry);
  expect(fromSnapshot(shot, `${P}_requests_total`, { status: 'success', error_type: '' })).toBe(1);
  expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(5);
});
