/**
 * HTTP plumbing of the hardening suites: ways of writing a body to a ServerResponse (cut anywhere, in any
 * encoding, with or without callbacks), a raw client that keeps every byte of the exchange, and registry snapshots.
 */
import http from 'node:http';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import fc from 'fast-check';
import type { Registry } from 'prom-client';
import { cutAt } from './prng';

export type PieceKind = 'buffer' | 'uint8array' | 'utf8' | 'utf8-no-encoding' | 'latin1' | 'hex' | 'base64';

export interface WritePlan {
  /**
   * Where pieces are cut: at random bytes, at event boundaries (one event per write, as engines write, which is
   * where the chunk-shape shortcut applies), or both.
   */
  align: 'bytes' | 'events' | 'events+bytes';
  /** Cut offsets, as fractions of the body length (so a plan fits any body). */
  cuts: number[];
  /** Extra cuts right after each `\r` and inside multi-byte UTF-8 characters, chosen by index. */
  awkwardCuts: number[];
  kinds: PieceKind[];
  /** Which writes get a callback (by piece index, cycled). */
  callbacks: boolean[];
  endWith: 'end()' | 'end(cb)' | 'end(last)' | 'end(last, cb)' | 'end(last, enc, cb)' | 'end(null, cb)';
  headers: 'setHeader' | 'writeHead' | 'writeHead-raw' | 'writeHead-message' | 'flushHeaders';
  /** An empty write every this many pieces (0: none). */
  emptyWriteEvery: number;
  /** Yield to the event loop every this many writes (0: never), so pieces leave in separate packets. */
  yieldEvery: number;
  /** The client speaks HTTP/1.0: no chunked encoding, the body ends when the connection closes. */
  http10?: boolean;
  /** Also cut this many bytes before every line end (0: no), where a line's length is about to be known. */
  beforeLineEnds?: number;
}

export const writePlanArbitrary: fc.Arbitrary<WritePlan> = fc.record({
  align: fc.constantFrom<WritePlan['align']>('bytes', 'events', 'events+bytes'),
  // size 'max': fast-check's default size would keep these arrays to a handful of elements.
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40, size: 'max' }),
  awkwardCuts: fc.array(fc.nat(1000), { maxLength: 8 }),
  kinds: fc.array(fc.constantFrom<PieceKind>('buffer', 'uint8array', 'utf8', 'utf8-no-encoding', 'latin1', 'hex', 'base64'), {
    minLength: 1,
    maxLength: 6,
  }),
  callbacks: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
  endWith: fc.constantFrom<WritePlan['endWith']>('end()', 'end(cb)', 'end(last)', 'end(last, cb)', 'end(last, enc, cb)', 'end(null, cb)'),
  headers: fc.constantFrom<WritePlan['headers']>('setHeader', 'writeHead', 'writeHead-raw', 'writeHead-message', 'flushHeaders'),
  emptyWriteEvery: fc.constantFrom(0, 0, 3),
  yieldEvery: fc.constantFrom(0, 0, 0, 4),
  http10: fc.constantFrom(false, false, false, true),
  beforeLineEnds: fc.constantFrom(0, 0, 0, 1, 3, 6),
});

/** Byte offsets where a cut is awkward: right after a CR, and inside a multi-byte UTF-8 character. */
export function awkwardOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let i = 1; i < bytes.length; i++) {
    const previous = bytes[i - 1] as number;
    const current = bytes[i] as number;
    if (previous === 0x0d || (current & 0xc0) === 0x80) offsets.push(i);
  }
  return offsets;
}

export function cutBody(bytes: Buffer, plan: WritePlan, eventOffsets: readonly number[] = []): Buffer[] {
  const offsets = new Set<number>();
  if (plan.align !== 'bytes') for (const offset of eventOffsets) offsets.add(offset);
  if (plan.beforeLineEnds !== undefined && plan.beforeLineEnds > 0) {
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a || bytes[i] === 0x0d) offsets.add(i - plan.beforeLineEnds);
  }
  if (bytes.length > 1 && plan.align !== 'events') {
    for (const fraction of plan.cuts) offsets.add(1 + Math.floor(fraction * (bytes.length - 2)));
    const awkward = awkwardOffsets(bytes);
    if (awkward.length > 0) for (const pick of plan.awkwardCuts) offsets.add(awkward[pick % awkward.length] as number);
  }
  return cutAt(bytes, offsets).filter((p) => p.length > 0);
}

