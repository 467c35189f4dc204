/**
 * The character classes and run kinds the token estimates scan by, and the script of a delta for calibration.
 */

// Character classes of the scan.
export const LOWER = 1;
export const UPPER = 2;
export const LETTER_NON_ASCII = 3;
export const DIGIT = 4;
export const SPACE = 5;
export const NEWLINE = 6;
export const PUNCT = 7;
export const CJK = 8;
export const ASTRAL = 9; // high surrogate: emoji and other supplementary-plane characters
export const JOINER = 10; // low surrogate, variation selector, ZWJ: part of the previous character

export function classify(c: number): number {
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

// One byte per UTF-16 code unit (64 KiB): a table lookup is several times faster than the branches above on
// multi-token deltas (`npm run bench:accuracy` times the estimator), for memory far inside the budget.
export const CLASS = new Uint8Array(0x10000);
for (let c = 0; c < 0x10000; c++) CLASS[c] = classify(c);

export const startsPiece = (k: number): boolean => k === LOWER || k === UPPER || k === LETTER_NON_ASCII || k === CJK;

// Run kinds of the scan (a run is a maximal stretch of one kind; each ends in at most one piece).
export const NONE = 0;
export const WORD = 1;
export const RUN_CJK = 2;
export const RUN_DIGIT = 3;
export const WHITESPACE = 4;
export const RUN_PUNCT = 5;
export const ABSORB = 6; // line ends right after punctuation: part of the punctuation's piece (".\n\n", "{\n", "。\n")

/** The kind of run a character of class `k` starts (an emoji is a piece of its own: each scan counts it itself). */
export const RUN_OF = new Uint8Array(JOINER + 1);
RUN_OF[LOWER] = WORD;
RUN_OF[UPPER] = WORD;
RUN_OF[LETTER_NON_ASCII] = WORD;
RUN_OF[CJK] = RUN_CJK;
RUN_OF[DIGIT] = RUN_DIGIT;
RUN_OF[SPACE] = WHITESPACE;
RUN_OF[NEWLINE] = WHITESPACE;
RUN_OF[PUNCT] = RUN_PUNCT;

/** Whether a character of class `k` continues a run of kind `run`, or ends it. Both scans share this rule. */
export function continuesRun(run: number, k: number): boolean {
  switch (run) {
    case WORD:
      return k === LOWER || k === UPPER || k === JOINER || k === LETTER_NON_ASCII;
    case RUN_CJK:
      return k === CJK;
    case RUN_DIGIT:
      return k === DIGIT;
    case WHITESPACE:
      return k === SPACE || k === NEWLINE;
    case RUN_PUNCT:
      return k === PUNCT;
    case ABSORB:
      return k === NEWLINE;
    default:
      return false;
  }
}


/**
 * Scripts the calibration learns separately, because vocabularies split them differently from English and from
 * each other: 0 ASCII letters (or no letters), 1 Latin with accents (Polish, Czech, French, … words split more),
 * 2 Han and kana, 3 Hangul, 4 any other script (Cyrillic, Greek, Indic, Thai, Arabic, …).
 */
export const SCRIPTS = 5;

/** The script of a delta: the first CJK or other-script letter decides, else any accented Latin letter. */
export function scriptOf(text: string): number {
  let script = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const k = CLASS[c]!;
    if (k === CJK) return c >= 0xac00 && c < 0xd7b0 ? 3 : 2;
    if (k === LETTER_NON_ASCII) {
      // Latin-1 and Latin Extended letters (é, ł, ş) end at U+024F; IPA, Greek, Cyrillic, Indic, Thai follow.
      if (c >= 0x250) return 4;
      script = 1;
    }
  }
  return script;
}
