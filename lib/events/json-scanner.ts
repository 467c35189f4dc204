/**
 * JSON syntax, read incrementally: text goes in as it is written, cut anywhere, and is checked as strictly as
 * `JSON.parse` checks it, while each value is handed to a `JsonValueSink` that decides what to keep. The scanner
 * itself holds only what syntax needs (which containers are open, and the string or token being read when the
 * sink wants it), so a body of any size costs what the sink keeps.
 */

import { ESCAPES, hexUnit, isSpecial, isTokenChar, SPECIAL } from './json-chars';

/** Deeper than any LLM body; a hostile one would otherwise cost a frame a level. */
const MAX_DEPTH = 256;
/** Longest number or literal read: no meaningful one comes near it. */
const MAX_TOKEN = 64;

/** Receives the values a scanner reads, in order, and decides what is kept of them. */
export interface JsonValueSink {
  /** A container opens; the values up to its `closeContainer()` are its members or elements. */
  openContainer(isArray: boolean): void;
  closeContainer(): void;
  /** A string starts: how many of its characters to keep, or -1 to keep none. */
  stringLimit(isKey: boolean): number;
  /** A kept string grew past its limit and was dropped. */
  stringDropped(): void;
  /** A member name was read: its text, or `undefined` when it was not kept. */
  key(name: string | undefined): void;
  /** A number, `true`, `false` or `null` starts: whether it is kept. One not kept is not checked beyond its characters. */
  wantsScalar(): boolean;
  /** A kept string, number, boolean or null. */
  value(value: string | number | boolean | null): void;
}

const enum State { Value, AfterValue, AfterKey, String, Escape, Unicode, Number, Literal, Done, Invalid }

export class JsonScanner {
  private state = State.Value;
  /** One entry per open container: `true` for an array. */
  private readonly containers: boolean[] = [];
  /** The innermost open object expects a member name rather than a value. */
  private expectKey = false;
  /** The last structural character was a comma: a closing bracket may not follow. */
  private lastWasComma = false;
  /** The kept pieces of the string being read; `undefined` when it is not kept. */
  private stringParts: string[] | undefined;
  /** How many more characters of it may be kept. */
  private stringRoom = 0;
  private stringIsKey = false;
  private unicode = '';
  private token = '';
  private tokenKeep = false;
  private seenText = false;

  constructor(private readonly sink: JsonValueSink) {}

  get invalid(): boolean {
    return this.state === State.Invalid;
  }

  /** Whether any non-whitespace text was seen: an empty body is no body, not invalid JSON. */
  get empty(): boolean {
    return !this.seenText;
  }

  write(text: string): void {
    const length = text.length;
    let i = 0;
    while (i < length && this.state !== State.Invalid) {
      const code = text.charCodeAt(i);
      switch (this.state) {
        case State.String:
          i = this.readString(text, i);
          continue;
        case State.Escape:
          this.escape(code);
          i++;
          continue;
        case State.Unicode:
          this.unicode += text[i++];
          if (this.unicode.length === 4) this.escaped(hexUnit(this.unicode, 0));
          continue;
        case State.Number:
        case State.Literal: {
          // Scanned as a run: a large body is mostly numbers.
          let end = i;
          while (end < length && isTokenChar(text.charCodeAt(end))) end++;
          if (this.tokenKeep || this.state === State.Literal) {
            this.token = this.token.length === 0 ? text.slice(i, end) : this.token + text.slice(i, end);
            if (this.token.length > MAX_TOKEN) this.state = State.Invalid;
          }
          if (end < length && this.state !== State.Invalid) this.endToken();
          i = end;
          continue;
        }
        default:
          break;
      }
      if (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) {
        i++;
        continue;
      }
      this.seenText = true;
      this.structural(code);
      // A number or literal starts here: its characters are read as a run, this one included.
      const next = this.state as State;
      if (next !== State.Number && next !== State.Literal) i++;
    }
  }

  /** Ends the text: whether it held exactly one complete JSON value. */
  end(): boolean {
    if (this.state === State.Number || this.state === State.Literal) this.endToken();
    if (this.state === State.Done) return true;
    if (this.seenText) this.state = State.Invalid;
    return false;
  }

  private structural(code: number): void {
    const depth = this.containers.length;
    const inArray = depth > 0 && this.containers[depth - 1] === true;
    switch (this.state) {
      case State.Value:
        if (this.expectKey) {
          // Only a member name, or the end of an object not after a comma, may come here.
          if (code === 0x22) return this.startString(true);
          if (code === 0x7d && !this.lastWasComma) return this.close(false);
          this.state = State.Invalid;
          return;
        }
        if (code === 0x5d && inArray && !this.lastWasComma) return this.close(true);
        return this.startValue(code);
      case State.AfterKey:
        this.state = code === 0x3a ? State.Value : State.Invalid;
        return;
      case State.AfterValue:
        if (depth === 0) {
          this.state = State.Invalid;
          return;
        }
        if (code === 0x2c) {
          this.expectKey = !inArray;
          this.lastWasComma = true;
          this.state = State.Value;
          return;
        }
        if (code === (inArray ? 0x5d : 0x7d)) return this.close(inArray);
        this.state = State.Invalid;
        return;
      default:
        // After the one value, or in a state that reads no structural character.
        this.state = State.Invalid;
    }
  }