function isStandaloneUtf8(piece: Buffer): boolean {
  return Buffer.from(piece.toString('utf8'), 'utf8').equals(piece);
}

type Encoded = { chunk: string | Buffer | Uint8Array; encoding: BufferEncoding | undefined };

function encodePiece(piece: Buffer, kind: PieceKind): Encoded {
  switch (kind) {
    case 'buffer':
      return { chunk: piece, encoding: undefined };
    case 'uint8array':
      return { chunk: new Uint8Array(piece), encoding: undefined };
    case 'utf8':
      return isStandaloneUtf8(piece) ? { chunk: piece.toString('utf8'), encoding: 'utf8' } : { chunk: piece, encoding: undefined };
    case 'utf8-no-encoding':
      return isStandaloneUtf8(piece) ? { chunk: piece.toString('utf8'), encoding: undefined } : { chunk: piece, encoding: undefined };
    case 'latin1':
      return { chunk: piece.toString('latin1'), encoding: 'latin1' };
    case 'hex':
      return { chunk: piece.toString('hex'), encoding: 'hex' };
    case 'base64':
      return { chunk: piece.toString('base64'), encoding: 'base64' };
  }
}

export interface WriteRecord {
  /** Calls to write and end. */
  writes: number;
  /** What each write/end call returned to the handler, in order. */
  returns: unknown[];
  /** What the original write/end returned for each call (recorded beneath the middleware), when probed. */
  inner?: unknown[];
  /** Callbacks handed to write/end. */
  callbacksGiven: number;
  /** Of those, called so far. */
  callbacksCalled: number;
  /** Errors passed to callbacks. */
  callbackErrors: unknown[];
  /** An exception thrown by write/end/writeHead. */
  thrown: unknown[];
  done: Promise<void>;
}

/** Writes `bytes` to `res` following `plan`; never throws (what is thrown is recorded). */
/** Byte offsets of the event boundaries of a body given as its events. */
export function eventOffsets(events: readonly string[]): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (const event of events) {
    at += Buffer.byteLength(event, 'utf8');
    offsets.push(at);
  }
  return offsets;
}

