import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';

export interface RunningServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 on a free port; `close()` also ends open (keep-alive or hanging) connections. */
export async function listen(handler: http.RequestListener): Promise<RunningServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
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
        headers: payload ? { ...headers, 'content-type': 'application/json', 'content-length': payload.length } : headers,
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
 * Everything the server sent on the wire for one request (status line, headers, chunked framing, body), with the
 * `Date` header removed so two runs compare byte for byte.
 */
export function rawExchange(port: number, path: string, body: unknown): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
      );
    });
    const parts: Buffer[] = [];
    socket.on('data', (part: Buffer) => parts.push(part));
    socket.on('end', () => {
      const raw = Buffer.concat(parts).toString('latin1').replace(/\r\nDate: [^\r]*/i, '');
      resolve(Buffer.from(raw, 'latin1'));
    });
    socket.on('error', reject);
  });
}

/** Polls `condition` until it holds (the end of a request is reported on the server's next ticks). */
export async function eventually(condition: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error('condition not met in time');
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
