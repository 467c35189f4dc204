import { ChunkShape } from './chunk-shape';
import { ResponseTextDecoder } from './decode';
import type { ResponseListener } from './hook';
import { LineSplitter } from './lines';
import type { WireFormatReader } from './readers/types';
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
  /** The stream's learned chunk shape: events like the last plain text delta are counted without being parsed. */
  private readonly shape: ChunkShape;
  private encoding: string | undefined;
  private sniffed = false;
  private bodyParts: string[] = [];
  private bodyLength = 0;
  /** The body says it is JSON; an undeclared body that does not parse is simply not JSON, not a parse error. */
  private declaredJson = false;

  constructor(
    private readonly state: RequestState,
    private readonly request: RequestFormat,
    private readonly settings: ResponseReaderSettings,
    private readonly req: IncomingMessage,
  ) {
    this.shape = new ChunkShape(state);
  }

  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    const contentType = (header('content-type') ?? '').toLowerCase();
    const encoding = (header('content-encoding') ?? '').trim().toLowerCase();
    this.encoding = encoding === '' || encoding === 'identity' ? undefined : encoding;
    const format = responseFormat(this.request, statusCode, contentType, header);
    this.reader = format.reader;
    this.mode = format.body;
    if (format.body === 'events') {
      this.sse = new SseParser(this, this.settings.maxEventBytes, this.shape);
    } else if (format.body === 'lines') {
      this.lines = new LineSplitter(this, this.settings.maxEventBytes);
    } else if (format.body === 'json') {
      this.declaredJson = contentType !== '';
    }
    if (format.endpoint !== this.request.endpoint) this.state.recognisedAs(format.endpoint);
    this.state.responseStarted(format.streaming, this.settings.hints(this.req, format.endpoint));
  }

  onBody(chunk: unknown, encoding: unknown): void {
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
      (this.sse as SseParser).feed(text);
    } else if (this.mode === 'lines') {
      (this.lines as LineSplitter).feed(text);
    } else if (this.mode === 'text') {
      this.state.textDelta(text, false);
    } else {
      this.bodyParts.push(text);
    }
  }

  onBodyEnd(): void {
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
    this.mode = 'ignore';
    this.state.bodyUnreadable();
    this.settings.internalError(error);
  }

  // SSE events from the parser (those the chunk shape did not take in its input).
  onEvent(data: string, eventType: string | undefined): void {
    if (this.shape.takeEvent(data, eventType)) return;
    const plain = (this.reader as WireFormatReader).readEvent(data, eventType, this.state);
    if (plain !== undefined) this.shape.learn(data, eventType, plain);
  }

  onEventTooLarge(eventType: string | undefined): void {
    const what = this.mode === 'lines' ? 'an NDJSON line' : 'an SSE event';
    this.state.malformed('event_too_large', `${what} exceeded maxEventBytes (${this.settings.maxEventBytes})`);
    this.reader?.readOversizedEvent?.(eventType, this.state);
  }

  onJsonLine(): void {
    this.state.malformed('invalid_sse_line', 'a JSON line where an SSE field belongs');
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