export function writeByPlan(
  res: ServerResponse,
  status: number,
  contentType: string,
  bytes: Buffer,
  plan: WritePlan,
  boundaries: readonly number[] = [],
): WriteRecord {
  const record: WriteRecord = { writes: 0, returns: [], callbacksGiven: 0, callbacksCalled: 0, callbackErrors: [], thrown: [], done: Promise.resolve() };
  // What the handler got back from each write/end (`res` itself stands for end's `this`).
  const seen = (value: unknown): void => void record.returns.push(value === res ? 'res' : value);
  const callback = (): ((error?: Error | null) => void) => {
    record.callbacksGiven++;
    return (error) => {
      record.callbacksCalled++;
      if (error) record.callbackErrors.push(error);
    };
  };
  const run = async (): Promise<void> => {
    try {
      if (plan.headers === 'setHeader' || plan.headers === 'flushHeaders') {
        res.statusCode = status;
        res.setHeader('Content-Type', contentType);
        res.setHeader('Cache-Control', 'no-cache');
        // SSE servers send the head before the first token.
        if (plan.headers === 'flushHeaders') res.flushHeaders();
      } else if (plan.headers === 'writeHead') {
        res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-cache' });
      } else if (plan.headers === 'writeHead-message') {
        res.writeHead(status, 'Fine', { 'content-type': contentType, 'Cache-Control': 'no-cache' });
      } else {
        res.writeHead(status, ['Content-Type', contentType, 'Cache-Control', 'no-cache']);
      }
      const pieces = cutBody(bytes, plan, boundaries);
      const last = plan.endWith.startsWith('end(last') ? pieces.pop() : undefined;
      for (let i = 0; i < pieces.length; i++) {
        if (plan.emptyWriteEvery > 0 && i % plan.emptyWriteEvery === 1) seen(res.write(''));
        const { chunk, encoding } = encodePiece(pieces[i] as Buffer, plan.kinds[i % plan.kinds.length] as PieceKind);
        const withCallback = plan.callbacks[i % plan.callbacks.length] === true;
        record.writes++;
        if (withCallback) {
          if (encoding === undefined) seen(res.write(chunk, callback()));
          else seen(res.write(chunk, encoding, callback()));
        } else if (encoding === undefined) {
          seen(res.write(chunk));
        } else {
          seen(res.write(chunk, encoding));
        }
        if (plan.yieldEvery > 0 && i % plan.yieldEvery === plan.yieldEvery - 1) await new Promise((resolve) => setImmediate(resolve));
      }
      record.writes++;
      switch (plan.endWith) {
        case 'end()':
          seen(res.end());
          break;
        case 'end(cb)':
          seen(res.end(callback()));
          break;
        case 'end(null, cb)':
          seen(res.end(null, callback()));
          break;
        case 'end(last)':
          if (last === undefined) seen(res.end());
          else {
            // end(chunk) without an encoding: only bytes or UTF-8 text can be passed that way.
            const encoded = encodePiece(last, plan.kinds[0] as PieceKind);
            seen(res.end(encoded.encoding === undefined || encoded.encoding === 'utf8' ? encoded.chunk : last));
          }
          break;
        case 'end(last, cb)':
          if (last === undefined) {
            seen(res.end(callback()));
          } else {
            const encoded = encodePiece(last, plan.kinds[0] as PieceKind);
            seen(res.end(encoded.encoding === undefined || encoded.encoding === 'utf8' ? encoded.chunk : last, callback()));
          }
          break;
        case 'end(last, enc, cb)': {
          if (last === undefined) {
            seen(res.end(callback()));
          } else {
            const { chunk, encoding } = encodePiece(last, plan.kinds[pieces.length % plan.kinds.length] as PieceKind);
            seen(res.end(chunk, encoding ?? 'utf8', callback()));
          }
          break;
        }
      }
    } catch (error) {
      record.thrown.push(error);
    }
  };
  record.done = run();
  return record;
}

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

export type Snapshot = Record<string, number>;

/**
 * Every sample of every metric of a registry, keyed by name and sorted labels, except those that measure time
 * (`*_seconds_sum` and `*_seconds_bucket`), which no two runs share.
 */
export async function snapshot(registry: Registry): Promise<Snapshot> {
  const result: Snapshot = {};
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const sample of metric.values) {
      const name = (sample as { metricName?: string }).metricName ?? metric.name;
      if (/_seconds_(sum|bucket)$/.test(name)) continue;
      const labels = Object.entries(sample.labels)
        .filter(([key]) => key !== 'le' || !name.endsWith('_seconds_bucket'))
        .map(([key, value]) => `${key}=${JSON.stringify(String(value))}`)
        .sort()
        .join(',');
      result[`${name}{${labels}}`] = sample.value;
    }
  }
  return result;
}

/** Sum of the samples in a snapshot for a metric whose labels include `labels`. */
export function fromSnapshot(shot: Snapshot, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, value] of Object.entries(shot)) {
    const brace = key.indexOf('{');
    if (key.slice(0, brace) !== name) continue;
    const inside = key.slice(brace + 1, -1);
    if (Object.entries(labels).every(([k, v]) => inside.split(',').includes(`${k}=${JSON.stringify(v)}`))) total += value;
  }
  return total;
}

/**
 * Gauge series that are not 0: every label set of inflight, active and queued requests must be back to 0 (a request
 * moved from `unknown_model` to its model must leave no +1/−1 pair behind that only sums to 0).
 */
export function nonZeroGauges(shot: Snapshot, prefix = 'dynamo_frontend'): string[] {
  const gauges = ['inflight_requests', 'active_requests', 'queued_requests'].map((g) => `${prefix}_${g}{`);
  return Object.entries(shot)
    .filter(([key, value]) => gauges.some((g) => key.startsWith(g)) && value !== 0)
    .map(([key, value]) => `${key} = ${value}`);
}

/** A keep-alive-free agent for tests that open many connections. */
export const noKeepAlive = new http.Agent({ keepAlive: false });
