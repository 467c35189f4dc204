/**
 * An incremental Server-Sent Events parser (WHATWG rules: LF, CRLF or CR line ends, `data:` lines joined with
 * `\n`, `:` comments, one optional space after the colon), fed decoded text in arbitrary pieces.
 *
 * Written here rather than taken from eventsource-parser because it sits on every chunk's path: a chunk that holds
 * whole lines costs a few `indexOf`s and one `slice`, with no per-event object. Work stays linear however a long
 * event is split, and an event that grows past `maxEventLength` is dropped instead of buffered. An event's size is
 * the characters of its `data` values plus those of its other lines (comments, `event:`, …), counted the same way
 * whether a line arrives whole or in pieces, so the limit never depends on how the stream was cut. Between events,
 * an optional {@link SseShortcut} may take a whole event it recognises before the event is split into lines.
 */
export interface SseHandler {
  onEvent(data: string, eventType: string | undefined): void;
  /** An event grew past the limit and is skipped; its `event:` type, when that line came first. */
  onEventTooLarge(eventType: string | undefined): void;
  /**
   * A line that starts like JSON (`{` or `[`) where a field belongs: a stream that switched to NDJSON or raw JSON.
   * SSE ignores unknown fields, so the line is still skipped; it is reported because its tokens are lost.
   */
  onJsonLine?(): void;
}

/**
 * A fast path for events its owner already knows how to read (the learned chunk shape). Asked between events with
 * the unread text, it either accounts for one whole event that starts at `position`, no longer than `limit`
 * characters, and returns where that event ends (after its blank line), or returns -1 and the parser reads the
 * event itself. It must take only events that the parser would deliver whole, and read them as the handler would.
 */
export interface SseShortcut {
  take(text: string, position: number, limit: number): number;
}

const LF = 10;

export class SseParser {
  /** Start of a line that has not ended yet. */
  private partialLine = '';
  /** Its first characters, enough to size it without flattening the growing line (which would be quadratic). */
  private partialHead = '';
  private data = '';
  private hasData = false;
  /** Characters of the current event's complete lines. */
  private eventLength = 0;
  private eventType: string | undefined = undefined;
  /** The event being read grew past the limit: skip it up to its blank line. */
  private discarding = false;
  /** The previous piece ended with CR: a LF starting the next piece belongs to the same line end. */
  private pendingCR = false;
  /** The line being read was dropped (too large): its end is not a blank line. */
  private droppingLine = false;

  constructor(
    private readonly handler: SseHandler,
    private readonly maxEventLength: number,
    private readonly shortcut?: SseShortcut,
  ) {}

  feed(text: string): void {
    const length = text.length;
    let position = 0;
    if (this.pendingCR) {
      this.pendingCR = false;
      if (length > 0 && text.charCodeAt(0) === LF) position = 1;
    }
    // Searched when a line is first split, not before: events the shortcut takes never need it. -2: not yet.
    let nextCR = -2;
    const shortcut = this.shortcut;
    if (shortcut !== undefined && this.partialLine.length > 0 && this.startsEvent()) position = this.takeCutEvent(shortcut, text, position);
    while (position < length) {
      if (shortcut !== undefined && this.betweenEvents()) {
        const eventEnd = shortcut.take(text, position, this.maxEventLength);
        if (eventEnd !== -1) {
          position = eventEnd;
          continue;
        }
      }
      let lineEnd = text.indexOf('\n', position);
      if (nextCR !== -1 && nextCR < position) nextCR = text.indexOf('\r', position);
      let crlf = false;
      if (nextCR !== -1 && (lineEnd === -1 || nextCR < lineEnd)) {
        crlf = nextCR + 1 < length && text.charCodeAt(nextCR + 1) === LF;
        if (nextCR + 1 === length) this.pendingCR = true;
        lineEnd = nextCR;
      }
      if (lineEnd === -1) {
        this.keepPartial(text, position);
        return;
      }
      if (this.droppingLine) {
        this.droppingLine = false;
        position = lineEnd + (crlf ? 2 : 1);
        continue;
      }
      let line = text.slice(position, lineEnd);
      if (this.partialLine.length > 0) {
        line = this.partialLine + line;
        this.partialLine = '';
        this.partialHead = '';
      }
      this.processLine(line);
      position = lineEnd + (crlf ? 2 : 1);
    }
  }

  /** At the start of a line that starts an event: nothing of an event read, nothing being skipped. */
  private betweenEvents(): boolean {
    return this.partialLine.length === 0 && this.startsEvent();
  }

