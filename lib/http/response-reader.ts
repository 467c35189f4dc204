import { ChunkShape } from '../events/chunk-shape';
import { ResponseTextDecoder } from './decode';
import type { ResponseListener } from './hook';
import { JsonBodyReader } from '../events/json-body';
import { BodyDecompressor } from './decompress';
import { formatOfFirstLine, mayOpenRelayLine } from '../formats/by-content';
import type { DecodedBodySink } from './decompress';
import { LineSplitter } from '../events/lines';
import type { WireFormatReader } from '../formats/types';
import { responseFormat } from '../formats/recognise';
import type { BodyMode, RequestFormat } from '../formats/recognise';
import type { IncomingMessage } from 'node:http';
import type { ResponseOutcome } from './hook';
import type { RequestHints } from '../request/request-model';
import type { RequestState } from '../request/request-state';
import { SseParser } from '../events/sse';
import type { SseHandler } from '../events/sse';

/** Longest beginning of plain text held while its first line may still turn out to be a relay's JSON event. */
const FIRST_LINE_HOLD = 4096;

/** The same for every response of one middleware. */
export interface ResponseReaderSettings {
  maxEventBytes: number;
  maxBodyBytes: number;
  /** A listener bug: reported, never thrown into the request. */
  internalError: (error: unknown) => void;
  /** The body is in a Content-Encoding we cannot decode: reported once per middleware. */
  compressedBody: (encoding: string) => void;
  /** What the request names (model, stream), read again when the response starts: a body parser may have run since. */
  hints: (req: IncomingMessage, endpoint: string) => RequestHints | undefined;
}

/**
 * Turns the response's bytes into observations: decides at the head how to read the body (an SSE stream event by
 * event, an NDJSON stream line by line, a JSON body as it arrives, streamed plain text, or not at all; a compressed
 * one from a decoded copy) and with which wire-format reader, decodes the text, splits events, and hands each to
 * the reader, which reports to the request state.
 */
export class ResponseReader implements ResponseListener, SseHandler, DecodedBodySink {
  private mode: BodyMode = 'ignore';
  private readonly decoder = new ResponseTextDecoder();
  private sse: SseParser | undefined;
  private lines: LineSplitter | undefined;
  /** Chosen when the head shows what the response is. */
  private reader: WireFormatReader | undefined;
  /** Reads each event of a stream: events shaped like the last plain text delta are counted without a parse. */
  private shape: ChunkShape | undefined;
  /** The body as it is written, when it is compressed: what we read is its decoded copy. */
  private decompressor: BodyDecompressor | undefined;
  private json: JsonBodyReader | undefined;
  /** The body says it is JSON; an undeclared body that does not parse is simply not JSON, not a parse error. */
  private declaredJson = false;
  /** Streamed plain text has been written: its first write decided whether it is text or a relay's NDJSON. */
  private textSeen = false;
  /** Plain text's beginning, held until its first line is whole (see `readText`). */
  private heldText = '';

