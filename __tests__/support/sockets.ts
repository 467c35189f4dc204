/**
 * Raw HTTP/1.1 over `net` sockets, for what `node:http` clients hide: every byte of an exchange, pipelined requests
 * on one connection, and a client that holds its socket open or drops it at a chosen moment.
 */
import net from 'node:net';
import { eventually } from './http';

/**
 * One POST over a fresh socket with `Connection: close`; resolves with every byte the server sent, the `Date`
 * header removed so that two exchanges compare byte for byte.
 */
export function rawPost(port: number, path: string, body: string, timeoutMs = 10_000, version = '1.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(
        `POST ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response from ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    const parts: Buffer[] = [];
    socket.on('data', (part: Buffer) => parts.push(part));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(stripDate(Buffer.concat(parts)));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

export function stripDate(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r\nDate: [^\r]*/i, ''), 'latin1');
}

/** The body of a raw HTTP/1.1 response (chunked or not). */
export function bodyOf(raw: Buffer): Buffer {
  const headerEnd = raw.indexOf('\r\n\r\n');
  if (headerEnd === -1) throw new Error('no header end in response');
  const head = raw.subarray(0, headerEnd).toString('latin1');
  let rest = raw.subarray(headerEnd + 4);
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) return rest;
  const parts: Buffer[] = [];
  for (let guard = 0; guard < 1_000_000; guard++) {
    const lineEnd = rest.indexOf('\r\n');
    if (lineEnd === -1) throw new Error('truncated chunked body');
    const size = parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) throw new Error('bad chunk size');
    if (size === 0) return Buffer.concat(parts);
    parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
    rest = rest.subarray(lineEnd + 2 + size + 2);
  }
  throw new Error('too many chunks');
}

/**
 * Sends requests pipelined on one keep-alive connection (the server answers them in order) and resolves with the
 * number of `200` responses once the server closes after the last one: cheap enough for 10,000 requests.
 */
export function pipelined(port: number, requests: { path: string; body: unknown; headers: Record<string, string> }[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const text = requests
      .map(({ path, body, headers }, i) => {
        const payload = JSON.stringify(body);
        const extra = Object.entries(headers)
          .map(([key, value]) => `${key}: ${value}\r\n`)
          .join('');
        const connection = i === requests.length - 1 ? 'close' : 'keep-alive';
        return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: ${connection}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n${extra}\r\n${payload}`;
      })
      .join('');
    // Written, not ended: a client's half-close makes Node's server abort the requests still queued behind others,
    // so the server closes the connection itself after the last request (`Connection: close`).
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('pipelined requests not answered within 60 s'));
    }, 60_000);
    const parts: Buffer[] = [];
    socket.on('data', (part: Buffer) => parts.push(part));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts).toString('latin1').split('HTTP/1.1 200 OK\r\n').length - 1);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** A raw HTTP/1.1 request with a JSON body, as bytes for a `net` socket. */
export function rawRequest(path: string, body: unknown, method = 'POST', extraHeaders = ''): string {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return (
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(payload)}\r\n${extraHeaders}\r\n${payload}`
  );
}

/** A raw socket that collects what the server sends; resolves once connected. */
export async function rawClient(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  socket.on('data', (part: Buffer) => parts.push(part));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, received: () => Buffer.concat(parts).toString('latin1'), closed };
}

/** Resolves when `text()` contains `needle`. */
export function until(text: () => string, needle: string, timeoutMs = 5_000): Promise<void> {
  return eventually(() => text().includes(needle), timeoutMs);
}
