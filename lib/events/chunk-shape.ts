import type { PlainTextDelta } from '../formats/types';
import type { SseShortcut } from './sse';

/** Where a shaped event's text is counted: the request state. */
export interface ShapedTextSink {
  textDelta(text: string, reasoning: boolean): void;
}

/**
 * Recognises an event that is byte-for-byte the last plain-text-delta event except for its text, and counts it
 * without parsing.
 *
 * Engine servers send hundreds of events per response that differ only in one string
 * (`data: {…"content":"…"…}`). Once the reader has fully parsed an event and declared it a plain text delta ("these
 * tokens of generated text, nothing else"), a later event with the same `event:` type and the same characters
 * before and after that string, whose new string holds no `"`, `\` or control character, has the same parse tree
 * but another string: it means the same thing with that text. Checking that costs two string comparisons instead
 * of a `JSON.parse` and the reader's walk over the result.
 *
 * It is checked at two places, whichever comes first:
 * - in the SSE parser's input ({@link take}), between events: an event written the usual way (`event: …` when
 *   typed, one `data: ` line, a blank line, LF line ends) is matched in the decoded text as it stands, before it
 *   is split into lines. Whatever the writes look like (one event each, several, or an event cut in two, as a
 *   proxy forwards them), every whole event in a piece of text is taken there without splitting it into lines.
 * - in the parser's output ({@link takeEvent}): an event written any other way (CRLF, `data:` without the space,
 *   an `id:` line) or cut across writes still skips the parse.
 *
 * The contract, tested against the full path in chunk-shape.test.ts: whatever it takes, the full path would have
 * counted the same text, with the same reasoning flag, in the same order.
 */
export class ChunkShape implements SseShortcut {
  /** The learned event's data before and after its text; the text starts right after an opening `"`. */
  private dataHead = '';
  private dataTail = '';
  /** The same event as written the usual way: `event: <type>\n` when typed, `data: `, and `\n\n` at the end. */
  private head = '';
  private tail = '';
  private eventType: string | undefined = undefined;
  private reasoning = false;
  private learned = false;

  constructor(private readonly sink: ShapedTextSink) {}

  get known(): boolean {
    return this.learned;
  }

  /**
   * Between events, at `position` in the parser's input: when one whole event of the learned shape, written the
   * usual way and no longer than `limit` characters, starts there, counts its text and returns where it ends
   * (after its blank line); else -1, and the parser reads the event itself.
   */
  take(text: string, position: number, limit: number): number {
    if (!this.learned) return -1;
    const textEnd = shapedTextEnd(text, position, this.head, this.tail);
    if (textEnd === -1) return -1;
    const end = textEnd + this.tail.length;
    if (end - position > limit) return -1;
    this.sink.textDelta(text.slice(position + this.head.length, textEnd), this.reasoning);
    return end;
  }

  /** An event the SSE parser delivered: counted and true when its data has the learned shape. */
  takeEvent(data: string, eventType: string | undefined): boolean {
    if (!this.learned || eventType !== this.eventType) return false;
    const textEnd = shapedTextEnd(data, 0, this.dataHead, this.dataTail);
    if (textEnd === -1 || textEnd + this.dataTail.length !== data.length) return false;
    this.sink.textDelta(data.slice(this.dataHead.length, textEnd), this.reasoning);
    return true;
  }

  /**
   * Learns the shape of an event whose `data` the reader read as `delta`, when its text can be located
   * unambiguously. Replaces the shape learned before, so a stream that moves on (say from reasoning to content)
   * is followed.
   */
  learn(data: string, eventType: string | undefined, delta: PlainTextDelta): void {
    const { text } = delta;
    if (plainEnd(text, 0) !== text.length || text.length === 0) return;
    for (const separator of ['":"', '": "']) {
      const needle = `"${delta.key}${separator}${text}"`;
      const at = data.indexOf(needle);
      if (at === -1) continue;
      if (data.indexOf(needle, at + 1) !== -1) return;
      const textStart = at + needle.length - text.length - 1;
      const dataHead = data.slice(0, textStart);
      const dataTail = data.slice(textStart + text.length);
      // Data joined from several `data:` lines has no one-line form to match in the parser's input.
      if (hasLineEnd(dataHead) || hasLineEnd(dataTail)) return;
      // Flat copies: comparing against a slice of a long-gone write would keep that write alive and be slower.
      this.dataHead = flat(dataHead);
      this.dataTail = flat(dataTail);
      this.head = flat(`${eventType === undefined ? '' : `event: ${eventType}\n`}data: ${dataHead}`);
      this.tail = flat(`${dataTail}\n\n`);
      this.eventType = eventType;
      this.reasoning = delta.reasoning;
      this.learned = true;
      return;
    }
  }
}

/**
 * Where the text ends in `text` at `position` shaped as `head` + text + `tail` (the text non-empty and plain; `tail`
 * starts with its closing quote), or -1. The short tail first: it holds finish_reason and the closing brackets, so
 * it turns other events away cheaply. A slice compared with `===` is V8's fastest way to compare in place here:
 * `startsWith` at an offset and `charCodeAt` loops measured slower.
 */
function shapedTextEnd(text: string, position: number, head: string, tail: string): number {
  const start = position + head.length;
  const end = plainEnd(text, start);
  if (end === start || end + tail.length > text.length) return -1;
  if (text.slice(end, end + tail.length) !== tail || text.slice(position, start) !== head) return -1;
  return end;
}

/**
 * The end of the run of characters from `start` that cannot change the JSON or SSE structure around them: no
 * quote, no escape, no control character (so no line end).
 */
function plainEnd(text: string, start: number): number {
  let i = start;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x22 /* " */ || c === 0x5c /* \ */) break;
  }
  return i;
}

function hasLineEnd(text: string): boolean {
  return text.includes('\n') || text.includes('\r');
}

function flat(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
