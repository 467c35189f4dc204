import type { Transform } from 'node:stream';
import zlib from 'node:zlib';

/** Where the decoded copy of a compressed body goes. */
export interface DecodedBodySink {
  readDecoded(chunk: Buffer): void;
  /** The whole body was written and its decoded copy read. */
  bodyComplete(): void;
  unreadable(detail: string): void;
  /** Our own bug, called from a decompressor's event: reported, never thrown into the process. */
  onListenerError(error: unknown): void;
}

type Kind = 'gzip' | 'deflate' | 'br';

const KINDS: Readonly<Record<string, Kind>> = { gzip: 'gzip', 'x-gzip': 'gzip', deflate: 'deflate', br: 'br' };

/**
 * A decoded copy is given up once it passes both: a compression bomb (a body that decodes to a thousand times its
 * size) would otherwise keep the request in flight, and the main thread reading it, long after the response ended.
 * A ratio alone cannot tell: a model looping on one token compresses a hundredfold too, and brotli far more. The
 * floor can: 128 MiB of SSE is some 600,000 events, several times the longest answer a model writes.
 */
const BOMB_RATIO = 100;
const BOMB_FLOOR_BYTES = 128 * 1024 * 1024;

/**
 * A decoded copy of a compressed response body, read alongside the bytes the client receives (which are never
 * touched). Node's streaming decompressors work off the main thread, so the copy arrives a moment after each write,
 * and the body ends (and the request with it) once the copy has been read. A list of codings (`gzip, br`: gzip
 * applied first) is undone from its last, each decoder feeding the next.
 */
export class BodyDecompressor {
  /** One decoder per coding, in decoding order, each created at its first input. */
  private readonly stages: (Transform | undefined)[];
  /** `res.end()` was called: the whole body was written. */
  private bodyEnded = false;
  /** The stream was told that no more input comes. */
  private inputEnded = false;
  private finished = false;
  private afterFinish: (() => void) | undefined;
  private encodedBytes = 0;
  private decodedBytes = 0;

  /**
   * A decompressor for a Content-Encoding (a coding, or a list of them; `identity` is no coding), `undefined` for a
   * coding we do not decode, or `null` for none at all.
   */
  static for(encoding: string, sink: DecodedBodySink): BodyDecompressor | undefined | null {
    const codings = encoding.toLowerCase().split(',').map((coding) => coding.trim()).filter((coding) => coding !== '' && coding !== 'identity');
    if (codings.length === 0) return null;
    const kinds = codings.map((coding) => (Object.prototype.hasOwnProperty.call(KINDS, coding) ? KINDS[coding] : undefined));
    return kinds.includes(undefined) ? undefined : new BodyDecompressor((kinds as Kind[]).reverse(), sink);
  }

  private constructor(
    private readonly kinds: readonly Kind[],
    private readonly sink: DecodedBodySink,
  ) {
    this.stages = kinds.map(() => undefined);
  }

  write(chunk: unknown, encoding: unknown): void {
    if (this.finished || this.inputEnded) return;
    let bytes: Buffer;
    if (typeof chunk === 'string') bytes = Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    // A copy: the decompressor reads it later, and the app may reuse its buffer once the write is done.
    else if (chunk instanceof Uint8Array) bytes = Buffer.from(chunk);
    else return;
    if (bytes.length === 0) return;
    this.encodedBytes += bytes.length;
    this.feed(0, bytes);
  }

  /** The body is complete: decode the rest, then the body ends. */
  end(): void {
    this.bodyEnded = true;
    this.endInput();
  }

  /**
   * Runs `callback` once the decoded copy has been read, and says true; false if it already has (call it now).
   * A response that ended early (the client left) decodes what it got, then ends.
   */
  finishThen(callback: () => void): boolean {
    if (this.finished) return false;
    this.afterFinish = callback;
    this.endInput();
    return true;
  }

  private endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.endStage(0);
  }

  /** Bytes for decoding stage `index`; past the last stage, the decoded copy. */
  private feed(index: number, bytes: Buffer): void {
    if (index < this.stages.length) {
      (this.stages[index] ??= this.createStage(index, bytes[0] as number)).write(bytes);
      return;
    }
    this.decodedBytes += bytes.length;
    if (this.decodedBytes > BOMB_FLOOR_BYTES && this.decodedBytes > BOMB_RATIO * this.encodedBytes) {
      this.guard(() => this.sink.unreadable(`Content-Encoding: ${this.codings}: decodes to more than ${BOMB_RATIO} times its size`));
      this.finish();
      return;
    }
    this.guard(() => this.sink.readDecoded(bytes));
  }

  /** No more input for stage `index` (past the last, the copy is complete). */
  private endStage(index: number): void {
    const stage = this.stages[index];
    if (stage === undefined) this.finish();
    else stage.end();
  }

  private createStage(index: number, firstByte: number): Transform {
    const kind = this.kinds[index];
    let stream: Transform;
    if (kind === 'gzip') stream = zlib.createGunzip();
    else if (kind === 'br') stream = zlib.createBrotliDecompress();
    // "deflate" is meant to be zlib-wrapped (a header whose low nibble says deflate), but raw deflate is common.
    else stream = (firstByte & 0x0f) === 8 ? zlib.createInflate() : zlib.createInflateRaw();
    stream.on('data', (decoded: Buffer) => {
      if (!this.finished) this.feed(index + 1, decoded);
    });
    stream.once('end', () => this.endStage(index + 1));
    stream.once('error', (error: Error) => {
      // A body cut short (the client left, the upstream broke) fails to decode at its end: nothing to report then.
      if (this.bodyEnded) this.guard(() => this.sink.unreadable(`Content-Encoding: ${this.codings}: ${error.message}`));
      this.finish();
    });
    return stream;
  }

  /** The codings as the header lists them, for messages. */
  private get codings(): string {
    return [...this.kinds].reverse().join(', ');
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    for (const stage of this.stages) stage?.destroy();
    if (this.bodyEnded) this.guard(() => this.sink.bodyComplete());
    const callback = this.afterFinish;
    this.afterFinish = undefined;
    if (callback !== undefined) this.guard(callback);
  }

  private guard(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.sink.onListenerError(error);
    }
  }
}