  private startValue(code: number): void {
    this.lastWasComma = false;
    if (code === 0x7b || code === 0x5b) {
      const isArray = code === 0x5b;
      if (this.containers.length >= MAX_DEPTH) {
        this.state = State.Invalid;
        return;
      }
      this.sink.openContainer(isArray);
      this.containers.push(isArray);
      this.expectKey = !isArray;
      this.state = State.Value;
      return;
    }
    if (code === 0x22) return this.startString(false);
    if (code === 0x2d || (code >= 0x30 && code <= 0x39)) {
      this.state = State.Number;
    } else if (code === 0x74 || code === 0x66 || code === 0x6e) {
      this.state = State.Literal;
    } else {
      this.state = State.Invalid;
      return;
    }
    this.token = '';
    this.tokenKeep = this.sink.wantsScalar();
  }

  private endToken(): void {
    const token = this.token;
    this.token = '';
    let value: number | boolean | null;
    if (this.state === State.Number) {
      if (!this.tokenKeep) return this.valueDone();
      if (!/^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(token)) {
        this.state = State.Invalid;
        return;
      }
      value = Number(token);
    } else if (token === 'true') value = true;
    else if (token === 'false') value = false;
    else if (token === 'null') value = null;
    else {
      this.state = State.Invalid;
      return;
    }
    if (this.tokenKeep) this.sink.value(value);
    this.valueDone();
  }

  private startString(isKey: boolean): void {
    this.lastWasComma = false;
    this.stringIsKey = isKey;
    this.stringRoom = this.sink.stringLimit(isKey);
    this.stringParts = this.stringRoom >= 0 ? [] : undefined;
    this.state = State.String;
  }

  /**
   * Reads string text up to the string's end or the write's; returns where it stopped. Escapes are read in the run
   * (Python's `json.dumps` escapes every non-ASCII character); one cut by the write's end goes on in the states.
   */
  private readString(text: string, from: number): number {
    let i = from;
    for (;;) {
      let stop = i;
      if (i < text.length && !isSpecial(text.charCodeAt(i))) {
        SPECIAL.lastIndex = i;
        const match = SPECIAL.exec(text);
        stop = match === null ? text.length : match.index;
        this.appendString(text.slice(i, stop));
        if (match === null) return text.length;
      }
      if (stop === text.length) return stop;
      const code = text.charCodeAt(stop);
      if (code === 0x22) {
        this.endString();
        return stop + 1;
      }
      if (code !== 0x5c) {
        // A raw control character inside a string: not JSON.
        this.state = State.Invalid;
        return stop + 1;
      }
      const escaped = text.charCodeAt(stop + 1);
      const end = escaped === 0x75 ? stop + 6 : stop + 2;
      if (end > text.length) {
        this.state = State.Escape;
        return stop + 1;
      }
      this.escaped(escaped === 0x75 ? hexUnit(text, stop + 2) : ESCAPES[escaped]);
      if (this.state === State.Invalid) return stop + 1;
      i = end;
    }
  }

  /** The character after a backslash that ended the last write. */
  private escape(code: number): void {
    if (code !== 0x75) return this.escaped(ESCAPES[code]);
    this.unicode = '';
    this.state = State.Unicode;
  }

  /** An escape was read: the text it stands for, or undefined when it is not one. */
  private escaped(piece: string | undefined): void {
    if (piece !== undefined) this.appendString(piece);
    this.state = piece === undefined ? State.Invalid : State.String;
  }

  private appendString(piece: string): void {
    if (this.stringParts === undefined) return;
    this.stringRoom -= piece.length;
    if (this.stringRoom < 0) {
      this.stringParts = undefined;
      this.sink.stringDropped();
      return;
    }
    this.stringParts.push(piece);
  }

  private endString(): void {
    const kept = this.stringParts?.join('');
    this.stringParts = undefined;
    if (this.stringIsKey) {
      this.sink.key(kept);
      this.expectKey = false;
      this.state = State.AfterKey;
      return;
    }
    if (kept !== undefined) this.sink.value(kept);
    this.valueDone();
  }

  private close(isArray: boolean): void {
    if (this.containers.pop() !== isArray) {
      this.state = State.Invalid;
      return;
    }
    this.sink.closeContainer();
    // The enclosing object, if any, had its member name before this value.
    this.expectKey = false;
    this.valueDone();
  }

  private valueDone(): void {
    this.lastWasComma = false;
    this.state = this.containers.length === 0 ? State.Done : State.AfterValue;
  }
}
