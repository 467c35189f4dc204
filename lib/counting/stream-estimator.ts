import { ABSORB, ASTRAL, CLASS, continuesRun, LETTER_NON_ASCII, NEWLINE, NONE, PUNCT, RUN_CJK, RUN_DIGIT, RUN_OF, RUN_PUNCT, scriptOf, SPACE, startsPiece, WHITESPACE, WORD } from './character-classes';
import { DEFAULT_WEIGHTS, estimateTokens, isShortWord } from './estimate';
import type { EstimatorWeights } from './estimate';

/**
 * Shortest delta, in characters, that may be a fixed-size piece cut by a buffering proxy: shorter deltas are the
 * ordinary tokens of an engine stream, and four of them in a row with equal length happen by chance.
 */
const FIXED_MIN_LENGTH = 8;
/** Equal-length deltas in a row (after the first) that, with a word cut among them, reveal fixed-size pieces. */
const FIXED_RUN = 3;
/** Word-shaped deltas in a row (see `count`) after which the stream is taken for a word stream. */
const WORD_RUN = 2;
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
      if (continuesRun(run, k)) {
        // A line end absorbed by punctuation adds nothing; any other character lengthens its run.
        if (run !== ABSORB) len++;
        if (k === LETTER_NON_ASCII) nonAscii++;
        else if (run === WHITESPACE) endsInSpace = k === SPACE;
        continue;
      }
      this.closed += closedTokens(w, run, len, endsInSpace, nonAscii, k);
      nonAscii = 0;
      if (k === NEWLINE && run === RUN_PUNCT) {
        run = ABSORB;
        continue;
      }
      run = RUN_OF[k]!;
      len = 1;
      endsInSpace = k === SPACE;
      if (k === LETTER_NON_ASCII) nonAscii = 1;
      if (k === ASTRAL) {
        this.closed += w.multiAstral;
        // Its low surrogate, unless the delta was cut between the two halves.
        if (i + 1 < n) i++;
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
  /** Deltas in a row shaped as a word stream's: not starting with a space, ending with a space or a line end. */
  private wordDeltas = 0;
  private fixed = false;
  private fixedBreaks = 0;
  /** Total at the moment the fixed-size shape was recognised; the scanner's count adds to it. */
  private fixedBase = 0;
  private readonly scanner: CarryScanner;

  constructor(weights: Readonly<EstimatorWeights> = DEFAULT_WEIGHTS) {
    this.scanner = new CarryScanner(weights);
  }

  /** Script of the last non-empty delta counted (see `scriptOf`), for the calibration. */
  script = 0;

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
    // A word stream (the AI SDK's smoothStream, relays that re-cut text by words) ends each delta with the space
    // that, to the tokenizer, starts the next word: it costs nothing there. Engine deltas start with their space and
    // rarely end with one; a word stream is known from the deltas before: two in a row that end so (or at a line end).
    let trailingSpace = false;
    if (text.charCodeAt(0) === 32) {
      if (this.wordDeltas !== 0) this.wordDeltas = 0;
    } else {
      const last = CLASS[text.charCodeAt(n - 1)]!;
      trailingSpace = n > 1 && last === SPACE && CLASS[text.charCodeAt(n - 2)] !== SPACE && this.wordDeltas >= WORD_RUN;
      this.wordDeltas = n > 1 && (last === SPACE || last === NEWLINE) ? this.wordDeltas + 1 : 0;
    }
    // Most deltas of most engine streams are one short ASCII word: one token, in the Latin script. Known, that
    // spares the scans below; when it is too short to be a fixed-size piece, it spares everything.
    const shortWord = trailingSpace ? isShortWord(text.slice(0, n - 1)) : isShortWord(text);
    if (shortWord && n < FIXED_MIN_LENGTH && !this.fixed) {
      this.script = 0;
      this.lastEndsInWord = true;
      this.sameLength = 0;
      this.total += 1;
      return this.take();
    }
    this.script = shortWord ? 0 : scriptOf(text);
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
      this.total += shortWord ? 1 : trailingSpace ? Math.max(1, estimateTokens(text) - 1) : estimateTokens(text);
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