  constructor(
    private readonly state: RequestState,
    private readonly request: RequestFormat,
    private readonly settings: ResponseReaderSettings,
    private readonly req: IncomingMessage,
  ) {}

  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    const contentType = (header('content-type') ?? '').toLowerCase();
    const format = responseFormat(this.request, statusCode, contentType, header);
    this.reader = format.reader;
    // Node sends no body for these, whatever the app writes: none is read, and no end marker is awaited.
    const bodiless = this.req.method === 'HEAD' || statusCode === 204 || statusCode === 304;
    this.mode = bodiless ? 'ignore' : format.body;
    if (this.mode === 'events') {
      this.shape = new ChunkShape(format.reader, this.state);
      this.sse = new SseParser(this, this.settings.maxEventBytes, this.shape);
    } else if (this.mode === 'lines') {
      this.shape = new ChunkShape(format.reader, this.state);
      this.lines = new LineSplitter(this, this.settings.maxEventBytes);
    } else if (this.mode === 'json') {
      this.declaredJson = contentType !== '';
      this.json = new JsonBodyReader(this.settings.maxBodyBytes);
    }
    // Content-Encoding is trusted, never guessed from the bytes. Set when our wrapper is called, the bytes we get
    // are encoded (an upstream that compressed, compression() mounted after us); compression() mounted before us
    // sets it only beneath our wrapper, after we have read the head, and we get plain text.
    const encoding = (header('content-encoding') ?? '').trim().toLowerCase();
    const decompressor = this.mode === 'ignore' || encoding === '' ? null : BodyDecompressor.for(encoding, this);
    if (decompressor === undefined) this.unreadable(`Content-Encoding: ${encoding}`, encoding);
    else if (decompressor !== null) this.decompressor = decompressor;
    if (format.endpoint !== this.request.endpoint) this.state.recognisedAs(format.endpoint);
    if (this.mode === 'text' || format.reader.modelNotInStream === true) this.state.modelNotInStream();
    this.state.responseStarted(format.streaming && !bodiless, this.settings.hints(this.req, format.endpoint), statusCode);
  }

  onBody(chunk: unknown, encoding: unknown): void {
    if (this.decompressor !== undefined) this.decompressor.write(chunk, encoding);
    else this.readBody(chunk, encoding);
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
      this.state.newWrite();
      (this.sse as SseParser).feed(text);
    } else if (this.mode === 'lines') {
      (this.lines as LineSplitter).feed(text);
    } else if (this.mode === 'text') {
      this.readText(text);
    } else {
      (this.json as JsonBodyReader).write(text);
    }
  }

  /**
   * Streamed plain text is generated text, unless its first line is a JSON event of a known format: a relay that
   * writes the OpenAI or Anthropic SDK's `toReadableStream()` as text/plain (openai-node's own Express example does)
   * sends NDJSON, whose JSON would otherwise be counted as text.
   */
  private readText(text: string): void {
    if (!this.textSeen) {
      const head = this.heldText + text;
      // That first line may come cut across writes: text that begins as a relay's event does waits (briefly: an
      // event's line is short) until its first line is whole.
      if (head.length < FIRST_LINE_HOLD && head.indexOf('\n') === -1 && mayOpenRelayLine(head)) {
        this.heldText = head;
        return;
      }
      this.heldText = '';
      this.textSeen = true;
      text = head;
      const reader = formatOfFirstLine(text);
      if (reader !== undefined) {
        this.mode = 'lines';
        this.reader = reader;
        this.shape = new ChunkShape(reader, this.state);
        this.lines = new LineSplitter(this, this.settings.maxEventBytes);
        this.lines.feed(text);
        return;
      }
    }
    this.state.textDelta(text, false);
  }

  onBodyEnd(): void {
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
    if (this.mode === 'lines') {
      const lines = this.lines as LineSplitter;
      if (rest.length > 0) lines.feed(rest);
      lines.end();
      return;
    }
    if (this.mode === 'text') {
      const tail = this.heldText + rest;
      this.heldText = '';
      if (tail.length > 0) this.state.textDelta(tail, false);
      // Plain text has no end marker: a body that ends is complete.
      this.state.completed();
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
    (this.reader as WireFormatReader).readBody(body, this.state);
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
    this.mode = 'ignore';
    this.state.bodyUnreadable();
    this.settings.internalError(error);
  }

  /** The body cannot be read (an encoding we do not decode, a corrupt compressed stream); the request still counts. */
  unreadable(detail: string, encoding?: string): void {
    this.mode = 'ignore';
    this.json = undefined;
    this.state.bodyUnreadable();
    this.state.malformed('compressed_body', detail);
    if (encoding !== undefined) this.settings.compressedBody(encoding);
  }

  // Events from the SSE parser (those the chunk shape did not take in its input) and NDJSON lines.
  onEvent(data: string, eventType: string | undefined): void {
    (this.shape as ChunkShape).readEvent(data, eventType);
  }

  onEventTooLarge(eventType: string | undefined): void {
    const what = this.mode === 'lines' ? 'a line' : 'an SSE event';
    this.state.malformed('event_too_large', `${what} exceeded maxEventBytes (${this.settings.maxEventBytes})`);
    this.reader?.readOversizedEvent?.(eventType, this.state);
  }

  onJsonLine(): void {
    this.state.malformed('invalid_sse_line', 'a JSON line where an SSE field belongs');
  }
}
