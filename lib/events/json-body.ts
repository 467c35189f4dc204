import { JsonScanner } from './json-scanner';
import type { JsonValueSink } from './json-scanner';

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
 * - a body nested too deep is not read (see json-scanner.ts).
 *
 * The result is what `JSON.parse` would return minus what was skipped; invalid JSON gives `invalid`.
 */
export class JsonBodyReader {
  private readonly value: BudgetedValue;
  private readonly scanner: JsonScanner;

  constructor(budget: number) {
    this.value = new BudgetedValue(budget);
    this.scanner = new JsonScanner(this.value);
  }

  get invalid(): boolean {
    return this.scanner.invalid;
  }

  /** Whether any non-whitespace text was seen: an empty body is no body, not invalid JSON. */
  get empty(): boolean {
    return this.scanner.empty;
  }

  /** Something was dropped for the budget. */
  get truncated(): boolean {
    return this.value.truncated;
  }

  write(text: string): void {
    this.scanner.write(text);
  }

  /** The value read, once the whole body has been written; `undefined` for an empty or invalid body. */
  end(): unknown {
    return this.scanner.end() ? this.value.root : undefined;
  }
}

/** Fields kept after the budget is spent, so that a body's usage survives any amount of text before it. */
const OVERFLOW_FIELDS = 1024;
/** Longest string kept after the budget is spent (a model name, a finish reason, an error message). */
const OVERFLOW_STRING = 256;
const OVERFLOW_DEPTH = 3;
/** What a kept number, boolean, null or container counts against the budget. */
const VALUE_COST = 8;

type Container = Record<string, unknown> | unknown[];

interface Frame {
  /** `undefined`: the container is being skipped. */
  value: Container | undefined;
  isArray: boolean;
  /** The member name whose value comes next (objects); `undefined` when the name was not kept. */
  key: string | undefined;
}

/** Builds the value from what the scanner reads, keeping what fits the budget and what readers need past it. */
class BudgetedValue implements JsonValueSink {
  root: unknown;
  truncated = false;
  private readonly stack: Frame[] = [];
  private kept = 0;
  private overflowFields = 0;

  constructor(private readonly budget: number) {}

  openContainer(isArray: boolean): void {
    const value: Container | undefined = this.keepValue(true) ? (isArray ? [] : {}) : undefined;
    if (value !== undefined) {
      this.kept += VALUE_COST;
      this.place(value);
    }
    this.stack.push({ value, isArray, key: undefined });
  }

  closeContainer(): void {
    this.stack.pop();
  }

  stringLimit(isKey: boolean): number {
    if (isKey) return this.top()?.value !== undefined ? Math.max(OVERFLOW_STRING, this.budget - this.kept) : -1;
    if (!this.keepValue(false)) return -1;
    return this.kept < this.budget ? this.budget - this.kept : OVERFLOW_STRING;
  }

  stringDropped(): void {
    this.truncated = true;
  }

  key(name: string | undefined): void {
    (this.top() as Frame).key = name;
    if (name !== undefined) this.kept += name.length;
  }

  wantsScalar(): boolean {
    // Scalars inside arrays are what makes bodies large (vectors, token ids) and no reader reads them.
    return this.top()?.isArray !== true && this.keepValue(false);
  }

  value(value: string | number | boolean | null): void {
    this.kept += typeof value === 'string' ? value.length + VALUE_COST : VALUE_COST;
    this.place(value);
  }

  private top(): Frame | undefined {
    return this.stack[this.stack.length - 1];
  }

  /** Whether the next value is kept; past the budget only shallow object members are. */
  private keepValue(container: boolean): boolean {
    const frame = this.top();
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
    const frame = this.top();
    if (frame === undefined) {
      this.root = value;
    } else if (frame.isArray) {
      (frame.value as unknown[]).push(value);
    } else {
      // Own data property even for "__proto__", as JSON.parse does.
      Object.defineProperty(frame.value, frame.key as string, { value, enumerable: true, writable: true, configurable: true });
    }
  }
}
