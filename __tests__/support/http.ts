/**
 * A test's HTTP side over real sockets on 127.0.0.1: a server on a free port, requests from a fresh connection each,
 * `/metrics` scraped as text, and polling for what the server reports on its next ticks.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RunningServer {
  server: http.Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 on a free port; `close()` also ends open (keep-alive or hanging) connections. */
export async function listen(handler: http.RequestListener, options: http.ServerOptions = {}): Promise<RunningServer> {
  const server = http.createServer(options, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The servers a test file starts, each closed after its test (the last started first: a gateway before its upstream). */
export function closedAfterEach(): RunningServer[] {
  const servers: RunningServer[] = [];
  afterEach(async () => {
    while (servers.length > 0) await servers.pop()?.close();
  });
  return servers;
}

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One request with a fresh connection; resolves with the whole response body as bytes. */
export function request(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  agent?: http.Agent,
  headers: http.OutgoingHttpHeaders = {},
): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: agent ?? false,
        headers: payload ? { 'content-type': 'application/json', ...headers, 'content-length': payload.length } : headers,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export const postJson = (port: number, path: string, body: unknown, agent?: http.Agent): Promise<ClientResponse> =>
  request(port, 'POST', path, body, agent);

/** The text `/metrics` (or `path`) serves. */
export async function scrape(port: number, path = '/metrics'): Promise<string> {
  return (await request(port, 'GET', path)).body.toString('utf8');
}

/** A response being received: lets a test wait for bytes to arrive, then read the rest or abort. */
export interface OpenResponse {
  status: number;
  received(): Buffer;
  /** Resolves once the body received so far contains `text`. */
  waitFor(text: string): Promise<void>;
  /** Resolves with the whole body when the response ends. */
  done: Promise<Buffer>;
  abort(): void;
}

export function openStream(port: number, path: string, body: unknown): Promise<OpenResponse> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        const parts: Buffer[] = [];
        const waiters: { text: string; resolve: () => void }[] = [];
        const check = (): void => {
          const text = Buffer.concat(parts).toString('utf8');
          for (let i = waiters.length - 1; i >= 0; i--) {
            const waiter = waiters[i] as { text: string; resolve: () => void };
            if (text.includes(waiter.text)) {
              waiters.splice(i, 1);
              waiter.resolve();
            }
          }
        };
        // Resolves with what arrived, also when the connection broke (an aborted response is a result here).
        const done = new Promise<Buffer>((resolveDone) => {
          res.on('end', () => resolveDone(Buffer.concat(parts)));
          res.on('error', () => resolveDone(Buffer.concat(parts)));
          res.on('close', () => resolveDone(Buffer.concat(parts)));
        });
        res.on('data', (part: Buffer) => {
          parts.push(part);
          check();
        });
        resolve({
          status: res.statusCode ?? 0,
          received: () => Buffer.concat(parts),
          waitFor: (text) =>
            new Promise<void>((resolveWait) => {
              waiters.push({ text, resolve: resolveWait });
              check();
            }),
          done,
          abort: () => req.destroy(),
        });
      },
    );
    req.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(error);
    });
    req.end(payload);
  });
}

/**
 * Polls until `condition` holds (the end of a request is reported on the server's next ticks): until it returns
 * true, or, for a function of assertions, returns without throwing. On timeout, the last assertion's error.
 */
export async function eventually(condition: () => Promise<boolean | void> | boolean | void, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      if ((await condition()) !== false) return;
    } catch (error) {
      failure = error;
    }
    if (Date.now() > deadline) throw failure ?? new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A promise a handler can wait on, released by the test. */
export function signal(): { wait: Promise<void>; release: () => void } {
  let release = (): void => undefined;
  const wait = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { wait, release };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export type AbortPoint = { kind: 'after-send' } | { kind: 'on-headers' } | { kind: 'after-bytes'; bytes: number };

/** POSTs a stream request and aborts it at `point`; resolves with what was received once the socket is gone. */
export function abortedStream(port: number, path: string, body: unknown, point: AbortPoint): Promise<Buffer> {
  return new Promise((resolve) => {
    const payload = Buffer.from(JSON.stringify(body));
    const parts: Buffer[] = [];
    let received = 0;
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': payload.length } },
      (res) => {
        if (point.kind === 'on-headers') {
          req.destroy();
          return;
        }
        res.on('data', (part: Buffer) => {
          parts.push(part);
          received += part.length;
          if (point.kind === 'after-bytes' && received >= point.bytes) req.destroy();
        });
        res.on('error', () => undefined);
      },
    );
    req.on('error', () => undefined);
    req.on('close', () => resolve(Buffer.concat(parts)));
    req.end(payload);
    if (point.kind === 'after-send') setImmediate(() => req.destroy());
  });
}
