import { SCRIPTS, scriptOf } from '../counting/character-classes';
import type { Calibration } from '../counting/calibration';
import { StreamEstimator } from '../counting/stream-estimator';
import type { ChunkCount } from '../formats/types';

/** Largest usage count believed; beyond it a stated count is malformed, not a request's size. */
const MAX_TOKEN_COUNT = 100_000_000;

/** Multipliers of a model without calibration: the estimate as it is. */
const UNSCALED: Float64Array = new Float64Array(SCRIPTS).fill(1);

export function isTokenCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_TOKEN_COUNT;
}

/**
 * The output tokens of one response, as its chunks report them: estimated from generated text (scaled by the
 * model's calibration), or stated by the stream's usage, which takes precedence. Each report says how many whole
 * tokens it adds to the counters ({@link added}, {@link addedReasoning}); the request state adds them and times
 * them. Nothing here touches a metric.
 */
export class OutputTokens {
  /** What the last report added to the counters: whole output tokens, and the reasoning part of them. */
  added = 0;
  addedReasoning = 0;
  /** Reasoning tokens the last {@link statedTotal} added from a stated reasoning total (timed with nothing). */
  reasoningStatedIncrease = 0;
  /** The last {@link statedTotal}'s increase is a generation chunk's own tokens: it is timed as that chunk's. */
  increaseTimed = false;
  /** Output and reasoning tokens added so far. */
  total = 0;
  reasoning = 0;
  /** The last usage the stream stated, when it did (with counts by choice, their sum). */
  stated: number | undefined;
  statedReasoning: number | undefined;

  /** Each choice's own stated count, when the stream states them apart (see `statedTotal`). */
  private statedByChoice: Map<number, number> | undefined;
  private statedChoicesSum = 0;
  /** The default estimator's state for this response (created on the first text it counts). */
  private estimator: StreamEstimator | undefined;
  /** A text field of the current chunk was an empty string (a token that ended inside a character). */
  private pendingEmpty = false;
  /** Script of the text last estimated (see `scriptOf`): the calibration scales each script's tokens by its own. */
  private script = 0;
  /**
   * Estimated tokens as the readers reported them, unscaled, by script: in chunks counted live (`liveByScript`;
   * `estimatedRaw` and `reasoningRaw` are its sum and reasoning part), and in all chunks, usage or not
   * (`allByScript`, what the calibration learns from).
   */
  // Plain arrays of whole counts: a typed array costs an ArrayBuffer besides, for every stream in flight.
  private readonly liveByScript: number[] = Array.from({ length: SCRIPTS }, () => 0);
  readonly allByScript: number[] = Array.from({ length: SCRIPTS }, () => 0);
  private estimatedRaw = 0;
  private reasoningRaw = 0;
  /** What the scaled estimate has added to the counters so far. */
  private estimatedOutput = 0;
  private estimatedReasoning = 0;
  /** The model's calibration: multiplier of each script's estimate, and rounding down (usage will top it up). */
  private scales: Float64Array = UNSCALED;
  private leanLow = false;
  /** The calibration leaned low; its unbiased multipliers, for a stream that ends without the usage expected. */
  private unbiased: Float64Array | undefined;

  constructor(
    /** The user's `countTokens`; without one, the default {@link StreamEstimator}. */
    private readonly countTokens: ((text: string, model: string) => number) | undefined,
    /** Where a usage that is not a count is reported (the request state). */
    private readonly report: { malformed(reason: string, detail: string): void },
  ) {}

  /**
   * The model is known: its calibration scales the estimate, the text already estimated included (a stream that
   * named its model late, or never and took `unknown_model`). What was already added stays added: the count resumes
   * once the scaled estimate has passed it.
   */
  calibrateWith(calibration: Calibration): void {
    if (calibration.learned) {
      this.scales = calibration.scales();
      this.leanLow = calibration.leansLow();
      this.unbiased = this.leanLow ? calibration.unbiasedScales() : undefined;
    }
  }

  /**
   * The stream ended without stating usage, though its model's streams usually do: the live count leaned low for a
   * top-up that never came. Adds what it leaned low by (the unbiased scaled estimate less what was added) and
   * returns it (0: nothing to add).
   */
  settleWithoutUsage(): number {
    if (this.stated !== undefined || this.unbiased === undefined) return 0;
    let unbiased = 0;
    for (let s = 0; s < SCRIPTS; s++) unbiased += this.unbiased[s]! * this.liveByScript[s]!;
    const missing = Math.round(unbiased) - this.estimatedOutput;
    if (missing <= 0) return 0;
    this.estimatedOutput += missing;
    this.add(missing, 0);
    return missing;
  }

  estimate(text: string, model: string): number {
    if (text.length === 0) {
      this.pendingEmpty = true;
      return 0;
    }
    if (this.countTokens !== undefined) {
      this.script = scriptOf(text);
      return this.countTokens(text, model);
    }
    const estimator = this.estimatorFor();
    const tokens = estimator.count(text);
    this.script = estimator.script;
    return tokens;
  }

  /** An empty text field: counted once per chunk, and only if nothing else in the chunk had text. */
  emptyText(): void {
    this.pendingEmpty = true;
  }

