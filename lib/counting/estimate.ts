/**
 * Token estimates for generated text when a chunk does not state its count (docs/accuracy.md has the numbers).
 *
 * - `estimateTokens` counts one delta on its own. Every BPE vocabulary in use (o200k, cl100k, Llama 3, Qwen, …)
 *   first splits text with a pre-tokenizer regex into pieces (a word with its leading space, up to 3 digits, a
 *   punctuation run, a whitespace run) and never merges across pieces, so a delta that holds one piece is, in an
 *   engine's one-token-per-chunk stream, almost always one token whatever its length. A delta with several pieces
 *   is a multi-token chunk; there long words, non-ASCII words, CJK runs, punctuation runs and emoji cost extra.
 *   One pass over the UTF-16 code units with a 64 KiB class table, no allocation.
 * - `StreamEstimator` counts a whole response's deltas in whatever shape the server cut them: empty deltas of
 *   tokens that end inside a character, and text re-buffered into fixed-size pieces that cut words.
 * - `scriptOf` tells the calibration which script a delta's tokens belong to.
 */

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

function classify(c: number): number {
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

// One byte per UTF-16 code unit (64 KiB): a table lookup made the scan ~4× faster than the branches above
// on multi-token deltas (1.4 → 0.3 µs for a 60-character delta), for memory far inside the 10 MB budget.
const CLASS = new Uint8Array(0x10000);
for (let c = 0; c < 0x10000; c++) CLASS[c] = classify(c);

const startsPiece = (k: number): boolean => k === LOWER || k === UPPER || k === LETTER_NON_ASCII || k === CJK;

// Run kinds of the scan (a run is a maximal stretch of one kind; each ends in at most one piece).
const NONE = 0;
const WORD = 1;
const RUN_CJK = 2;
const RUN_DIGIT = 3;
const WHITESPACE = 4;
const RUN_PUNCT = 5;
const ABSORB = 6; // line ends right after punctuation: part of the punctuation's piece (".\n\n", "{\n", "。\n")

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
      // Continue the current run.
      switch (run) {
        case WORD:
          if (k === LOWER || k === UPPER || k === JOINER) {
            len++;
            continue;
          }
          if (k === LETTER_NON_ASCII) {
            len++;
            nonAscii++;
            continue;
          }
          break;
        case RUN_CJK:
          if (k === CJK) {
            len++;
            continue;
          }
          break;
        case RUN_DIGIT:
          if (k === DIGIT) {
            len++;
            continue;
          }
          break;
        case WHITESPACE:
          if (k === SPACE || k === NEWLINE) {
            len++;
            endsInSpace = k === SPACE;
            continue;
          }
          break;
        case RUN_PUNCT:
          if (k === PUNCT) {
            len++;
            continue;
          }
          break;
        case ABSORB:
          if (k === NEWLINE) continue;
          break;
      }
      // The run ended at this character: count it, then start the next one.
      close(run, len, endsInSpace, k);
      if (k === NEWLINE && run === RUN_PUNCT) {
        run = ABSORB;
        continue;
      }
      len = 1;
      endsInSpace = false;
      switch (k) {
        case LOWER:
        case UPPER:
          run = WORD;
          break;
        case LETTER_NON_ASCII:
          run = WORD;
          nonAscii = 1;
          break;
        case CJK:
          run = RUN_CJK;
          break;
        case DIGIT:
          run = RUN_DIGIT;
          break;
        case SPACE:
          run = WHITESPACE;
          endsInSpace = true;
          break;
        case NEWLINE:
          run = WHITESPACE;
          break;
        case PUNCT:
          run = RUN_PUNCT;
          break;
        case ASTRAL:
          pieces++;
          extraSingle += singleAstral - 1;
          extraMulti += multiAstral - 1;
          i++; // its low surrogate
          run = NONE;
          break;
        default:
          run = NONE; // a joiner on its own
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
  return isShortWord(text) ? 1 : defaultEstimate(text);
}

/**
 * The common one-token delta of an engine stream (an optional leading space and up to `singleWordFree` ASCII
 * letters), which the full scan counts as 1 too; checked first because it is most chunks of most streams.
 */
function isShortWord(text: string): boolean {
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

/**
 * Shortest delta, in characters, that may be a fixed-size piece cut by a buffering proxy: shorter deltas are the
 * ordinary tokens of an engine stream, and four of them in a row with equal length happen by chance.
 */
const FIXED_MIN_LENGTH = 8;
/** Equal-length deltas in a row (after the first) that, with a word cut among them, reveal fixed-size pieces. */
const FIXED_RUN = 3;
/** Deltas of another length in a row that end the fixed-size shape (one is the stream's short last piece). */
const FIXED_BREAK = 2;


/**
 * Counts the text of a whole stream as if it were one delta, piece by piece as it arrives, so that where the text
 * was cut does not matter: a word split across deltas is one word. The piece still open at the end of a delta is
 * counted at its lowest possible value, so the running count never has to go back.
 */
class CarryScanner {
  /** Tokens of the pieces closed so far (fractional: the weights are averages). */
  private closed = 0;
  private run = NONE;
  private len = 0;
  private endsInSpace = false;
  private nonAscii = 0;

  constructor(private readonly weights: Readonly<EstimatorWeights>) {}

  reset(): void {
    this.closed = 0;
    this.run = NONE;
    this.len = 0;
    this.endsInSpace = false;
    this.nonAscii = 0;
  }

  /** Feeds one delta; returns the running total (closed pieces plus the open one's lowest value). */
  feed(text: string): number {
    const w = this.weights;
    let { run, len, endsInSpace, nonAscii } = this;
    const n = text.length;
    for (let i = 0; i < n; i++) {
      const k = CLASS[text.charCodeAt(i)]!;
      switch (run) {
        case WORD:
          if (k === LOWER || k === UPPER || k === JOINER) {
            len++;
            continue;
          }
          if (k === LETTER_NON_ASCII) {
            len++;
            nonAscii++;
            continue;
          }
          break;
        case RUN_CJK:
          if (k === CJK) {
            len++;
            continue;
          }
          break;
        case RUN_DIGIT:
          if (k === DIGIT) {
            len++;
            continue;
          }
          break;
        case WHITESPACE:
          if (k === SPACE || k === NEWLINE) {
            len++;
            endsInSpace = k === SPACE;
            continue;
          }
          break;
        case RUN_PUNCT:
          if (k === PUNCT) {
            len++;
            continue;
          }
          break;
        case ABSORB:
          if (k === NEWLINE) continue;
          break;
      }
      this.closed += closedTokens(w, run, len, endsInSpace, nonAscii, k);
      nonAscii = 0;
      if (k === NEWLINE && run === RUN_PUNCT) {
        run = ABSORB;
        continue;
      }
      len = 1;
      endsInSpace = false;
      switch (k) {
        case LOWER:
        case UPPER:
          run = WORD;
          break;
        case LETTER_NON_ASCII:
          run = WORD;
          nonAscii = 1;
          break;
        case CJK:
          run = RUN_CJK;
          break;
        case DIGIT:
          run = RUN_DIGIT;
          break;
        case SPACE:
          run = WHITESPACE;
          endsInSpace = true;
          break;
        case NEWLINE:
          run = WHITESPACE;
          break;
        case PUNCT:
          run = RUN_PUNCT;
          break;
        case ASTRAL:
          this.closed += w.multiAstral;
          // Its low surrogate, unless the delta was cut between the two halves.
          if (i + 1 < n) i++;
          run = NONE;
          break;
        default:
          run = NONE;
      }
    }
    this.run = run;
    this.len = len;
    this.endsInSpace = endsInSpace;
    this.nonAscii = nonAscii;
    return this.closed + openTokens(w, run, len, endsInSpace, nonAscii);
  }
}

/** Tokens of a run of a multi-piece text that ended before a character of class `next`. */
function closedTokens(w: Readonly<EstimatorWeights>, run: number, len: number, endsInSpace: boolean, nonAscii: number, next: number): number {
  switch (run) {
    case WORD: {
      const weighted = len + nonAscii * (w.nonAsciiLetter - 1);
      return weighted > w.multiWordFree ? 1 + (weighted - w.multiWordFree) / w.multiWordPerToken : 1;
    }
    case RUN_CJK:
      return 1 + (len - 1) * w.multiCjkPerChar;
    case RUN_DIGIT:
      return Math.ceil(len / 3);
    case WHITESPACE:
      if (endsInSpace && (startsPiece(next) || next === PUNCT || next === ASTRAL)) len--;
      return len > 0 ? 1 : 0;
    case RUN_PUNCT:
      if (startsPiece(next)) len--;
      return len > 0 ? Math.ceil(len / w.punctPerToken) : 0;
    default:
      return 0;
  }
}

/** The least a run still open can end up costing (what follows can only add to it). */
function openTokens(w: Readonly<EstimatorWeights>, run: number, len: number, endsInSpace: boolean, nonAscii: number): number {
  switch (run) {
    case WORD:
    case RUN_CJK:
    case RUN_DIGIT:
      return closedTokens(w, run, len, endsInSpace, nonAscii, 0);
    case WHITESPACE:
      return len - (endsInSpace ? 1 : 0) > 0 ? 1 : 0;
    case RUN_PUNCT:
      return len > 1 ? Math.ceil((len - 1) / w.punctPerToken) : 0;
    default:
      return 0;
  }
}

/**
 * The default estimator for one response: counts each generated text delta as the stream goes, in whatever shape
 * the server cut it. One instance per response (it carries what it learned about the stream's shape).
 *
 * - Engine streams cut the text at token boundaries, so a delta is counted on its own (`estimateTokens`): a
 *   one-piece delta is one token whatever its length.
 * - An empty delta once text has started is a token that ended inside a character (vLLM, TGI send it as `""`);
 *   after one, a lone character no longer stands for the tokens held back before it.
 * - A server or proxy that re-buffers the text into fixed-size pieces cuts words anywhere; once a few deltas in a
 *   row have the same length and one of the cuts falls inside a word, the text is counted as one run across
 *   deltas ({@link CarryScanner}), so a cut word counts once. A change of length ends that shape again.
 *
 * Counts are fractional inside; each delta returns the whole tokens the running total gained, never negative.
 */
export class StreamEstimator {
  /** Running total, fractional; and the whole tokens already returned. */
  private total = 0;
  private returned = 0;
  private textStarted = false;
  /** An empty delta has been seen mid-stream: this server sends the tokens it holds back as empty deltas. */
  private emptyDeltas = false;
  /** Fixed-size shape detection: the last delta's length (UTF-16 units and code points), the run of equal ones. */
  private lastUnits = -1;
  private lastPoints = -1;
  private sameLength = 0;
  private wordCuts = 0;
  private lastEndsInWord = false;
  private fixed = false;
  private fixedBreaks = 0;
  /** Total at the moment the fixed-size shape was recognised; the scanner's count adds to it. */
  private fixedBase = 0;
  private readonly scanner: CarryScanner;

  constructor(weights: Readonly<EstimatorWeights> = DEFAULT_WEIGHTS) {
    this.scanner = new CarryScanner(weights);
  }

  /** Tokens one generated text delta adds (0 for the role chunk's `""` before any text). */
  count(text: string): number {
    const n = text.length;
    if (n === 0) {
      if (!this.textStarted) return 0;
      this.emptyDeltas = true;
      this.total += 1;
      return this.take();
    }
    this.textStarted = true;
    const first = CLASS[text.charCodeAt(0)]!;
    const cutsWord = this.lastEndsInWord && startsPiece(first);
    this.lastEndsInWord = startsPiece(CLASS[text.charCodeAt(n - 1)]!);
    if (n >= FIXED_MIN_LENGTH || this.fixed) this.trackLength(text, cutsWord);
    else this.sameLength = 0;
    if (this.fixed) {
      this.total = this.fixedBase + this.scanner.feed(text);
    } else if (this.emptyDeltas && n <= 3 && isOneCharacter(text)) {
      // The empty deltas before it carried the tokens of its other bytes.
      this.total += 1;
    } else {
      this.total += estimateTokens(text);
    }
    return this.take();
  }

  private take(): number {
    const whole = Math.round(this.total);
    if (whole <= this.returned) return 0;
    const gained = whole - this.returned;
    this.returned = whole;
    return gained;
  }

  private trackLength(text: string, cutsWord: boolean): void {
    const units = text.length;
    const points = units >= FIXED_MIN_LENGTH ? codePoints(text) : units;
    const same = units >= FIXED_MIN_LENGTH && (units === this.lastUnits || points === this.lastPoints);
    if (this.fixed) {
      if (same) {
        this.fixedBreaks = 0;
      } else if (++this.fixedBreaks >= FIXED_BREAK) {
        // The stream changed shape: from here on each delta is counted on its own again.
        this.fixed = false;
        this.sameLength = 0;
        this.wordCuts = 0;
      }
      // Keep the original length: a short last piece must not become the new one.
      if (same || !this.fixed) this.setLast(units, points);
      return;
    }
    if (same) {
      this.sameLength++;
      if (cutsWord) this.wordCuts++;
    } else {
      this.sameLength = 0;
      this.wordCuts = 0;
    }
    this.setLast(units, points);
    if (this.sameLength >= FIXED_RUN && this.wordCuts > 0) {
      this.fixed = true;
      this.fixedBreaks = 0;
      this.fixedBase = this.total;
      this.scanner.reset();
    }
  }

  private setLast(units: number, points: number): void {
    this.lastUnits = units;
    this.lastPoints = points;
  }
}

function codePoints(text: string): number {
  let points = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xdc00 && c < 0xe000) points--;
  }
  return points;
}

/** One character (a single code unit or one surrogate pair), after at most one space. */
function isOneCharacter(text: string): boolean {
  const start = text.charCodeAt(0) === 32 && text.length > 1 ? 1 : 0;
  const rest = text.length - start;
  if (rest === 1) return true;
  const c = text.charCodeAt(start);
  return rest === 2 && c >= 0xd800 && c < 0xdc00;
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
