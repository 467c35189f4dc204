import { ChunkShape } from './chunk-shape';
import { ResponseTextDecoder } from './decode';
import type { ResponseListener } from './hook';
import { JsonBodyReader } from './json-body';
import { BodyDecompressor } from './decompress';
import type { DecodedBodySink } from './decompress';
import type { PlainTextDelta, WireFormatReader } from './readers/types';
import type { IncomingMessage } from 'node:http';
import { requestHints } from './request-state';
import type { RequestState, ResponseOutcome } from './request-state';
import { SseParser } from './sse';
import type { SseHandler } from './sse';

/** The same for every response of one middleware. */
export interface ResponseReaderSettings {
  maxEventBytes: number;
  maxBodyBytes: number;
  /** A listener bug: reported, never thrown into the request. */
  internalError: (error: unknown) => void;
  /** The body is in a Content-Encoding we cannot decode: reported once per middleware. */
  compressedBody: (encoding: string) => void;
}

type BodyMode = 'events' | 'json' | 'ignore';

/**
 * Turns the response's bytes into observations: decides at the head how to read the body (an SSE stream event by
 * event, a JSON body at its end, or not at all), decodes the text, splits events, and hands each to the
 * wire-format reader, which reports to the request state.
 */
export class ResponseReader implements ResponseListener, SseHandler, DecodedBodySink {
  private mode: BodyMode = 'ignore';
  private readonly decoder = new ResponseTextDecoder();
  private sse: SseParser | undefined;
  private readonly shape = new ChunkShape();
  /** While a write that started between events is being split: its events, to learn its shape from. */
  private writeEvents = 0;
  private lastPlainData = '';
  private lastPlain: PlainTextDelta | undefined;
  /** The body as it is written, when it is compressed: what we read is its decoded copy. */
  private decompressor: BodyDecompressor | undefined;
  private json: JsonBodyReader | undefined;
  /** The body says it is JSON; an undeclared body that does not parse is simply not JSON, not a parse error. */
  private declaredJson = false;
  /**
   * Between events of a stream whose chunk shape is known, with nothing held in the decoder: a UTF-8 string write
   * can then be matched against the shape as it is, before any other work (see `onBody`).
   */
  private shortcut = false;

