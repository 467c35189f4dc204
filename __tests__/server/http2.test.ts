/**
 * HTTP/2 (`node:http2`'s compatibility API, as Fastify with `http2: true` runs it): many requests share one
 * connection, so each response is judged by its own stream. Every request on a connection is counted, a stream the
 * client resets is `cancelled`, and one the server breaks off is `internal`.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib/index';
import { eventually } from '../support/http';
import { everyGaugeSeriesZero, settled, total } from '../support/registry-values';
import { chatEvent } from '../support/streams';

const DONE = 'data: [DONE]\n\n';

interface Served {
  registry: Registry;
  session: http2.ClientHttp2Session;
  close(): Promise<void>;
}

let served: Served | undefined;
afterEach(async () => {
  await served?.close();
  served = undefined;
});

/**
 * A plain HTTP/2 server: the middleware (behind an async step that takes `lateMs`, as an auth check would), then a
 * handler that streams two tokens; `?destroy` and `?reset` break the stream off, `?big` ends a 2 MB answer at once.
 */
async function serve(lateMs = 0): Promise<Served> {
  const registry = new Registry();
  const observe = dynamoMetrics({ registry, models: ['m'] }) as unknown as (req: unknown, res: unknown, next: () => void) => void;
  const server = http2.createServer((req, res) => {
    const handle = (): void => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chatEvent('m', 'Hello'));
      if (req.url.includes('big')) {
        res.end(chatEvent('m', 'x'.repeat(2 * 1024 * 1024)) + DONE);
        return;
      }
      setTimeout(() => {
        if (req.url.includes('destroy')) res.destroy();
        else if (req.url.includes('reset')) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        else if (req.url.includes('close')) res.stream.close(req.url.includes('cancel') ? http2.constants.NGHTTP2_CANCEL : undefined);
        else if (!res.writableEnded && !res.stream.destroyed) res.end(chatEvent('m', ' world') + chatEvent('m', undefined, 'stop') + DONE);
      }, 30);
    };
    setTimeout(() => observe(req, res, handle), lateMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  session.on('error', () => undefined);
  return {
    registry,
    session,
    close: () =>
      new Promise<void>((resolve) => {
        session.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * One POST on the shared session; resolves with the body once the stream closes. `cancel`: the client resets the
 * stream after the first data, or after `ms` milliseconds (reading nothing).
 */
function post(
  session: http2.ClientHttp2Session,
  path: string,
  cancel: false | 'on data' | { ms: number } = false,
  code: number = http2.constants.NGHTTP2_CANCEL,
): Promise<string> {
  return new Promise((resolve) => {
    const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    let body = '';
    stream.setEncoding('utf8');
    if (typeof cancel === 'object') {
      stream.pause();
      setTimeout(() => stream.close(code), cancel.ms);
    }
    stream.on('data', (text: string) => {
      body += text;
      if (cancel === 'on data') stream.close(code);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => resolve(body));
    stream.end(JSON.stringify({ model: 'm', stream: true, messages: [] }));
  });
}

describe('HTTP/2', () => {
  it('counts every request on one connection, one after another and side by side', async () => {
    served = await serve();
    for (let i = 0; i < 3; i++) expect(await post(served.session, '/v1/chat/completions')).toContain('[DONE]');
    await Promise.all([0, 1, 2].map(() => post(served!.session, '/v1/chat/completions')));
    await settled(served.registry);
    expect(await total(served.registry, 'requests_total', { model: 'm', status: 'success' })).toBe(6);
    expect(await total(served.registry, 'output_tokens_total', { model: 'm' })).toBe(6 * 2);
    expect(await total(served.registry, 'disconnected_clients')).toBe(0);
    expect(await everyGaugeSeriesZero(served.registry)).toBe(true);
  });

  it('a stream the client resets is cancelled; one the server destroys or resets is internal; the others on the connection are unharmed', async () => {
    served = await serve();
    const bodies = await Promise.all([
      post(served.session, '/v1/chat/completions', 'on data'),
      post(served.session, '/v1/chat/completions?destroy'),
      post(served.session, '/v1/chat/completions?reset'),
      post(served.session, '/v1/chat/completions'),
    ]);
    expect(bodies[3]).toContain('[DONE]');
    await settled(served.registry);
    expect(await total(served.registry, 'requests_total', { error_type: 'cancelled' })).toBe(1);
    expect(await total(served.registry, 'requests_total', { error_type: 'internal' })).toBe(2);
    expect(await total(served.registry, 'requests_total', { status: 'success' })).toBe(1);
    expect(await total(served.registry, 'disconnected_clients')).toBe(1);
    expect(await everyGaugeSeriesZero(served.registry)).toBe(true);
  });

  it('a stream reset after the answer ended but before it was delivered is cancelled, not a success', async () => {
    served = await serve();
    await post(served.session, '/v1/chat/completions?big', { ms: 100 });
    await settled(served.registry);
    expect(await total(served.registry, 'requests_total', { error_type: 'cancelled' })).toBe(1);
    expect(await total(served.registry, 'disconnected_clients')).toBe(1);
    expect(await everyGaugeSeriesZero(served.registry)).toBe(true);
  });

  it('a stream the client reset before a late-mounted middleware saw it ends once, as cancelled', async () => {
    served = await serve(100);
    await post(served.session, '/v1/chat/completions', { ms: 20 });
    // The middleware sees the request 100 ms in, long after the reset.
    await eventually(async () => (await total(served!.registry, 'requests_total')) === 1);
    await settled(served.registry);
    expect(await total(served.registry, 'requests_total', { error_type: 'cancelled' })).toBe(1);
    expect(await everyGaugeSeriesZero(served.registry)).toBe(true);
  });

  it("a client's reset with any code is cancelled (undici's and browsers' aborts send INTERNAL_ERROR; Node's close() NO_ERROR)", async () => {
    served = await serve();
    const { NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;
    await Promise.all([NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM].map((code) => post(served!.session, '/v1/chat/completions', 'on data', code)));
    await settled(served.registry);
    expect(await total(served.registry, 'requests_total', { error_type: 'cancelled' })).toBe(3);
    expect(await total(served.registry, 'disconnected_clients')).toBe(3);
    expect(await everyGaugeSeriesZero(served.registry)).toBe(true);
  });

  it("the server's own stream.close(), with no code or CANCEL, is the server breaking the response off", async () => {
    served = await serve();
    await Promise.all([post(served.session, '/v1/chat/completions?close'), post(served.session, '/v1/chat/completions?close&cancel')]);
    await settled(served.registry);
    expect(await total(served.registry, 'requests_total', { error_type: 'internal' })).toBe(2);
    expect(await total(served.registry, 'disconnected_clients')).toBe(0);
    expect(await everyGaugeSeriesZero(served.registry)).toBe(true);
  });

  it('ends every request of 200 side by side that clients reset with NO_ERROR while the server writes, or after its end, whose body nobody read', async () => {
    const registry = new Registry();
    const observe = dynamoMetrics({ registry, models: ['m'] }) as unknown as (req: unknown, res: unknown, next: () => void) => void;
    const server = http2.createServer((req, res) =>
      observe(req, res, () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let written = 0;
        const timer = setInterval(() => {
          if (written++ < 6) res.write(chatEvent('m', 'token'));
          else {
            clearInterval(timer);
            res.end(chatEvent('m', undefined, 'stop') + DONE);
          }
        }, 2);
      }),
    );
    // Node keeps a server session with such a stream open for good: closing the server means destroying them.
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (opened) => sessions.add(opened));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    session.on('error', () => undefined);
    const close = (): Promise<void> =>
      new Promise<void>((resolve) => {
        session.destroy();
        for (const opened of sessions) opened.destroy();
        server.close(() => resolve());
      });
    served = { registry, session, close };
    await Promise.all(
      Array.from({ length: 200 }, (_, k) =>
        new Promise<void>((resolve) => {
          const stream = session.request({ ':method': 'POST', ':path': '/v1/chat/completions' });
          let received = 0;
          // Each leaves after a different number of bytes: mid-stream, or once the server has ended.
          stream.on('data', (part: Buffer) => {
            received += part.length;
            if (received > (k * 37) % 900 && !stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
          });
          stream.on('error', () => undefined);
          stream.on('close', () => resolve());
          stream.end(JSON.stringify({ model: 'm', stream: true }));
        }),
      ),
    );
    // Node reports some of these resets to nobody: the watch finds them within a second or two.
    await eventually(async () => (await total(registry, 'requests_total')) === 200, 5_000);
    expect(await everyGaugeSeriesZero(registry)).toBe(true);
    expect(await total(registry, 'requests_started_total')).toBe(200);
  });
});
