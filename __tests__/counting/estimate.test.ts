import { estimateTokens } from '../../lib/counting/estimate';

describe('estimateTokens (default estimator)', () => {
  it('counts 0 for the empty string', () => {
    expect(estimateTokens('')).toBe(0);
  });

  it.each(['Hello', ' the', ',', ' World', '\n\n', '    ', ' understanding', '世界', ' мир', '123'])(
    'counts a delta that is one token of a typical vocabulary (%j) as 1',
    (delta) => {
      expect(estimateTokens(delta)).toBe(1);
    },
  );

  it('grows with the length of the text', () => {
    const sentence = 'The quick brown fox jumps over the lazy dog, and then it runs away into the forest. ';
    let previous = 0;
    for (let repeat = 1; repeat <= 8; repeat *= 2) {
      const n = estimateTokens(sentence.repeat(repeat));
      expect(n).toBeGreaterThan(previous);
      previous = n;
    }
    // 19 tokens in o200k and cl100k.
    expect(estimateTokens(sentence)).toBeGreaterThanOrEqual(15);
    expect(estimateTokens(sentence)).toBeLessThanOrEqual(24);
  });

  it('counts CJK text at about one token per one or two characters', () => {
    const text = '今天天气很好，我们一起去公园散步吧。'; // 18 characters
    const n = estimateTokens(text);
    expect(n).toBeGreaterThanOrEqual(9);
    expect(n).toBeLessThanOrEqual(22);
  });

  it('counts each emoji as at least one token', () => {
    expect(estimateTokens('🎉🎉🎉🎉')).toBeGreaterThanOrEqual(4);
    expect(estimateTokens('👍')).toBeGreaterThanOrEqual(1);
  });

  it('counts source code by its pieces, not its indentation', () => {
    const code = '        if (value === undefined) {\n            return null;\n        }\n';
    const n = estimateTokens(code);
    expect(n).toBeGreaterThanOrEqual(12);
    expect(n).toBeLessThanOrEqual(24);
  });

  it('returns a non-negative integer for any string', () => {
    const samples = [
      ' ',
      '\u0000',
      '\uD83D', // lone surrogate
      '\uDE00',
      'a'.repeat(10000),
      ' '.repeat(5000),
      '🙂'.repeat(300),
      'e\u0301\u0301\u0301',
      '\r\n\r\n',
      String.fromCharCode(...Array.from({ length: 512 }, (_, i) => i * 127)),
    ];
    for (const s of samples) {
      const n = estimateTokens(s);
      expect(Number.isInteger(n)).toBe(true);
      expect(n).toBeGreaterThanOrEqual(s.length > 0 ? 1 : 0);
    }
  });

  it('is deterministic (pure)', () => {
    const s = 'const x = foo(bar, 42); // 😀 日本語';
    expect(estimateTokens(s)).toBe(estimateTokens(s));
  });
});

describe('estimateTokens against a real tokenizer (regression guard for docs/accuracy.md)', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const o200k = require('gpt-tokenizer/cjs/encoding/o200k_base') as {
    encode(text: string): number[];
    decode(ids: number[]): string;
  };
  const paragraph =
    'A process is an independent program in execution. The operating system gives every process its own ' +
    'virtual address space, its own file descriptor table, and its own set of security credentials. Creating ' +
    'a thread is much cheaper than creating a process, because the kernel does not need to change the page ' +
    'tables.\n\n```ts\nfunction add(a: number, b: number): number {\n    return a + b;\n}\n```\n';
  const ids = o200k.encode(paragraph);

  it('counts an engine stream (one token per delta) within 2%', () => {
    const estimated = ids.reduce((sum, id) => sum + estimateTokens(o200k.decode([id])), 0);
    expect(Math.abs(estimated - ids.length) / ids.length).toBeLessThanOrEqual(0.02);
  });

  // The corpus median is 7–8% (docs/accuracy.md); one short paragraph with code varies more (+13% today).
  it('counts multi-token deltas (5 tokens each) within 20%', () => {
    let estimated = 0;
    for (let i = 0; i < ids.length; i += 5) estimated += estimateTokens(o200k.decode(ids.slice(i, i + 5)));
    expect(Math.abs(estimated - ids.length) / ids.length).toBeLessThanOrEqual(0.2);
  });
});