  constructor(
    private readonly state: RequestState,
    private readonly reader: WireFormatReader,
    private readonly settings: ResponseReaderSettings,
    private readonly req: IncomingMessage,
  ) {}

  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    const contentType = (header('content-type') ?? '').toLowerCase();
    const isEventStream = contentType.startsWith('text/event-stream');
    if (isEventStream) {
      this.mode = 'events';
      this.sse = new SseParser(this, this.settings.maxEventBytes);
    } else if (statusCode !== 204 && statusCode !== 304 && (contentType.includes('json') || contentType === '')) {
      this.mode = 'json';
      this.declaredJson = contentType !== '';
      this.json = new JsonBodyReader(this.settings.maxBodyBytes);
    }
    // Content-Encoding is trusted, never guessed from the bytes. Set when our wrapper is called, the bytes we get
    // are encoded (an upstream that compressed, compression() mounted after us); compression() mounted before us
    // sets it only beneath our wrapper, after we have read the head, and we get plain text.
    const encoding = (header('content-encoding') ?? '').trim().toLowerCase();
    if (this.mode !== 'ignore' && encoding !== '' && encoding !== 'identity') {
      this.decompressor = BodyDecompressor.for(encoding, this);
      if (this.decompressor === undefined) this.unreadable(`Content-Encoding: ${encoding}`, encoding);
    }
    this.state.responseStarted(isEventStream, requestHints(this.req), statusCode);
  }

  onBody(chunk: unknown, encoding: unknown): void {
    if (this.decompressor !== undefined) {
      this.decompressor.write(chunk, encoding);
      return;
    }
    // Most writes of a stream: one whole chunk shaped like the previous plain text delta, as a UTF-8 string.
    if (this.shortcut && typeof chunk === 'string' && (encoding === undefined || encoding === 'utf8') && this.countShaped(chunk)) return;
    this.readBody(chunk, encoding);
    this.shortcut = this.mode === 'events' && this.shape.known && this.decoder.passesStrings && (this.sse as SseParser).idle;
  }

  /** Decoded bytes of a compressed body. */
  readDecoded(chunk: Buffer): void {
    this.readBody(chunk, undefined);
  }

  private readBody(chunk: unknown, encoding: unknown): void {
    if (this.mode === 'ignore') return;
    if (this.json !== undefined && this.json.invalid) return;
    const text = this.decoder.write(chunk, encoding);
    if (text.length === 0) return;
    if (this.mode === 'events') {
      this.readEvents(text);
    } else {
      (this.json as JsonBodyReader).write(text);
    }
  }

  onBodyEnd(): void {
    this.shortcut = false;
    if (this.decompressor !== undefined) {
      // The rest of the decoded copy arrives asynchronously; the body ends (and so may the request) after it.
      this.decompressor.end();
      return;
    }
    this.bodyComplete();
  }

  /** The whole body has been read (its decoded copy, when compressed). */
  bodyComplete(): void {
    if (this.mode === 'ignore' || (this.mode === 'json' && this.json === undefined)) return;
    const rest = this.decoder.end();
    if (this.mode === 'events') {
      const sse = this.sse as SseParser;
      if (rest.length > 0) sse.feed(rest);
      sse.end();
      return;
    }
    const json = this.json as JsonBodyReader;
    if (rest.length > 0) json.write(rest);
    const body = json.end();
    this.json = undefined;
    if (json.invalid) {
      if (this.declaredJson) this.state.malformed('invalid_json', 'the unary body is not JSON');
      return;
    }
    if (json.empty) return;
    if (json.truncated) {
      this.state.malformed('body_too_large', `a unary body held more than maxBodyBytes (${this.settings.maxBodyBytes}) of text; its text was skipped, its usage read`);
    }
    this.reader.readBody(body, this.state);
  }

  onDone(outcome: ResponseOutcome, statusCode: number): void {
    // A compressed body is read from its decoded copy, which may still be on its way: the request ends after it.
    if (this.decompressor !== undefined && this.decompressor.finishThen(() => this.ended(outcome, statusCode))) return;
    this.ended(outcome, statusCode);
  }

  private ended(outcome: ResponseOutcome, statusCode: number): void {
    this.json = undefined;
    this.state.end(outcome, statusCode);
  }

  onListenerError(error: unknown): void {
    this.shortcut = false;
    this.mode = 'ignore';
    this.state.bodyUnreadable();
    this.settings.internalError(error);
  }

  /** The body cannot be read (an encoding we do not decode, a corrupt compressed stream); the request still counts. */
  unreadable(detail: string, encoding?: string): void {
    this.shortcut = false;
    this.mode = 'ignore';
    this.json = undefined;
    this.state.bodyUnreadable();
    this.state.malformed('compressed_body', detail);
    if (encoding !== undefined) this.settings.compressedBody(encoding);
  }

  // SSE events from the parser.
  onEvent(data: string, eventType: string | undefined): void {
    this.writeEvents++;
    const plain = this.reader.readEvent(data, eventType, this.state);
    this.lastPlain = plain;
    if (plain !== undefined) this.lastPlainData = data;
  }

  onEventTooLarge(eventType: string | undefined): void {
    this.state.malformed('event_too_large', `an SSE event exceeded maxEventBytes (${this.settings.maxEventBytes})`);
    this.reader.readOversizedEvent?.(eventType, this.state);
  }

  /** Events of one write: a write shaped like an earlier plain text delta is counted without being parsed. */
  private readEvents(text: string): void {
    const sse = this.sse as SseParser;
    if (!sse.idle) {
      sse.feed(text);
      return;
    }
    if (this.countShaped(text)) return;
    this.writeEvents = 0;
    this.lastPlain = undefined;
    sse.feed(text);
    if (this.writeEvents === 1 && this.lastPlain !== undefined && sse.idle) {
      this.shape.learn(text, this.lastPlainData, this.lastPlain);
    }
    this.lastPlain = undefined;
    this.lastPlainData = '';
  }

  /**
   * Counts a whole write, between events, that has the learned shape; false if it has not. An oversized write
   * takes the full path, where the event size limit is enforced.
   */
  private countShaped(text: string): boolean {
    if (text.length > this.settings.maxEventBytes) return false;
    const deltaText = this.shape.match(text);
    if (deltaText === undefined) return false;
    this.state.textDelta(deltaText, this.shape.isReasoning);
    return true;
  }
}
