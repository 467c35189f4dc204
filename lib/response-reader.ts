import { ChunkShape } from './chunk-shape';
import { ResponseTextDecoder } from './decode';
import type { ResponseListener } from './hook';
import type { WireFormatReader } from './readers/types';
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
  /** Our wrapper sees compressed bytes (compression mounted after us): reported once per middleware. */
  compressedBody: (encoding: string) => void;
}

type BodyMode = 'events' | 'json' | 'ignore';

/**
 * Turns the response's bytes into observations: decides at the head how to read the body (an SSE stream event by
 * event, a JSON body at its end, or not at all), decodes the text, splits events, and hands each to the
 * wire-format reader, which reports to the request state.
 */
export class ResponseReader implements ResponseListener, SseHandler {
  private mode: BodyMode = 'ignore';
  private readonly decoder = new ResponseTextDecoder();
  private sse: SseParser | undefined;
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
    private readonly reader: WireFormatReader,
    private readonly settings: ResponseReaderSettings,
    private readonly req: IncomingMessage,
  ) {
    this.shape = new ChunkShape(state);
  }

  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    const contentType = (header('content-type') ?? '').toLowerCase();
    const isEventStream = contentType.startsWith('text/event-stream');
    const encoding = (header('content-encoding') ?? '').trim().toLowerCase();
    this.encoding = encoding === '' || encoding === 'identity' ? undefined : encoding;
    if (isEventStream) {
      this.mode = 'events';
      this.sse = new SseParser(this, this.settings.maxEventBytes, this.shape);
    } else if (statusCode !== 204 && statusCode !== 304 && (contentType.includes('json') || contentType === '')) {
      this.mode = 'json';
      this.declaredJson = contentType !== '';
    }
    this.state.responseStarted(isEventStream, requestHints(this.req));
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
    this.reader.readBody(parsed, this.state);
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
    const plain = this.reader.readEvent(data, eventType, this.state);
    if (plain !== undefined) this.shape.learn(data, eventType, plain);
  }

  onEventTooLarge(eventType: string | undefined): void {
    this.state.malformed('event_too_large', `an SSE event exceeded maxEventBytes (${this.settings.maxEventBytes})`);
    this.reader.readOversizedEvent?.(eventType, this.state);
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
  let first = chunk[0] as number;
  if (first === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) first = chunk[3] ?? 0x0a;
  if (mode === 'events') {
    // An SSE stream starts with a field name (data, event, id, retry), a comment or a line end.
    return first === 0x64 || first === 0x65 || first === 0x69 || first === 0x72 || first === 0x3a || first === 0x0a || first === 0x0d;
  }
  return first === 0x7b || first === 0x5b || first === 0x20 || first === 0x0a || first === 0x0d || first === 0x09;
}