  /** A chunk's own count; returns its tokens (0: nothing to add or time), and sets what it adds. */
  generated(tokens: number, reasoning: number): number {
    // With countTokens the character held back is counted in full once it arrives, so only the default counts "".
    if (tokens <= 0 && this.pendingEmpty && this.countTokens === undefined) tokens = this.estimatorFor().count('');
    this.pendingEmpty = false;
    if (!(tokens > 0)) return 0;
    this.allByScript[this.script]! += tokens;
    this.liveByScript[this.script]! += tokens;
    this.estimatedRaw += tokens;
    if (reasoning > 0) this.reasoningRaw += Math.min(reasoning, tokens);
    if (this.scales === UNSCALED) {
      this.estimatedOutput += tokens;
      this.add(tokens, Math.min(reasoning, tokens));
      return tokens;
    }
    const { scales, liveByScript: live } = this;
    let scaled = 0;
    for (let s = 0; s < SCRIPTS; s++) scaled += scales[s]! * live[s]!;
    const output = Math.max(0, this.whole(scaled) - this.estimatedOutput);
    let reasoningAdded = 0;
    if (this.reasoningRaw > 0) {
      const reasoningScaled = this.whole((this.reasoningRaw * scaled) / this.estimatedRaw);
      reasoningAdded = Math.max(0, Math.min(output, reasoningScaled - this.estimatedReasoning));
    }
    this.estimatedOutput += output;
    this.estimatedReasoning += reasoningAdded;
    this.add(output, reasoningAdded);
    return tokens;
  }

  /**
   * Cumulative usage stated by the stream (see `ObservationSink.statedOutputTokens`). Returns what it adds: the
   * output increase (with {@link added}, {@link addedReasoning} set), 0 when it adds none, or -1 when the usage is
   * not a count and the chunk's own count was taken instead (see {@link generated}). A stated reasoning total
   * that grew is in {@link reasoningStatedIncrease}. With `choice`, `stated` is that choice's count, and the
   * request's is the sum of the last count of each choice.
   */
  statedTotal(stated: unknown, reasoningTotal: unknown, chunk: ChunkCount, live: boolean, choice?: number): number {
    this.reasoningStatedIncrease = 0;
    // A generation chunk with no text is timed when usage is continuous (vLLM's finish chunk after a stop token the
    // parser kept): usage first stated there (Groq, LiteLLM) corrects the estimates of the chunks before.
    this.increaseTimed = live && (chunk.tokens > 0 || this.pendingEmpty || this.stated !== undefined);
    if (!isTokenCount(stated)) {
      this.report.malformed('invalid_usage', `completion tokens: ${String(stated)}`);
      return -1;
    }
    const before = choice === undefined ? this.stated : this.statedByChoice?.get(choice);
    // Usage that goes backwards is not believed; what was counted stays counted.
    if (before !== undefined && stated < before) {
      this.report.malformed('usage_backwards', `${stated} after ${before}`);
      this.added = 0;
      this.addedReasoning = 0;
      return 0;
    }
    // The sum never falls below a count the request stated as a whole.
    const total = choice === undefined ? stated : Math.max(this.choiceTotal(choice, stated, before ?? 0), this.stated ?? 0);
    if (chunk.tokens > 0) this.allByScript[this.script]! += chunk.tokens;
    else if (this.pendingEmpty && live && this.countTokens === undefined) this.allByScript[this.script]! += this.estimatorFor().count('');
    this.pendingEmpty = false;
    this.stated = total;
    const increase = total - this.total;
    const reasoningStated = isTokenCount(reasoningTotal);
    this.added = 0;
    this.addedReasoning = 0;
    if (increase > 0) this.add(increase, reasoningStated ? 0 : Math.min(chunk.reasoning, increase));
    if (reasoningStated) {
      const reasoningIncrease = reasoningTotal - this.reasoning;
      this.statedReasoning = reasoningTotal;
      if (reasoningIncrease > 0) {
        this.reasoning += reasoningIncrease;
        this.reasoningStatedIncrease = reasoningIncrease;
      }
    } else if (reasoningTotal !== undefined && reasoningTotal !== null) {
      this.report.malformed('invalid_usage', `reasoning tokens: ${String(reasoningTotal)}`);
    }
    return increase > 0 ? increase : 0;
  }

  /** The request's count once this choice's own is `total` (it was `before`): the sum of every choice's last count. */
  private choiceTotal(choice: number, total: number, before: number): number {
    (this.statedByChoice ??= new Map()).set(choice, total);
    this.statedChoicesSum += total - before;
    return this.statedChoicesSum;
  }

  private add(tokens: number, reasoning: number): void {
    // A count that is not a positive number (a NaN from a broken reader) adds nothing, here as in the counters.
    this.added = tokens;
    this.addedReasoning = reasoning;
    if (tokens > 0) this.total += tokens;
    if (reasoning > 0) this.reasoning += reasoning;
  }

  /** A scaled estimate as whole tokens: rounded down when usage will top it up, else to the nearest. */
  private whole(value: number): number {
    return this.leanLow ? Math.floor(value) : Math.round(value);
  }

  private estimatorFor(): StreamEstimator {
    return (this.estimator ??= new StreamEstimator());
  }
}
