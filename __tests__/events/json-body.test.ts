/**
 * The unary body reader: the same value as JSON.parse (less the numbers inside arrays, which no reader reads),
 * however the text is cut; invalid JSON is invalid; and past the budget its text is dropped while the small
 * fields (model, usage, finish reason, error) are still read.
 */
import fc from 'fast-check';
import { JsonBodyReader } from '../../lib/events/json-body';
import { seededRandom } from '../support/prng';

function read(text: string, cuts: number[], budget = Number.MAX_SAFE_INTEGER): { value: unknown; invalid: boolean; truncated: boolean } {
  const reader = new JsonBodyReader(budget);
  let last = 0;
  for (const cut of [...cuts].sort((a, b) => a - b).concat(text.length)) {
    reader.write(text.slice(last, Math.max(last, cut)));
    last = Math.max(last, cut);
  }
  const value = reader.end();
  return { value, invalid: reader.invalid, truncated: reader.truncated };
}

/** What the reader keeps of a parsed value: arrays without their numbers, booleans and nulls. */
function withoutArrayScalars(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((item) => item !== null && typeof item === 'object' || typeof item === 'string').map(withoutArrayScalars);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, withoutArrayScalars(item)]));
  return value;
}

describe('JsonBodyReader', () => {
  it('reads what JSON.parse reads, however the text is cut', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (text, cuts) => {
        const got = read(text, cuts.map((cut) => cut % (text.length + 1)));
        expect(got.invalid).toBe(false);
        expect(got.value).toEqual(withoutArrayScalars(JSON.parse(text)));
      }),
      { numRuns: 1500, seed: 20261201 },
    );
  });

  it('keeps "__proto__" as a member, as JSON.parse does', () => {
    const { value } = read('{"__proto__":{"x":1},"model":"m"}', [5]);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value as object)).toEqual(['__proto__', 'model']);
  });

  const INVALID = ['{', '[1,]', '{"a":1,}', '{"a" 1}', '[1 2]', '"abc', 'tru', '01', '{"a":1}x', '{,}', '[,1]', '"\u0001"', '"\\x"', '1.', '-', '{"a":1}}', '["\\u12"]', '['.repeat(100_000)];
  it.each(INVALID.map((text) => [text.length > 20 ? `${text.slice(0, 4)}… (${text.length} characters)` : JSON.stringify(text), text]))(
    'refuses invalid JSON %s',
    (_name, text) => {
      expect(() => JSON.parse(text)).toThrow();
      const got = read(text, [1, 3]);
      expect(got.invalid).toBe(true);
      expect(got.value).toBeUndefined();
    },
  );

  it('past its budget drops the text but keeps model, usage, finish reason and error, whatever comes first', () => {
    const body = JSON.stringify({
      id: 'c1',
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'w '.repeat(200_000) }, logprobs: { content: Array.from({ length: 5000 }, (_, i) => ({ token: 't', logprob: -i })) }, finish_reason: 'length' }],
      usage: { prompt_tokens: 3, completion_tokens: 7, completion_tokens_details: { reasoning_tokens: 2 } },
      error: null,
    });
    const random = seededRandom(4);
    const got = read(body, Array.from({ length: 40 }, () => Math.floor(random() * body.length)), 4096);
    expect(got.truncated).toBe(true);
    expect(got.value).toMatchObject({
      model: 'm',
      choices: [{ index: 0, finish_reason: 'length' }],
      usage: { prompt_tokens: 3, completion_tokens: 7, completion_tokens_details: { reasoning_tokens: 2 } },
      error: null,
    });
    expect(JSON.stringify(got.value).length).toBeLessThan(8192);
  });

  it('keeps nothing of an embeddings body but its shape, model and usage', () => {
    const body = JSON.stringify({
      object: 'list',
      data: Array.from({ length: 50 }, (_, index) => ({ object: 'embedding', index, embedding: Array.from({ length: 1536 }, (_, i) => Math.sin(i + index)) })),
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 123, total_tokens: 123 },
    });
    const got = read(body, [1000, 50_000]);
    expect(got.truncated).toBe(false);
    expect(got.value).toMatchObject({ model: 'text-embedding-3-small', usage: { prompt_tokens: 123 } });
    expect(JSON.stringify(got.value).length).toBeLessThan(4000);
  });
});
