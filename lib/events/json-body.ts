/**
 * Reads a unary JSON body as it is written, with bounded memory whatever its size: the value is built as the text
 * arrives, but what no reader needs is never kept. A reader wants the model, usage, finish reasons, an error and,
 * only when a body states no usage, its text; nobody wants the numbers inside arrays (embedding vectors, token
 * ids, Ollama's `context`), which are most of a large body. So:
 *
 * - numbers, booleans and nulls inside arrays are skipped (the array is kept, shorter);
 * - everything else is kept while the kept text stays within `budget` characters; past it, strings and array
 *   elements are dropped (`truncated` says so), but the small fields near the top (object members up to depth 3:
 *   `model`, `usage.*`, `choices[i].finish_reason`, `error.*`, …) are still kept, up to `OVERFLOW_FIELDS` of them;
 * - a body nested deeper than `MAX_DEPTH` is not read (no LLM body is; a hostile one would cost a frame a level).
 *
 * The result is what `JSON.parse` would return minus what was skipped; invalid JSON gives `invalid`.
 */

/** Fields kept after the budget is spent, so that a body's usage survives any amount of text before it. */
const OVERFLOW_FIELDS = 1024;
/** Longest string kept after the budget is spent (a model name, a finish reason, an error message). */
const OVERFLOW_STRING = 256;
const OVERFLOW_DEPTH = 3;
const MAX_DEPTH = 256;
/** What a kept number, boolean, null or container counts against the budget. */
const VALUE_COST = 8;

type Container = Record<string, unknown> | unknown[];

interface Frame {
  /** `undefined`: the container is being skipped. */
  value: Container | undefined;
  isArray: boolean;
  /** The member name whose value comes next (objects). */
  key: string | undefined;
  /** Expecting a member name (objects) rather than a value. */
  expectKey: boolean;
}

const enum State {
  Value,
  AfterValue,
  AfterKey,
  String,
  Escape,
  Unicode,
  Number,
  Literal,
  Done,
  Invalid,
}

export class JsonBodyReader {
  private state = State.Value;
  private readonly stack: Frame[] = [];
  /** The last structural character was a comma: a closing bracket may not follow. */
  private lastWasComma = false;
  private root: unknown;
  private hasRoot = false;
  private kept = 0;
  private overflowFields = 0;
  private stringParts: string[] | undefined;
  private stringLength = 0;
  private stringIsKey = false;
  private stringKeep = false;
  private stringLimit = 0;
  private unicode = '';
  private token = '';
  private tokenKeep = false;
  /** Something was dropped for the budget. */
  truncated = false;
  private seenText = false;

