/**
 * The decoded copy of a compressed body: real zlib streams, every encoding we read, cut anywhere. The copy is the
 * original text, the body completes once after it, a corrupt body is reported once, one cut short (the client
 * left) ends quietly, and a sink that throws is reported, never thrown.
 */
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { BodyDecompressor } from '../../lib/http/decompress';
import type { DecodedBodySink } from '../../lib/http/decompress';
import { seededRandom } from '../support/prng';
import { cutAtRandom } from '../support/streams';

class RecordingBodySink implements DecodedBodySink {
  readonly events: string[] = [];
  readonly decoded: Buffer[] = [];
  readonly errors: unknown[] = [];
  throwOnRead = false;

  readDecoded(chunk: Buffer): void {
    if (this.throwOnRead) throw new Error('sink bug');
    this.decoded.push(chunk);
  }
  bodyComplete(): void {
    this.events.push('complete');
  }
  unreadable(detail: string): void {
    this.events.push(`unreadable: ${detail}`);
  }
  onListenerError(error: unknown): void {
    this.errors.push(error);
  }
  text(): string {
    return Buffer.concat(this.decoded).toString('utf8');
  }
}

/** Ends the body and resolves once the decompressor has finished with it. */
function endAndWait(decompressor: BodyDecompressor, sink: RecordingBodySink): Promise<void> {
  decompressor.end();
  return new Promise<void>((resolve) => {
    if (!decompressor.finishThen(() => resolve())) resolve();
  }).then(() => {
    sink.events.push('after');
  });
}

const TEXT = `${'data: {"choices":[{"delta":{"content":"Hé wörld 🌍"}}]}\n\n'.repeat(200)}data: [DONE]\n\n`;
const ENCODINGS: [string, string, (input: Buffer) => Buffer][] = [
  ['gzip', 'gzip', gzipSync],
  ['x-gzip', 'x-gzip', gzipSync],
  ['deflate (zlib-wrapped, as meant)', 'deflate', deflateSync],
  ['deflate (raw, as often sent)', 'deflate', deflateRawSync],
  ['br', 'br', brotliCompressSync],
  ['GZIP (codings are case-insensitive)', 'GZIP', gzipSync],
  // A list names the codings in the order they were applied: undone from the last.
  ['gzip, br', 'gzip, br', (input) => brotliCompressSync(gzipSync(input))],
  ['br, gzip', 'br,gzip', (input) => gzipSync(brotliCompressSync(input))],
  ['deflate (raw), gzip', 'deflate, gzip', (input) => gzipSync(deflateRawSync(input))],
  ['gzip, identity', 'gzip, identity', gzipSync],
  ['identity, gzip', 'identity, gzip', gzipSync],
];

