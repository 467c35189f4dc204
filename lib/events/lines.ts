import type { SseHandler } from './sse';

/**
 * An incremental NDJSON (`application/x-ndjson`) line splitter, fed decoded text in arbitrary pieces: each
 * non-blank line is handed on as one event's data, so the readers see NDJSON exactly as they see SSE.
 *
 * Lines end at LF; a CR before it is dropped (CRLF), whether or not the two arrive in the same piece. A line that
 * grows past `maxLineLength` characters is reported once and skipped up to its end instead of being buffered, so
 * a line that never ends costs bounded memory. A last line without its LF is still read when the body ends.
 */
export class LineSplitter {
  /** Start of a line that has not ended yet. */
  private partialLine = '';
  /** The line being read grew past the limit: skip it up to its LF. */
  private droppingLine = false;

  constructor(
    private readonly handler: SseHandler,
    private readonly maxLineLength: number,
  ) {}

  feed(text: string): void {
    const length = text.length;
    let position = 0;
    while (position < length) {
      const lineEnd = text.indexOf('\n', position);
      if (lineEnd === -1) {
        this.keepPartial(text, position);
        return;
      }
      if (this.droppingLine) {
        this.droppingLine = false;
      } else if (this.partialLine.length > 0) {
        const line = this.partialLine + text.slice(position, lineEnd);
        this.partialLine = '';
        this.processLine(line);
      } else {
        this.processLine(text.slice(position, lineEnd));
      }
      position = lineEnd + 1;
    }
  }

  /** The body ended: a last line without its LF is still read (a server that omits the final LF). */
  end(): void {
    this.droppingLine = false;
    const line = this.partialLine;
    this.partialLine = '';
    if (line.length > 0) this.processLine(line);
  }

  private keepPartial(text: string, position: number): void {
    if (this.droppingLine) return;
    this.partialLine += position === 0 ? text : text.slice(position);
    if (this.partialLine.length > this.maxLineLength) {
      this.partialLine = '';
      this.droppingLine = true;
      this.handler.onEventTooLarge(undefined);
    }
  }

  private processLine(line: string): void {
    if (line.length > this.maxLineLength) {
      this.handler.onEventTooLarge(undefined);
      return;
    }
    // A line of JSON may end in CR (CRLF line ends) and be surrounded by whitespace; a blank line is no event.
    let end = line.length;
    while (end > 0 && isJsonSpace(line.charCodeAt(end - 1))) end--;
    if (end === 0) return;
    this.handler.onEvent(end === line.length ? line : line.slice(0, end), undefined);
  }
}

function isJsonSpace(c: number): boolean {
  return c === 0x0d || c === 0x20 || c === 0x09 || c === 0x0a;
}