  constructor(private readonly budget: number) {}

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
        case State.String: {
          i = this.readString(text, i);
          continue;
        }
        case State.Escape: {
          this.escape(code);
          i++;
          continue;
        }
        case State.Unicode: {
          this.unicode += text[i];
          if (this.unicode.length === 4) {
            if (!/^[0-9a-fA-F]{4}$/.test(this.unicode)) this.state = State.Invalid;
            else {
              this.appendString(String.fromCharCode(parseInt(this.unicode, 16)));
              this.state = State.String;
            }
          }
          i++;
          continue;
        }
        case State.Number:
        case State.Literal: {
          // Scanned as a run: a large body is mostly numbers.
          let end = i;
          while (end < length && isTokenChar(text.charCodeAt(end))) end++;
          if (this.tokenKeep || this.state === State.Literal) {
            this.token = this.token.length === 0 ? text.slice(i, end) : this.token + text.slice(i, end);
            if (this.token.length > 64) this.state = State.Invalid;
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

  /** The value read, once the whole body has been written; `undefined` for an empty or invalid body. */
  end(): unknown {
    if (this.state === State.Number || this.state === State.Literal) this.endToken();
    if (this.state !== State.Done) {
      if (this.seenText) this.state = State.Invalid;
      return undefined;
    }
    return this.root;
  }

  private structural(code: number): void {
    const frame = this.stack[this.stack.length - 1];
    switch (this.state) {
      case State.Value:
        if (frame !== undefined && frame.expectKey) {
          // Only a member name, or the end of an object not after a comma, may come here.
          if (code === 0x22) return this.startString(true);
          if (code === 0x7d && !this.lastWasComma) return this.close(false);
          this.state = State.Invalid;
          return;
        }
        if (code === 0x5d && frame?.isArray === true && !this.lastWasComma) return this.close(true);
        return this.startValue(code);
      case State.AfterKey:
        if (code === 0x3a) this.state = State.Value;
        else this.state = State.Invalid;
        return;
      case State.AfterValue:
        if (frame === undefined) {
          this.state = State.Invalid;
          return;
        }
        if (code === 0x2c) {
          if (!frame.isArray) frame.expectKey = true;
          this.lastWasComma = true;
          this.state = State.Value;
          return;
        }
        if (code === (frame.isArray ? 0x5d : 0x7d)) return this.close(frame.isArray);
        this.state = State.Invalid;
        return;
      case State.Done:
        this.state = State.Invalid;
        return;
      default:
        this.state = State.Invalid;
    }
  }

  private startValue(code: number): void {
    const frame = this.stack[this.stack.length - 1];
    this.lastWasComma = false;
    if (code === 0x7b || code === 0x5b) {
      const isArray = code === 0x5b;
      if (this.stack.length >= MAX_DEPTH) {
        this.state = State.Invalid;
        return;
      }
      const keep = this.keepValue(frame, true);
      const value: Container | undefined = keep ? (isArray ? [] : {}) : undefined;
      if (value !== undefined) {
        this.kept += VALUE_COST;
        this.place(value);
      }
      this.stack.push({ value, isArray, key: undefined, expectKey: !isArray });
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
    // Scalars inside arrays are what makes bodies large (vectors, token ids) and no reader reads them.
    this.tokenKeep = frame?.isArray !== true && this.keepValue(frame, false);
  }

  private endToken(): void {
    const token = this.token;
    this.token = '';
    let value: unknown;
    if (this.state === State.Number) {
      // A skipped number (inside an array) is not kept, so not checked beyond its characters.
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
    if (this.tokenKeep) {
      this.kept += VALUE_COST;
      this.place(value);
    }
    this.valueDone();
  }

  private startString(isKey: boolean): void {
    this.lastWasComma = false;
    const frame = this.stack[this.stack.length - 1];
    this.stringIsKey = isKey;
    this.stringParts = [];
    this.stringLength = 0;
    if (isKey) {
      this.stringKeep = frame?.value !== undefined;
      this.stringLimit = this.stringKeep ? Math.max(OVERFLOW_STRING, this.budget - this.kept) : 0;
    } else {
      this.stringKeep = this.keepValue(frame, false);
      this.stringLimit = this.kept < this.budget ? this.budget - this.kept : OVERFLOW_STRING;
    }
    this.state = State.String;
  }

  private readString(text: string, from: number): number {
    SPECIAL.lastIndex = from;
    const match = SPECIAL.exec(text);
    const stop = match === null ? text.length : match.index;
    if (stop > from) this.appendString(text.slice(from, stop));
    if (match === null) return text.length;
    const code = text.charCodeAt(stop);
    if (code === 0x22) {
      this.endString();
    } else if (code === 0x5c) {
      this.state = State.Escape;
    } else {
      // A raw control character inside a string: not JSON.
      this.state = State.Invalid;
    }
    return stop + 1;
  }

  private escape(code: number): void {
    const simple = ESCAPES[code];
    if (simple !== undefined) {
      this.appendString(simple);
      this.state = State.String;
    } else if (code === 0x75) {
      this.unicode = '';
      this.state = State.Unicode;
    } else {
      this.state = State.Invalid;
    }
  }

  private appendString(piece: string): void {
    if (!this.stringKeep) return;
    this.stringLength += piece.length;
    if (this.stringLength > this.stringLimit) {
      this.stringKeep = false;
      this.stringParts = undefined;
      this.truncated = true;
      return;
    }
    (this.stringParts as string[]).push(piece);
  }

  private endString(): void {
    const frame = this.stack[this.stack.length - 1];
    const kept = this.stringKeep ? (this.stringParts as string[]).join('') : undefined;
    this.stringParts = undefined;
    if (this.stringIsKey) {
      (frame as Frame).key = kept;
      (frame as Frame).expectKey = false;
      if (kept !== undefined) this.kept += kept.length;
      this.state = State.AfterKey;
      return;
    }
    if (kept !== undefined) {
      this.kept += kept.length + VALUE_COST;
      this.place(kept);
    }
    this.valueDone();
  }

  /** Whether the next value (at the top of `frame`) is kept; past the budget only shallow object members are. */
  private keepValue(frame: Frame | undefined, container: boolean): boolean {
    if (frame === undefined) return true;
    if (frame.value === undefined) return false;
    if (!frame.isArray && frame.key === undefined) return false;
    if (this.kept < this.budget) return true;
    if ((frame.isArray && !container) || this.stack.length > OVERFLOW_DEPTH || this.overflowFields >= OVERFLOW_FIELDS) {
      this.truncated = true;
      return false;
    }
    this.overflowFields++;
    return true;
  }

  private place(value: unknown): void {
    const frame = this.stack[this.stack.length - 1];
    if (frame === undefined) {
      this.root = value;
      this.hasRoot = true;
    } else if (frame.isArray) {
      (frame.value as unknown[]).push(value);
    } else {
      // Own data property even for "__proto__", as JSON.parse does.
      Object.defineProperty(frame.value, frame.key as string, { value, enumerable: true, writable: true, configurable: true });
    }
  }

  private close(isArray: boolean): void {
    const frame = this.stack.pop() as Frame;
    if (frame.isArray !== isArray) {
      this.state = State.Invalid;
      return;
    }
    this.valueDone();
  }

  private valueDone(): void {
    const frame = this.stack[this.stack.length - 1];
    this.lastWasComma = false;
    if (frame === undefined) {
      this.state = State.Done;
      if (!this.hasRoot) this.hasRoot = true;
      return;
    }
    frame.key = undefined;
    this.state = State.AfterValue;
  }
}

/** The characters that end a run of plain string text: a quote, a backslash, a control character. */
// eslint-disable-next-line no-control-regex -- raw control characters are exactly what JSON strings may not hold
const SPECIAL = /["\\\u0000-\u001f]/g;

const ESCAPES: Readonly<Record<number, string>> = {
  0x22: '"',
  0x5c: '\\',
  0x2f: '/',
  0x62: '\b',
  0x66: '\f',
  0x6e: '\n',
  0x72: '\r',
  0x74: '\t',
};

function isTokenChar(code: number): boolean {
  // Digits, letters of literals and exponents, sign and decimal point.
  return (code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x7a) || code === 0x2d || code === 0x2b || code === 0x2e || code === 0x45;
}