  /** Nothing of the current event read but the line being read, and nothing being skipped. */
  private startsEvent(): boolean {
    return this.eventLength === 0 && !this.hasData && this.eventType === undefined && !this.discarding && !this.droppingLine;
  }

  /**
   * An event cut across writes (a proxy forwards what it reads from its upstream): the line kept from the last
   * write and the new text's first line, when that line ends the event, are offered to the shortcut as one event,
   * so the cut costs one small join instead of reading the event line by line. Returns where reading goes on.
   */
  private takeCutEvent(shortcut: SseShortcut, text: string, position: number): number {
    const lineEnd = text.indexOf('\n', position);
    if (lineEnd === -1 || text.charCodeAt(lineEnd + 1) !== LF) return position;
    const event = this.partialLine + text.slice(position, lineEnd + 2);
    if (shortcut.take(event, 0, this.maxEventLength) !== event.length) return position;
    this.partialLine = '';
    this.partialHead = '';
    return lineEnd + 2;
  }

  /** The stream ended: an event left without its blank line (a truncated stream) is still read, not lost. */
  end(): void {
    this.droppingLine = false;
    if (this.partialLine.length > 0) {
      const line = this.partialLine;
      this.partialLine = '';
      this.partialHead = '';
      this.processLine(line);
    }
    this.processLine('');
  }

  private keepPartial(text: string, position: number): void {
    if (this.discarding) {
      this.droppingLine = true;
      return;
    }
    const piece = position === 0 ? text : text.slice(position);
    this.partialLine += piece;
    if (this.partialHead.length < DATA_FIELD.length) this.partialHead += piece.slice(0, DATA_FIELD.length - this.partialHead.length);
    if (this.eventLength + lineSize(this.partialHead, this.partialLine.length) > this.maxEventLength) {
      this.tooLarge();
      this.droppingLine = true;
    }
  }

  private tooLarge(): void {
    const eventType = this.eventType;
    this.partialLine = '';
    this.partialHead = '';
    this.data = '';
    this.hasData = false;
    this.eventType = undefined;
    this.discarding = true;
    this.handler.onEventTooLarge(eventType);
  }

  private processLine(line: string): void {
    if (line.length === 0) {
      this.eventLength = 0;
      if (this.discarding) {
        this.discarding = false;
        return;
      }
      if (this.hasData) {
        const data = this.data;
        const eventType = this.eventType;
        this.data = '';
        this.hasData = false;
        this.eventType = undefined;
        this.handler.onEvent(data, eventType);
      } else {
        this.eventType = undefined;
      }
      return;
    }
    if (this.discarding) return;
    this.eventLength += lineSize(line, line.length);
    if (this.eventLength > this.maxEventLength) {
      this.tooLarge();
      return;
    }
    const first = line.charCodeAt(0);
    if (first === 58 /* : */) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = '';
    if (colon !== -1) {
      const valueStart = line.charCodeAt(colon + 1) === 32 /* space */ ? colon + 2 : colon + 1;
      value = line.slice(valueStart);
    }
    if (field === 'data') {
      if (this.hasData) {
        this.data += '\n' + value;
      } else {
        this.data = value;
        this.hasData = true;
      }
    } else if (field === 'event') {
      this.eventType = value;
    } else if (first === 123 /* { */ || first === 91 /* [ */) {
      this.handler.onJsonLine?.();
    }
    // `id` and `retry` say nothing about tokens.
  }
}

/**
 * What a line adds to its event's size: a `data` line its value, any other line all of it. Never more for a
 * line's beginning than for the whole line, so a line split across writes is judged as it would be whole.
 */
function lineSize(head: string, length: number): number {
  // charCodeAt rather than startsWith: this runs for every line the shortcut did not take, and V8's startsWith
  // is a slow builtin call.
  const prefix = dataPrefixLength(head);
  if (prefix === DATA_PREFIX) return length - (head.charCodeAt(5) === 32 ? 6 : 5);
  return prefix === head.length ? 0 : length;
}

const DATA_PREFIX = 5;

/** How many characters `head` shares with `data:` from its start (5 when it starts with it). */
function dataPrefixLength(head: string): number {
  const n = head.length < DATA_PREFIX ? head.length : DATA_PREFIX;
  for (let i = 0; i < n; i++) if (head.charCodeAt(i) !== DATA_FIELD.charCodeAt(i)) return i;
  return n;
}

const DATA_FIELD = 'data: ';
