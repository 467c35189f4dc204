import { ChunkShape } from './chunk-shape';
import { ResponseTextDecoder } from './decode';
import type { ResponseListener } from './hook';
import { LineSplitter } from './lines';
import type { PlainTextDelta, WireFormatReader } from './readers/types';
import { responseFormat } from './recognise';
import type { BodyMode, RequestFormat } from './recognise';
import type { IncomingMessage } from 'node:http';
import type { RequestHints, RequestState, ResponseOutcome } from './request-state';
import { SseParser } from './sse';
import type { SseHandler } from './sse';

/** The same for every response of one middleware. */
export interface ResponseReaderSettings {
  maxEventBytes: number;
  maxBodyBytes: number;
  /** A listener bug: reported, never thrown into the request. */
  internalError: (error: unknown) => void;
  /** Our wrapper sees compressed bytes (compression mounted after us): reported once per middleware. */
  compressedBody: (encoding: string) => void;
  /** What the request names (model, stream), read again when the response starts: a body parser may have run since. */
  hints: (req: IncomingMessage, endpoint: string) => RequestHints | undefined;
}

/**
 * Turns the response's bytes into observations: decides at the head how to read the body (an SSE stream event by
 * event, an NDJSON stream line by line, a JSON body at its end, streamed plain text, or not at all) and with which
 * wire-format reader, decodes the text, splits events, and hands each to the reader, which reports to the request
 * state.
 */
export class ResponseReader implements ResponseListener, SseHandler {
  private mode: BodyMode = 'ignore';
  private readonly decoder = new ResponseTextDecoder();
  private sse: SseParser | undefined;
  private lines: LineSplitter | undefined;
  /** Chosen when the head shows what the response is. */
  private reader: WireFormatReader | undefined;
  private readonly shape = new ChunkShape();
  /** While a write that started between events is being split: its events, to learn its shape from. */
  private writeEvents = 0;
  private lastPlainData = '';
  private lastPlain: PlainTextDelta | undefined;
  private encoding: string | undefined;
  private sniffed = false;
  private bodyParts: string[] = [];
  private bodyLength = 0;
  /** The body says it is JSON; an undeclared body that does not parse is simply not JSON, not a parse error. */
  private declaredJson = false;
  /**
   * Between events of a stream whose chunk shape is known, with nothing held in the decoder: a UTF-8 string write
   * can then be matched against the shape as it is, before any other work (see `onBody`).
   */
  private shortcut = false;

