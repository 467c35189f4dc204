import type { ObservationSink, WireFormatReader } from '../formats/types';
import { PlainTextProbe } from './plain-text-probe';
import type { SseShortcut } from './sse';

/** Where events are reported: the request state. A shaped event's text goes to `textDelta`. */
export interface ShapedTextSink extends ObservationSink {
  textDelta(text: string, reasoning: boolean): void;
}

/** Learned shapes in a row that never took an event: the stream's events differ by more than their text. */
const MAX_IDLE_SHAPES = 3;

/**
 * A string field no reader reads, whose value changes with every event: OpenAI pads each streamed chunk with
 * random characters in `obfuscation` (on by default), which would otherwise make every event a new shape.
 */
const IGNORED_FIELD = '"obfuscation":"';

/**
 * Reads a stream's events for the response reader: an event that is byte-for-byte the last plain-text-delta event
 * except for its text is counted without parsing; any other is read in full by the wire-format reader.
 *
 * Engine servers send hundreds of events per response that differ only in one string
 * (`data: {…"content":"…"…}`). Once an event has been read in full and reported nothing but one text's tokens
 * (watched by {@link PlainTextProbe}: "these tokens of generated text, nothing else"; no reader has to say so), a
 * later event with the same `event:` type and the same characters before and after that string, whose new string
 * holds no `"`, `\` or control character, has the same parse tree but another string: it means the same thing
 * with that text. Checking that costs two string comparisons instead of a `JSON.parse` and the reader's walk.
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
  /** Shapes learned since one last took an event. */
  private idleShapes = 0;
  private taken = false;
  /** The learned event's data before and after its text; the text starts right after an opening `"`. */
  private dataHead = '';
  private dataTail = '';
  /** With an ignored field after the text: the tail up to its value, and from its closing quote on (`…Rest`). */
  private dataTailRest: string | undefined;
  /** The same event as written the usual way: `event: <type>\n` when typed, `data: `, and `\n\n` at the end. */
  private head = '';
  private tail = '';
  private tailRest: string | undefined;
  private eventType: string | undefined = undefined;
  private reasoning = false;
  private learned = false;

  constructor(
    private readonly reader: WireFormatReader,
    private readonly sink: ShapedTextSink,
  ) {}

  /**
   * An event the parser delivered: counted from its shape when it has it, else read in full by the wire-format
   * reader, and learned from when it turns out to be plain text.
   */
  readEvent(data: string, eventType: string | undefined): void {
    if (this.takeEvent(data, eventType)) return;
    if (this.reader.shapedEvents !== true || this.idleShapes >= MAX_IDLE_SHAPES) {
      this.reader.readEvent(data, eventType, this.sink);
      return;
    }
    const probe = PlainTextProbe.shared;
    probe.start(this.sink);
    this.reader.readEvent(data, eventType, probe);
    const text = probe.plainText();
    if (text !== undefined) this.learn(data, eventType, text, probe.reasoning);
  }

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
    const end = this.tailRest === undefined ? textEnd + this.tail.length : restEnd(text, textEnd + this.tail.length, this.tailRest);
    if (end === -1 || end - position > limit) return -1;
    this.taken = true;
    this.sink.textDelta(text.slice(position + this.head.length, textEnd), this.reasoning);
    return end;
  }

  /** An event the SSE parser delivered: counted and true when its data has the learned shape. */
  takeEvent(data: string, eventType: string | undefined): boolean {
    if (!this.learned || eventType !== this.eventType) return false;
    const textEnd = shapedTextEnd(data, 0, this.dataHead, this.dataTail);
    if (textEnd === -1) return false;
    const end = this.dataTailRest === undefined ? textEnd + this.dataTail.length : restEnd(data, textEnd + this.dataTail.length, this.dataTailRest);
    if (end !== data.length) return false;
    this.taken = true;
    this.sink.textDelta(data.slice(this.dataHead.length, textEnd), this.reasoning);
    return true;
  }

  /**
   * Learns the shape of an event whose `data` was read as this text and nothing else, when the text can be
   * located unambiguously: `data` holds no escape (so every string in it stands as it reads) and the text, quoted,
   * once, as a value. Replaces the shape learned before, so a stream that moves on (say from reasoning to content)
   * is followed.
   */
  private learn(data: string, eventType: string | undefined, text: string, reasoning: boolean): void {
    if (plainEnd(text, 0) !== text.length || data.includes('\\')) return;
    const quoted = `"${text}"`;
    const at = data.indexOf(quoted);
    if (at === -1 || data.indexOf(quoted, at + 1) !== -1 || !afterColon(data, at)) return;
    const textStart = at + 1;
    const dataHead = data.slice(0, textStart);
    let dataTail = data.slice(textStart + text.length);
    // Data joined from several `data:` lines has no one-line form to match in the parser's input.
    if (hasLineEnd(dataHead) || hasLineEnd(dataTail)) return;
    // After the text, an ignored field's value may differ from event to event: the tail is matched around it.
    // (With no escape in the data, the field's name cannot stand inside another string.)
    let dataTailRest: string | undefined;
    const ignored = dataTail.indexOf(IGNORED_FIELD);
    if (ignored !== -1) {
      const valueStart = ignored + IGNORED_FIELD.length;
      dataTailRest = dataTail.slice(plainEnd(dataTail, valueStart));
      dataTail = dataTail.slice(0, valueStart);
    }
    // Flat copies: comparing against a slice of a long-gone write would keep that write alive and be slower.
    this.dataHead = flat(dataHead);
    this.dataTail = flat(dataTail);
    this.dataTailRest = dataTailRest === undefined ? undefined : flat(dataTailRest);
    this.head = flat(`${eventType === undefined ? '' : `event: ${eventType}\n`}data: ${dataHead}`);
    this.tail = dataTailRest === undefined ? flat(`${dataTail}\n\n`) : this.dataTail;
    this.tailRest = dataTailRest === undefined ? undefined : flat(`${dataTailRest}\n\n`);
    this.eventType = eventType;
    this.reasoning = reasoning;
    this.learned = true;
    this.idleShapes = this.taken ? 1 : this.idleShapes + 1;
    this.taken = false;
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

/** Where the ignored field's value, at `at`, and then `rest` (from its closing quote on) end, or -1. */
function restEnd(text: string, at: number, rest: string): number {
  const valueEnd = plainEnd(text, at);
  if (valueEnd + rest.length > text.length || text.slice(valueEnd, valueEnd + rest.length) !== rest) return -1;
  return valueEnd + rest.length;
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

/** The quote at `at` opens a value: a colon, maybe with spaces, stands before it. */
function afterColon(data: string, at: number): boolean {
  let i = at - 1;
  while (i >= 0 && data.charCodeAt(i) === 32) i--;
  return i >= 0 && data.charCodeAt(i) === 58 /* : */;
}

function hasLineEnd(text: string): boolean {
  return text.includes('\n') || text.includes('\r');
}

function flat(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
