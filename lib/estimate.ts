/**
 * Default token estimator for one generated text delta, used when a chunk does not state its token count.
 *
 * Design, from bench/accuracy (see bench/ACCURACY.md for the numbers):
 * - Every BPE vocabulary in use (o200k, cl100k, Llama 3, Qwen, …) first splits text with a pre-tokenizer regex
 *   into pieces (a word with its leading space, up to 3 digits, a punctuation run, a whitespace run) and never
 *   merges across pieces. So a delta that holds one piece is, in an engine's one-token-per-chunk stream, almost
 *   always exactly one token, whatever its length (" understanding", "\n\n", "        ", "。\n").
 *   Counting pieces makes one-token streams exact where any length-based rule is off by 20–40%.
 * - A delta with several pieces is a multi-token chunk (hosted APIs, Anthropic); there each piece is a whole
 *   word, and long words, non-ASCII words and punctuation runs cost extra tokens. The weights differ between
 *   the two cases because the one-piece case must not charge for long whole-token words.
 * - One linear scan with charCodeAt, no allocation, no tables: ≈ 0.05 µs for a one-token delta.
 */

/** Tuning knobs; `DEFAULT_WEIGHTS` holds the values chosen by `bench/accuracy/tune.ts`. */
export interface EstimatorWeights {
  /** Letters a one-piece delta may hold and still count 1 (longer: `+1` per `singleWordPerToken` letters). */
  singleWordFree: number;
  singleWordPerToken: number;
  /** The same for each word of a multi-piece delta. */
  multiWordFree: number;
  multiWordPerToken: number;
  /** A non-ASCII letter (accented Latin, Cyrillic, Greek, Indic, …) weighs this many ASCII letters. */
  nonAsciiLetter: number;
  /** CJK characters (Han, kana, Hangul) a one-piece delta may hold for 1 token; beyond: `singleCjkPerChar` each. */
  singleCjkFree: number;
  singleCjkPerChar: number;
  /** Tokens per CJK character beyond the first in a multi-piece delta. */
  multiCjkPerChar: number;
  /** Characters per token in a punctuation run of a multi-piece delta (`}`, `);`, `**`, `-->`). */
  punctPerToken: number;
  /** Tokens per emoji or other astral character when it is the whole delta / inside a longer delta. */
  singleAstral: number;
  multiAstral: number;
}

export const DEFAULT_WEIGHTS: Readonly<EstimatorWeights> = Object.freeze({
  singleWordFree: 14,
  singleWordPerToken: 5,
  multiWordFree: 5,
  multiWordPerToken: 5,
  nonAsciiLetter: 1,
  singleCjkFree: 3,
  singleCjkPerChar: 0.3,
  multiCjkPerChar: 0.7,
  punctPerToken: 3,
  singleAstral: 1.5,
  multiAstral: 2,
});

// Character classes of the scan.
const LOWER = 1;
const UPPER = 2;
const LETTER_NON_ASCII = 3;
const DIGIT = 4;
const SPACE = 5;
const NEWLINE = 6;
const PUNCT = 7;
const CJK = 8;
const ASTRAL = 9; // high surrogate: emoji and other supplementary-plane characters
const JOINER = 10; // low surrogate, variation selector, ZWJ: part of the previous character

function classOf(c: number): number {
  if (c < 128) {
    if (c >= 97 && c <= 122) return LOWER;
    if (c >= 65 && c <= 90) return UPPER;
    if (c >= 48 && c <= 57) return DIGIT;
    if (c === 32 || c === 9) return SPACE;
    if (c === 10 || c === 13) return NEWLINE;
    return PUNCT;
  }
  if (c < 0xc0) return c === 0xa0 ? SPACE : PUNCT; // Latin-1 symbols: « » © ° ¿
  if (c < 0x2000) return c === 0xd7 || c === 0xf7 ? PUNCT : LETTER_NON_ASCII; // Latin ext., Greek, Cyrillic, Indic, …
  if (c < 0x2c00) return c === 0x200d ? JOINER : PUNCT; // general punctuation, arrows, math, dingbats
  if (c < 0x2e80) return LETTER_NON_ASCII;
  if (c < 0x3040) return PUNCT; // CJK symbols and punctuation: 、。「」
  if (c < 0xa000) return CJK;
  if (c >= 0xac00 && c < 0xd7b0) return CJK; // Hangul syllables
  if (c >= 0xd800 && c < 0xdc00) return ASTRAL;
  if (c >= 0xdc00 && c < 0xe000) return JOINER;
  if (c >= 0xfe00 && c <= 0xfe0f) return JOINER;
  if (c >= 0xf900 && c < 0xfb00) return CJK;
  if (c >= 0xff00 && c < 0xfff0) {
    // Full-width forms: letters and digits and half-width kana count as CJK, the rest (，！？) as punctuation.
    const fwAlnum = (c >= 0xff10 && c <= 0xff19) || (c >= 0xff21 && c <= 0xff3a) || (c >= 0xff41 && c <= 0xff5a);
    return fwAlnum || c >= 0xff66 ? CJK : PUNCT;
  }
  return LETTER_NON_ASCII;
}

