/**
 * Token estimates for generated text when a chunk does not state its count (docs/accuracy.md has the numbers).
 *
 * - `estimateTokens` counts one delta on its own. Every BPE vocabulary in use (o200k, cl100k, Llama 3, Qwen, …)
 *   first splits text with a pre-tokenizer regex into pieces (a word with its leading space, up to 3 digits, a
 *   punctuation run, a whitespace run) and never merges across pieces, so a delta that holds one piece is, in an
 *   engine's one-token-per-chunk stream, almost always one token whatever its length. A delta with several pieces
 *   is a multi-token chunk; there long words, non-ASCII words, CJK runs, punctuation runs and emoji cost extra.
 *   One pass over the UTF-16 code units with a 64 KiB class table, no allocation.
 * - `StreamEstimator` (stream-estimator.ts) counts a whole response's deltas, whatever shape the server cut them
 *   in, on top of this.
 */

import { ABSORB, ASTRAL, CLASS, continuesRun, LETTER_NON_ASCII, NEWLINE, NONE, PUNCT, RUN_CJK, RUN_DIGIT, RUN_OF, RUN_PUNCT, SPACE, startsPiece, WHITESPACE, WORD } from './character-classes';

/** Tuning knobs; `DEFAULT_WEIGHTS` holds the values chosen by `bench/accuracy/tune.ts`. */
export interface EstimatorWeights {
  /** Letters a one-piece delta may hold and still count 1 (longer: `+1` per `singleWordPerToken` letters). */
  singleWordFree: number;
  singleWordPerToken: number;
  /** The same for each word of a multi-piece delta. */
  multiWordFree: number;
  multiWordPerToken: number;
  /**
   * In a multi-piece delta, a non-ASCII letter (accented Latin, Cyrillic, Greek, Indic, …) weighs this many ASCII
   * letters: vocabularies trained mostly on English split such words more. (In a one-piece delta it weighs 1,
   * since that piece is usually one token whatever its script.)
   */
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
  singleWordFree: 12,
  singleWordPerToken: 5,
  multiWordFree: 5,
  multiWordPerToken: 5,
  nonAsciiLetter: 1.75,
  singleCjkFree: 3,
  singleCjkPerChar: 1,
  multiCjkPerChar: 1,
  punctPerToken: 3,
  singleAstral: 1.5,
  multiAstral: 2,
});

/** Builds an estimator with the given weights (the benchmark's tuner uses this; the package uses the defaults). */
export function createEstimator(weights: Readonly<EstimatorWeights> = DEFAULT_WEIGHTS): (text: string) => number {
  const {
    singleWordFree,
    singleWordPerToken,
    multiWordFree,
    multiWordPerToken,
    nonAsciiLetter,
    singleCjkFree,
    singleCjkPerChar,
    multiCjkPerChar,
    punctPerToken,
    singleAstral,
    multiAstral,
  } = weights;

  // Scan state, reset per call (the estimator is synchronous, so one set per estimator is safe and allocates nothing).
  let pieces = 0;
  let extraSingle = 0; // extra tokens if the delta turns out to be one piece
  let extraMulti = 0; // extra tokens if it has several
  let nonAscii = 0; // non-ASCII letters in the current word

  /** Ends a run of `len` (weighted) characters whose next character has class `next` (0 at the end). */
  function close(run: number, len: number, endsInSpace: boolean, next: number): void {
    switch (run) {
      case WORD: {
        pieces++;
        if (len > singleWordFree) extraSingle += (len - singleWordFree) / singleWordPerToken;
        const weighted = len + nonAscii * (nonAsciiLetter - 1);
        if (weighted > multiWordFree) extraMulti += (weighted - multiWordFree) / multiWordPerToken;
        nonAscii = 0;
        break;
      }
      case RUN_CJK:
        pieces++;
        if (len > singleCjkFree) extraSingle += (len - singleCjkFree) * singleCjkPerChar;
        extraMulti += (len - 1) * multiCjkPerChar;
        break;
      case RUN_DIGIT:
        pieces += Math.ceil(len / 3); // every vocabulary here splits numbers into groups of up to 3 digits
        break;
      case WHITESPACE:
        // A single space before a word, punctuation or emoji belongs to that piece (" the", " {", " 👍").
        if (endsInSpace && (startsPiece(next) || next === PUNCT || next === ASTRAL)) len--;
        if (len > 0) pieces++;
        break;
      case RUN_PUNCT:
        // One punctuation character before a word belongs to it ("(value", ".get", "_name", "，但").
        if (startsPiece(next)) len--;
        if (len > 0) {
          pieces++;
          extraMulti += Math.ceil(len / punctPerToken) - 1;
        }
        break;
    }
  }

  return function estimate(text: string): number {
    const n = text.length;
    if (n === 0) return 0;
    pieces = 0;
    extraSingle = 0;
    extraMulti = 0;
    nonAscii = 0;
    let run = NONE;
    let len = 0;
    let endsInSpace = false;
    for (let i = 0; i < n; i++) {
      const k = CLASS[text.charCodeAt(i)]!;
      if (continuesRun(run, k)) {
        // A line end absorbed by punctuation adds nothing; any other character lengthens its run.
        if (run !== ABSORB) len++;
        if (k === LETTER_NON_ASCII) nonAscii++;
        else if (run === WHITESPACE) endsInSpace = k === SPACE;
        continue;
      }
      // The run ended at this character: count it, then start the next one.
      close(run, len, endsInSpace, k);
      if (k === NEWLINE && run === RUN_PUNCT) {
        run = ABSORB;
        continue;
      }
      run = RUN_OF[k]!;
      len = 1;
      endsInSpace = k === SPACE;
      if (k === LETTER_NON_ASCII) nonAscii = 1;
      if (k === ASTRAL) {
        pieces++;
        extraSingle += singleAstral - 1;
        extraMulti += multiAstral - 1;
        i++; // its low surrogate
      }
    }
    close(run, len, endsInSpace, 0);
    const estimate = pieces <= 1 ? Math.round(1 + extraSingle) : Math.round(pieces + extraMulti);
    return estimate < 1 ? 1 : estimate;
  };
}

/**
 * Estimated token count of one generated text delta: 0 for '', at least 1 otherwise. Pure and synchronous;
 * the middleware calls it once per choice per chunk when the chunk does not state its count.
 */
export function estimateTokens(text: string): number {
  // One character is one piece, so one token, unless it is half of an emoji's surrogate pair (the full scan
  // weighs that as an emoji).
  if (text.length === 1) return (text.charCodeAt(0) & 0xfc00) === 0xd800 ? defaultEstimate(text) : 1;
  return isShortWord(text) ? 1 : defaultEstimate(text);
}

/**
 * The common one-token delta of an engine stream (an optional leading space and up to `singleWordFree` ASCII
 * letters), which the full scan counts as 1 too; checked first because it is most chunks of most streams.
 */
export function isShortWord(text: string): boolean {
  const n = text.length;
  const start = n > 0 && text.charCodeAt(0) === 32 ? 1 : 0;
  if (n - start === 0 || n - start > DEFAULT_WEIGHTS.singleWordFree) return false;
  for (let i = start; i < n; i++) {
    const c = text.charCodeAt(i) | 0x20;
    if (c < 97 || c > 122) return false;
  }
  return true;
}

const defaultEstimate = createEstimator(DEFAULT_WEIGHTS);