describe('BodyDecompressor', () => {
  it.each(ENCODINGS)(
    'gives back the original text of a %s body however it is cut, then completes once',
    async (_name, encoding, compress) => {
      const compressed = compress(Buffer.from(TEXT));
      const random = seededRandom(encoding.length + compressed.length);
      for (let round = 0; round < 5; round++) {
        const sink = new RecordingBodySink();
        const decompressor = BodyDecompressor.for(encoding, sink) as BodyDecompressor;
        expect(decompressor).toBeDefined();
        for (const piece of cutAtRandom(compressed, 1 + round * 7, random)) decompressor.write(piece, undefined);
        await endAndWait(decompressor, sink);
        expect(sink.text()).toBe(TEXT);
        expect(sink.events).toEqual(['complete', 'after']);
        expect(sink.errors).toEqual([]);
      }
    },
  );

  it('has no decompressor for an encoding it does not read, nor for none at all', () => {
    for (const encoding of ['zstd', 'compress', 'toString', '__proto__', 'gzip, zstd', 'zstd, br']) {
      expect(BodyDecompressor.for(encoding, new RecordingBodySink())).toBeUndefined();
    }
    for (const encoding of ['identity', '', ' , ', 'identity, identity']) expect(BodyDecompressor.for(encoding, new RecordingBodySink())).toBeNull();
  });

  it('decodes a copy: the app may reuse its buffer once the write returns', async () => {
    const compressed = gzipSync(Buffer.from(TEXT));
    const sink = new RecordingBodySink();
    const decompressor = BodyDecompressor.for('gzip', sink) as BodyDecompressor;
    const reused = Buffer.alloc(64);
    for (let offset = 0; offset < compressed.length; offset += reused.length) {
      const length = compressed.copy(reused, 0, offset, offset + reused.length);
      decompressor.write(reused.subarray(0, length), undefined);
      reused.fill(0xff);
    }
    await endAndWait(decompressor, sink);
    expect(sink.text()).toBe(TEXT);
  });

  it('reads compressed bytes written as strings in their encoding', async () => {
    const compressed = gzipSync(Buffer.from(TEXT));
    const sink = new RecordingBodySink();
    const decompressor = BodyDecompressor.for('gzip', sink) as BodyDecompressor;
    const half = Math.floor(compressed.length / 2);
    decompressor.write(compressed.subarray(0, half).toString('base64'), 'base64');
    decompressor.write(compressed.subarray(half).toString('latin1'), 'latin1');
    await endAndWait(decompressor, sink);
    expect(sink.text()).toBe(TEXT);
  });

  it('reports a corrupt body once, then completes it', async () => {
    const sink = new RecordingBodySink();
    const decompressor = BodyDecompressor.for('gzip', sink) as BodyDecompressor;
    decompressor.write(Buffer.from('this was never gzip'), undefined);
    await endAndWait(decompressor, sink);
    expect(sink.events).toHaveLength(3);
    expect(sink.events[0]).toMatch(/^unreadable: Content-Encoding: gzip: /);
    expect(sink.events.slice(1)).toEqual(['complete', 'after']);
  });

  it('ends a body cut short quietly: what arrived is decoded, nothing is reported, the body is not complete', async () => {
    const compressed = gzipSync(Buffer.from(TEXT));
    const sink = new RecordingBodySink();
    const decompressor = BodyDecompressor.for('gzip', sink) as BodyDecompressor;
    decompressor.write(compressed.subarray(0, Math.floor(compressed.length / 2)), undefined);
    // The client left: the response is done without res.end().
    await new Promise<void>((resolve) => {
      expect(decompressor.finishThen(resolve)).toBe(true);
    });
    expect(sink.events).toEqual([]);
    expect(TEXT.startsWith(sink.text())).toBe(true);
  });

  it('completes an empty body at once', () => {
    const sink = new RecordingBodySink();
    const decompressor = BodyDecompressor.for('br', sink) as BodyDecompressor;
    decompressor.write(Buffer.alloc(0), undefined);
    decompressor.end();
    expect(sink.events).toEqual(['complete']);
    expect(decompressor.finishThen(() => undefined)).toBe(false);
  });

  it('reads nothing written after the body ended', async () => {
    const compressed = gzipSync(Buffer.from('data: x\n\n'));
    const sink = new RecordingBodySink();
    const decompressor = BodyDecompressor.for('gzip', sink) as BodyDecompressor;
    decompressor.write(compressed, undefined);
    decompressor.end();
    decompressor.write(gzipSync(Buffer.from('data: late\n\n')), undefined);
    await endAndWait(decompressor, sink);
    expect(sink.text()).toBe('data: x\n\n');
  });

  it('reports a sink that throws instead of throwing, and still completes', async () => {
    const sink = new RecordingBodySink();
    sink.throwOnRead = true;
    const decompressor = BodyDecompressor.for('deflate', sink) as BodyDecompressor;
    decompressor.write(deflateSync(Buffer.from(TEXT)), undefined);
    await endAndWait(decompressor, sink);
    expect(sink.errors.length).toBeGreaterThan(0);
    expect(sink.errors.every((error) => error instanceof Error && error.message === 'sink bug')).toBe(true);
    expect(sink.events).toEqual(['complete', 'after']);
  });

  it('gives up a compression bomb once its copy passes 128 MiB at over 100 times the bytes written, then completes it', async () => {
    const bomb = gzipSync(Buffer.alloc(160 * 1024 * 1024, 'a'));
    const sink = new RecordingBodySink();
    const decompressor = BodyDecompressor.for('gzip', sink) as BodyDecompressor;
    decompressor.write(bomb, undefined);
    await endAndWait(decompressor, sink);
    const read = sink.decoded.reduce((sum, chunk) => sum + chunk.length, 0);
    expect(read).toBeGreaterThan(127 * 1024 * 1024);
    expect(read).toBeLessThanOrEqual(129 * 1024 * 1024);
    expect(sink.events).toEqual(['unreadable: Content-Encoding: gzip: decodes to more than 100 times its size', 'complete', 'after']);
  });
});