  constructor(
    private readonly state: RequestState,
    private readonly request: RequestFormat,
    private readonly settings: ResponseReaderSettings,
    private readonly req: IncomingMessage,
  ) {}

  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    const contentType = (header('content-type') ?? '').toLowerCase();
    const encoding = (header('content-encoding') ?? '').trim().toLowerCase();
    this.encoding = encoding === '' || encoding === 'identity' ? undefined : encoding;
    const format = responseFormat(this.request, statusCode, contentType, header);
    this.reader = format.reader;
    this.mode = format.body;
    if (format.body === 'events') {
      this.sse = new SseParser(this, this.settings.maxEventBytes);
    } else if (format.body === 'lines') {
      this.lines = new LineSplitter(this, this.settings.maxEventBytes);
    } else if (format.body === 'json') {
      this.declaredJson = contentType !== '';
    }
    if (format.endpoint !== this.request.endpoint) this.state.recognisedAs(format.endpoint);
    this.state.responseStarted(format.streaming, this.settings.hints(this.req, format.endpoint));
  }

  onBody(chunk: unknown, encoding: unknown): void {
    // Most writes of a stream: one whole chunk shaped like the previous plain text delta, as a UTF-8 string.
    if (this.shortcut && typeof chunk === 'string' && (encoding === undefined || encoding === 'utf8') && this.countShaped(chunk)) return;
    this.readBody(chunk, encoding);
    this.shortcut = this.mode === 'events' && this.shape.known && this.decoder.passesStrings && (this.sse as SseParser).idle;
  }

  private readBody(chunk: unknown, encoding: unknown): void {
    if (this.mode === 'ignore') return;
    if (!this.sniffed) {
      this.sniffed = true;
      if (this.encoding !== undefined && !looksLikeText(chunk, this.mode)) {
        this.mode = 'ignore';
        this.state.bodyUnreadable();
        this.state.malformed('compressed_body', `Content-Encoding: ${this.encoding}`);
        this.settings.compressedBody(this.encoding);
        return;
      }
    }
    if (this.mode === 'json' && !this.withinBodyLimit(chunk, encoding)) return;
    const text = this.decoder.write(chunk, encoding);
    if (text.length === 0) return;
    if (this.mode === 'events') {
      this.readEvents(text);
    } else if (this.mode === 'lines') {
      (this.lines as LineSplitter).feed(text);
    } else if (this.mode === 'text') {
      this.state.textDelta(text, false);
    } else {
      this.bodyParts.push(text);
    }
  }

  onBodyEnd(): void {
    this.shortcut = false;
    if (this.mode === 'ignore') return;
    const rest = this.decoder.end();
    if (this.mode === 'events') {
      const sse = this.sse as SseParser;
      if (rest.length > 0) sse.feed(rest);
      sse.end();
      return;
    }
    if (this.mode === 'lines') {
      const lines = this.lines as LineSplitter;
      if (rest.length > 0) lines.feed(rest);
      lines.end();
      return;
    }
    if (this.mode === 'text') {
      if (rest.length > 0) this.state.textDelta(rest, false);
      // Plain text has no end marker: a body that ends is complete.
      this.state.completed();
      return;
    }
    if (rest.length > 0) this.bodyParts.push(rest);
    const body = this.bodyParts.join('');
    this.bodyParts = [];
    if (body.trim().length === 0) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      if (this.declaredJson) this.state.malformed('invalid_json', `unary body of ${body.length} characters`);
      return;
    }
    (this.reader as WireFormatReader).readBody(parsed, this.state);
  }

  onDone(outcome: ResponseOutcome, statusCode: number): void {
    this.bodyParts = [];
    this.state.end(outcome, statusCode);
  }

  onListenerError(error: unknown): void {
    this.shortcut = false;
    this.mode = 'ignore';
    this.state.bodyUnreadable();
    this.settings.internalError(error);
  }

  // SSE events from the parser.
  onEvent(data: string, eventType: string | undefined): void {
    this.writeEvents++;
    const plain = (this.reader as WireFormatReader).readEvent(data, eventType, this.state);
    this.lastPlain = plain;
    if (plain !== undefined) this.lastPlainData = data;
  }

  onEventTooLarge(eventType: string | undefined): void {
    const what = this.mode === 'lines' ? 'an NDJSON line' : 'an SSE event';
    this.state.malformed('event_too_large', `${what} exceeded maxEventBytes (${this.settings.maxEventBytes})`);
    this.reader?.readOversizedEvent?.(eventType, this.state);
  }

  onJsonLine(): void {
    this.state.malformed('invalid_sse_line', 'a JSON line where an SSE field belongs');
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

  private withinBodyLimit(chunk: unknown, encoding: unknown): boolean {
    this.bodyLength +=
      typeof chunk === 'string'
        ? Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : chunk instanceof Uint8Array
          ? chunk.length
          : 0;
    if (this.bodyLength <= this.settings.maxBodyBytes) return true;
    this.mode = 'ignore';
    this.bodyParts = [];
    this.state.malformed('body_too_large', `a unary body exceeded maxBodyBytes (${this.settings.maxBodyBytes})`);
    return false;
  }
}

/**
 * Whether the first body chunk is plain text although Content-Encoding is set. With `compression` mounted before
 * us our wrapper sits beneath it and still sees plain text; mounted after us, it hands us compressed bytes.
 */
function looksLikeText(chunk: unknown, mode: BodyMode): boolean {
  if (typeof chunk === 'string') return true;
  if (!(chunk instanceof Uint8Array) || chunk.length === 0) return true;
  // Plain text may start with any byte: only a string write is known to be text.
  if (mode === 'text') return false;
  let first = chunk[0] as number;
  if (first === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) first = chunk[3] ?? 0x0a;
  if (mode === 'events') {
    // An SSE stream starts with a field name (data, event, id, retry), a comment or a line end.
    return first === 0x64 || first === 0x65 || first === 0x69 || first === 0x72 || first === 0x3a || first === 0x0a || first === 0x0d;
  }
  return first === 0x7b || first === 0x5b || first === 0x20 || first === 0x0a || first === 0x0d || first === 0x09;
}
