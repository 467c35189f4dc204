/**
 * Ways of writing a body to a ServerResponse, as property tests draw them: cut anywhere, in any encoding, with or
 * without callbacks, headers set in any of Node's ways.
 */
import type { ServerResponse } from 'node:http';
import fc from 'fast-check';
import { awkwardOffsets, cutAt } from './streams';

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
