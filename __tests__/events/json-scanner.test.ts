/**
 * The incremental JSON syntax scanner: it accepts what JSON.parse accepts (but for nesting and number lengths no LLM
 * body comes near), however the text is cut, and
 * hands the sink every value in order, so a sink that keeps everything rebuilds JSON.parse's value. What the sink
 * declines is not kept, and a declined number is not checked beyond its characters.
 */
import fc from 'fast-check';
import { JsonScanner } from '../../lib/events/json-scanner';
import type { JsonValueSink } from '../../lib/events/json-scanner';

/** A sink that keeps what `keep` allows and builds the value, recording every call. */
class BuildingSink implements JsonValueSink {
  root: unknown;
  readonly calls: string[] = [];
  dropped = 0;
  private readonly stack: { value: Record<string, unknown> | unknown[]; key: string | undefined }[] = [];

  constructor(private readonly keep: { stringLimit?: number; scalars?: boolean } = {}) {}

  openContainer(isArray: boolean): void {
    this.calls.push(isArray ? '[' : '{');
    const value = isArray ? [] : {};
    this.place(value);
    this.stack.push({ value, key: undefined });
  }

  closeContainer(): void {
    this.calls.push('close');
    this.stack.pop();
  }

  stringLimit(): number {
    return this.keep.stringLimit ?? Number.MAX_SAFE_INTEGER;
  }

  stringDropped(): void {
    this.dropped++;
  }

  key(name: string | undefined): void {
    this.calls.push(`key ${String(name)}`);
    const top = this.stack[this.stack.length - 1];
    if (top !== undefined) top.key = name;
  }

  wantsScalar(): boolean {
    return this.keep.scalars ?? true;
  }

  value(value: string | number | boolean | null): void {
    this.calls.push(`value ${JSON.stringify(value)}`);
    this.place(value);
  }

  private place(value: unknown): void {
    const top = this.stack[this.stack.length - 1];
    if (top === undefined) this.root = value;
    else if (Array.isArray(top.value)) top.value.push(value);
    else Object.defineProperty(top.value, top.key as string, { value, enumerable: true, writable: true, configurable: true });
  }
}

function scan(text: string, cuts: readonly number[] = [], sink = new BuildingSink()): { complete: boolean; scanner: JsonScanner; sink: BuildingSink } {
  const scanner = new JsonScanner(sink);
  let last = 0;
  for (const cut of [...cuts].sort((a, b) => a - b).concat(text.length)) {
    const at = Math.min(Math.max(last, cut), text.length);
    scanner.write(text.slice(last, at));
    last = at;
  }
  return { complete: scanner.end(), scanner, sink };
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe('JsonScanner', () => {
  it('rebuilds what JSON.parse returns, however the text is cut', () => {
    fc.assert(
      fc.property(fc.json(), fc.array(fc.nat(500), { maxLength: 12 }), (text, cuts) => {
        const { complete, scanner, sink } = scan(text, cuts);
        expect(complete).toBe(true);
        expect(scanner.invalid).toBe(false);
        expect(sink.root).toEqual(JSON.parse(text));
      }),
      { numRuns: 400 },
    );
  });

  it('accepts a text exactly when JSON.parse does, cut or not', () => {
    const almostJson = fc.oneof(
      fc.string(),
      fc.json().map((text) => text.slice(0, -1)),
      fc.json().map((text) => `${text},`),
      fc.tuple(fc.json(), fc.nat(), fc.constantFrom(...'{}[],:"\\tfn0-.eE+ ')).map(([text, at, ch]) => text.slice(0, at % (text.length + 1)) + ch + text.slice(at % (text.length + 1))),
    );
    fc.assert(
      fc.property(almostJson, fc.array(fc.nat(200), { maxLength: 6 }), (text, cuts) => {
        const { complete, scanner } = scan(text, cuts);
        const blank = !/[^\t\n\r ]/.test(text);
        expect(complete).toBe(parses(text));
        expect(scanner.invalid).toBe(!parses(text) && !blank);
      }),
      { numRuns: 1500 },
    );
  });

  it('tells an empty text from invalid JSON', () => {
    for (const text of ['', '  \r\n\t ']) {
      const { complete, scanner } = scan(text);
      expect([complete, scanner.invalid, scanner.empty]).toEqual([false, false, true]);
    }
    const { scanner } = scan('{');
    expect([scanner.invalid, scanner.empty]).toEqual([true, false]);
  });

  it('decodes escapes, \\u sequences and surrogate pairs, also when a cut falls inside them', () => {
    const text = '{"k\\u00e9y":"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\ud83c\\udf0d"}';
    for (let cut = 0; cut <= text.length; cut++) {
      expect(scan(text, [cut]).sink.root).toEqual(JSON.parse(text));
    }
  });

  it('reads text made of escapes alone (as json.dumps writes non-ASCII text) and refuses a bad escape wherever it is cut', () => {
    const escaped = JSON.stringify({ text: '天气 naïve "quoted" \\ \u0001'.repeat(20) }).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    for (const cut of [0, 1, 7, 100, escaped.length - 3]) expect(scan(escaped, [cut, cut + 3]).sink.root).toEqual(JSON.parse(escaped));
    for (const bad of ['["\\x"]', '["\\u12G4"]', '["\\U0041"]', '["\\u004"]', '["a\\']) {
      for (let cut = 0; cut <= bad.length; cut++) {
        const { scanner, complete } = scan(bad, [cut]);
        expect([bad, cut, scanner.invalid || !complete]).toEqual([bad, cut, true]);
      }
    }
  });

  it('hands the sink every value in order, member names before their values', () => {
    const { sink } = scan('{"a": [1, "x", true, null, {}], "b": -2.5e3}');
    expect(sink.calls).toEqual(['{', 'key a', '[', 'value 1', 'value "x"', 'value true', 'value null', '{', 'close', 'close', 'key b', 'value -2500', 'close']);
  });

  it('drops a string longer than the sink allows and says so', () => {
    const { sink, complete } = scan('{"short": "abc", "long": "abcdefgh"}', [], new BuildingSink({ stringLimit: 5 }));
    expect(complete).toBe(true);
    expect(sink.dropped).toBe(1);
    expect(sink.calls).toEqual(['{', 'key short', 'value "abc"', 'key long', 'close']);
  });

  it('does not check a number the sink declines beyond its characters, but always checks a literal', () => {
    const declined = new BuildingSink({ scalars: false });
    expect(scan('[1.2.3, 00, -]', [], declined).complete).toBe(true);
    expect(declined.calls).toEqual(['[', 'close']);
    expect(scan('[1.2.3]').scanner.invalid).toBe(true);
    expect(scan('[tru]', [], new BuildingSink({ scalars: false })).scanner.invalid).toBe(true);
  });

  it('refuses nesting deeper than any LLM body, without recursion', () => {
    expect(scan(`${'['.repeat(256)}${']'.repeat(256)}`).complete).toBe(true);
    const deep = scan(`${'['.repeat(257)}${']'.repeat(257)}`);
    expect(deep.scanner.invalid).toBe(true);
    expect(scan('['.repeat(1_000_000)).scanner.invalid).toBe(true);
  });

  it('refuses a number or literal run longer than any meaningful one', () => {
    expect(scan(`{"n": ${'1'.repeat(64)}}`).complete).toBe(true);
    expect(scan(`{"n": ${'1'.repeat(65)}}`).scanner.invalid).toBe(true);
  });
});
