import { estimateTokens } from '../../lib/counting/estimate';
import { StreamEstimator } from '../../lib/counting/stream-estimator';
import { o200kTokens, oneTokenStream, pieces } from '../support/token-streams';

// Text written for these tests (the benchmark has its own corpus): what a stream's shape must not change.
const ENGLISH =
  'Sourdough starts with a culture of wild yeast and lactic bacteria. Feed it flour and water every day, keep it ' +
  'somewhere warm, and within a week it will double in size a few hours after each feeding. Mix the dough, let it ' +
  'rest, fold it gently four times, then shape the loaf and proof it overnight in the fridge before baking it hot.';
const KOREAN = '오늘은 날씨가 맑아서 공원에 산책하러 갔습니다. 나무 아래에서 책을 읽고, 친구와 커피를 마셨어요. 저녁에는 집에서 된장찌개를 끓여 먹었습니다.';
const EMOJI = 'Happy birthday 🎂🎈! Wishing you a year full of adventures ✈️🌍, good food 🍜🍣 and lots of laughs 😂🙌';

/** The count a stream of `deltas` adds up to, and each delta's share (checked never negative). */
function countStream(deltas: string[]): { total: number; each: number[] } {
  const estimator = new StreamEstimator();
  const each = deltas.map((d) => estimator.count(d));
  for (const n of each) expect(Number.isInteger(n) && n >= 0).toBe(true);
  return { total: each.reduce((a, b) => a + b, 0), each };
}

describe('StreamEstimator: one token per delta', () => {
  it.each([
    ['English', ENGLISH],
    ['Korean', KOREAN],
    ['emoji', EMOJI],
  ])('counts an engine stream of %s within 10%% of its o200k tokens, whichever UTF-8 convention', (_, text) => {
    for (const convention of ['empty', 'merge'] as const) {
      const { deltas, tokens } = oneTokenStream(text, convention);
      const { total } = countStream(deltas);
      expect(Math.abs(total - tokens) / tokens).toBeLessThanOrEqual(0.1);
    }
  });

  it('counts an empty delta after text as one token, and not the role chunk\'s empty content', () => {
    const estimator = new StreamEstimator();
    expect(estimator.count('')).toBe(0);
    expect(estimator.count('')).toBe(0);
    expect(estimator.count('Hi')).toBe(1);
    expect(estimator.count('')).toBe(1);
    expect(estimator.count('')).toBe(1);
    // After empty deltas, the character they held back is its own one token.
    expect(estimator.count(' 🎂')).toBe(1);
  });

  it('keeps a one-token delta at one, however long', () => {
    const estimator = new StreamEstimator();
    for (const delta of [' understanding', ' the', '\n\n', '        ', ' 안녕', '。']) expect(estimator.count(delta)).toBe(1);
  });
});

describe('StreamEstimator: text cut into fixed-size pieces', () => {
  it.each([20, 50])('counts %i-character pieces of English as one text, not as cut words', (size) => {
    const text = ENGLISH.repeat(3);
    const whole = estimateTokens(text);
    const { total } = countStream(pieces(text, size));
    expect(Math.abs(total - whole) / whole).toBeLessThanOrEqual(0.05);
    const tokens = o200kTokens(text);
    expect(Math.abs(total - tokens) / tokens).toBeLessThanOrEqual(0.15);
  });

  it('does not count a word cut in two as two words', () => {
    const text = ENGLISH.repeat(3);
    const perDelta = pieces(text, 20).reduce((a, d) => a + estimateTokens(d), 0);
    const { total } = countStream(pieces(text, 20));
    // Each delta on its own counts most cut words twice; the stream counts them once.
    expect(perDelta).toBeGreaterThan(total * 1.1);
  });

  it('gives the same count wherever the cuts fall', () => {
    const text = (ENGLISH + '\n\n' + KOREAN + '\n\n' + EMOJI).repeat(2);
    const totals = [0, 3, 7, 11].map((offset) => countStream(pieces(text, 20, offset)).total);
    const lo = Math.min(...totals);
    const hi = Math.max(...totals);
    expect((hi - lo) / lo).toBeLessThanOrEqual(0.05);
  });

  it('counts Korean pieces close to the whole text\'s estimate', () => {
    const text = KOREAN.repeat(4);
    const whole = estimateTokens(text);
    const { total } = countStream(pieces(text, 50));
    expect(Math.abs(total - whole) / whole).toBeLessThanOrEqual(0.1);
  });

  it('goes back to counting each delta when the stream changes shape halfway', () => {
    const first = pieces(ENGLISH, 20);
    const rest = oneTokenStream(ENGLISH, 'empty').deltas;
    const { total, each } = countStream([...first, ...rest]);
    const tail = each.slice(first.length).reduce((a, b) => a + b, 0);
    const tokens = o200kTokens(ENGLISH);
    expect(Math.abs(tail - tokens) / tokens).toBeLessThanOrEqual(0.1);
    expect(total).toBeGreaterThan(tail);
  });
});

describe('StreamEstimator: text cut word by word', () => {
  /** Each word with the whitespace after it, as the AI SDK's smoothStream() cuts text by default. */
  const words = (text: string): string[] => text.match(/\s*\S+\s*/g) ?? [];

  it("counts a word stream's trailing spaces with the words they start, not as tokens of their own", () => {
    const deltas = words(ENGLISH);
    const { total } = countStream(deltas);
    const tokens = o200kTokens(ENGLISH);
    expect(Math.abs(total - tokens) / tokens).toBeLessThanOrEqual(0.1);
    // Counted one by one, as engine deltas, the spaces would double the count.
    expect(deltas.reduce((sum, delta) => sum + estimateTokens(delta), 0)).toBeGreaterThan(1.6 * tokens);
  });

  it('keeps counting an engine stream as it did: its deltas start with their space', () => {
    const { deltas, tokens } = oneTokenStream(ENGLISH, 'empty');
    expect(countStream(deltas).total).toBe(tokens);
    // Two or three engine deltas that happen to end in a space do not make it a word stream.
    const estimator = new StreamEstimator();
    expect([' the', ' end ', ' of ', ' it'].map((delta) => estimator.count(delta))).toEqual([1, 2, 2, 1]);
  });
});

describe('StreamEstimator: bad input', () => {
  it('never throws and never returns a negative or fractional count', () => {
    const estimator = new StreamEstimator();
    const inputs = ['', ' ', '   ', '\n', '\t\t', '', '\uD83D', '\uDE00', 'x'.repeat(20), 'y'.repeat(20), 'z'.repeat(20), 'w'.repeat(20), '', ' '.repeat(20), 'é\u0301', '🙂'.repeat(50), ''];
    for (let round = 0; round < 3; round++) {
      for (const input of inputs) {
        const n = estimator.count(input);
        expect(Number.isInteger(n)).toBe(true);
        expect(n).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('counts whitespace-only deltas of an engine stream as one token each', () => {
    const { each } = countStream(['def', ' f', '    ', '\n\n', ' ', '\t', '\n']);
    expect(each).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });
});