const startsPiece = (k: number) => k === LOWER || k === UPPER || k === LETTER_NON_ASCII || k === CJK;

/** Builds an estimator with the given weights (the benchmark's tuner uses this; the package uses the defaults). */
export function createEstimator(weights: Readonly<EstimatorWeights> = DEFAULT_WEIGHTS): (text: string) => number {
  const w = { ...weights };
  return function estimate(text: string): number {
    const n = text.length;
    if (n === 0) return 0;
    let pieces = 0;
    let extraSingle = 0; // extra tokens if the delta turns out to be one piece
    let extraMulti = 0; // extra tokens if it has several
    let i = 0;
    while (i < n) {
      const k = classOf(text.charCodeAt(i));
      if (k === LOWER || k === UPPER || k === LETTER_NON_ASCII) {
        let len = 0;
        while (i < n) {
          const k2 = classOf(text.charCodeAt(i));
          if (k2 === LOWER || k2 === UPPER || k2 === JOINER) len += 1;
          else if (k2 === LETTER_NON_ASCII) len += w.nonAsciiLetter;
          else break;
          i++;
        }
        pieces++;
        if (len > w.singleWordFree) extraSingle += (len - w.singleWordFree) / w.singleWordPerToken;
        if (len > w.multiWordFree) extraMulti += (len - w.multiWordFree) / w.multiWordPerToken;
      } else if (k === CJK) {
        let len = 0;
        while (i < n && classOf(text.charCodeAt(i)) === CJK) {
          len++;
          i++;
        }
        pieces++;
        if (len > w.singleCjkFree) extraSingle += (len - w.singleCjkFree) * w.singleCjkPerChar;
        extraMulti += (len - 1) * w.multiCjkPerChar;
      } else if (k === DIGIT) {
        let len = 0;
        while (i < n && classOf(text.charCodeAt(i)) === DIGIT) {
          len++;
          i++;
        }
        pieces += Math.ceil(len / 3); // every vocabulary here splits numbers into groups of up to 3 digits
      } else if (k === SPACE || k === NEWLINE) {
        let len = 0;
        let last = 0;
        while (i < n) {
          const k2 = classOf(text.charCodeAt(i));
          if (k2 !== SPACE && k2 !== NEWLINE) break;
          last = k2;
          len++;
          i++;
        }
        // A single space before a word or punctuation belongs to that piece (" the", " {").
        if (i < n && last === SPACE) {
          const next = classOf(text.charCodeAt(i));
          if (startsPiece(next) || next === PUNCT) len--;
        }
        if (len > 0) pieces++;
      } else if (k === PUNCT) {
        let len = 0;
        while (i < n && classOf(text.charCodeAt(i)) === PUNCT) {
          len++;
          i++;
        }
        // One punctuation character before a word belongs to it ("(value", ".get", "_name", "，但").
        if (i < n && startsPiece(classOf(text.charCodeAt(i)))) len--;
        if (len > 0) {
          pieces++;
          extraMulti += Math.ceil(len / w.punctPerToken) - 1;
        }
        // Line ends right after punctuation are part of its piece (".\n\n", "{\n", "。\n").
        while (i < n && classOf(text.charCodeAt(i)) === NEWLINE) i++;
      } else if (k === ASTRAL) {
        pieces++;
        extraSingle += w.singleAstral - 1;
        extraMulti += w.multiAstral - 1;
        i += 2;
      } else {
        i++; // a joiner on its own
      }
    }
    const estimate = pieces <= 1 ? Math.round(1 + extraSingle) : Math.round(pieces + extraMulti);
    return estimate < 1 ? 1 : estimate;
  };
}

/**
 * Estimated token count of one generated text delta: 0 for '', at least 1 otherwise. Pure and synchronous;
 * the middleware calls it once per choice per chunk when the chunk does not state its count.
 */
export function estimateTokens(text: string): number {
  return defaultEstimate(text);
}

const defaultEstimate = createEstimator(DEFAULT_WEIGHTS);
