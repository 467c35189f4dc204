import { SCRIPTS } from './character-classes';

/**
 * What one model's earlier streams taught about the default estimate: how the usage they stated compares with
 * what was estimated from their text, per script (vocabularies disagree most on non-Latin text, so one ratio per
 * model would mix an English answer's with a Hindi one's), and whether they state usage at all. One per model
 * label of a store, so its size is bounded by the model label cap.
 *
 * A counter cannot go down, so a live estimate that overshoots the usage stated at the end stays too high. When a
 * model's streams state usage, the live count is scaled by the learned ratio minus a margin of its spread, so that
 * the count ends below the usage almost always and the end tops it up to the exact figure. Without usage to top it
 * up, the plain learned ratio (unbiased) is used instead.
 */
export class Calibration {
  /** Index 0: every stream of the model; 1 + script: streams mostly in that script. */
  private readonly ratios = Array.from({ length: SCRIPTS + 1 }, () => new Ratio());
  /** Running share of finished streams that stated usage, and how many streams that share is over. */
  private usageShare = 0;
  private streams = 0;
  /** The multipliers as of the last stream learned from, shared by the requests that start until the next one. */
  private snapshot: Float64Array | undefined = undefined;
  private unbiasedSnapshot: Float64Array | undefined = undefined;

  /** Some stream of this model has stated usage to learn from. */
  get learned(): boolean {
    return this.ratios[0]!.samples > 0;
  }

  /** The live count leans low because this model's streams are expected to end with usage that tops it up. */
  leansLow(): boolean {
    return this.ratios[0]!.samples > 0 && this.usageShare >= 0.5;
  }

  /** Multipliers for a new request's estimate, one per script; never changed once returned. */
  scales(): Float64Array {
    if (this.snapshot !== undefined) return this.snapshot;
    const scales = new Float64Array(SCRIPTS);
    for (let s = 0; s < SCRIPTS; s++) scales[s] = this.scale(s);
    this.snapshot = scales;
    return scales;
  }

  /**
   * The plain learned multipliers, unbiased: what a stream that leaned low ends at when it stated no usage after
   * all (nothing else tops it up). Shared like {@link scales}.
   */
  unbiasedScales(): Float64Array {
    if (this.unbiasedSnapshot !== undefined) return this.unbiasedSnapshot;
    const scales = new Float64Array(SCRIPTS);
    for (let s = 0; s < SCRIPTS; s++) scales[s] = this.scale(s, false);
    this.unbiasedSnapshot = scales;
    return scales;
  }

  /** Multiplier for a new request's estimate of text in `script` (-1: any). */
  scale(script: number, lean = this.leansLow()): number {
    const all = this.ratios[0]!;
    if (all.samples === 0) return 1;
    const own = this.ratios[script + 1];
    if (own !== undefined && own.samples > 0) return lean ? own.low() : own.mean;
    // A script this model has not shown alone yet: the model's mix says little about it, so never scale it up
    // while usage is to top it up.
    return lean ? Math.min(1, all.low()) : all.mean;
  }

  /** A stream finished: `stated` is its usage (if any), `byScript` what its text was estimated at, unscaled. */
  learn(stated: number | undefined, byScript: ArrayLike<number>): void {
    // Requests in flight keep the multipliers they started with; the next ones get new ones.
    this.snapshot = undefined;
    this.unbiasedSnapshot = undefined;
    this.streams++;
    const weight = Math.max(1 / this.streams, MIN_WEIGHT);
    this.usageShare += weight * ((stated === undefined ? 0 : 1) - this.usageShare);
    let estimated = 0;
    let main = 0;
    for (let s = 0; s < byScript.length; s++) {
      estimated += byScript[s]!;
      if (byScript[s]! > byScript[main]!) main = s;
    }
    if (stated === undefined || stated <= 0 || estimated < MIN_ESTIMATE) return;
    const ratio = stated / estimated;
    // Usage that far from the text is not a count of it (a placeholder, another response's figure).
    if (!(ratio > MIN_RATIO && ratio < MAX_RATIO)) return;
    this.ratios[0]!.add(ratio);
    if (byScript[main]! >= MAIN_SCRIPT_SHARE * estimated) this.ratios[main + 1]!.add(ratio);
  }
}

/** Exponentially weighted mean and variance of usage ÷ estimate. */
class Ratio {
  samples = 0;
  mean = 1;
  private variance = 0;

  add(ratio: number): void {
    this.samples++;
    const alpha = Math.max(1 / this.samples, MIN_WEIGHT);
    const delta = ratio - this.mean;
    this.mean += alpha * delta;
    this.variance = this.samples === 1 ? 0 : (1 - alpha) * (this.variance + alpha * delta * delta);
  }

  /** Low enough that a stream's estimate rarely ends above its usage. */
  low(): number {
    // Few samples say little about the spread: assume a wider one until the model has shown its own.
    const prior = PRIOR_SPREAD / this.samples;
    const spread = Math.sqrt(this.variance + prior * prior);
    return Math.max(MIN_RATIO, this.mean - MARGIN * spread);
  }
}

/** Weight of the newest stream once a model has more history: the last ~10 streams dominate. */
const MIN_WEIGHT = 0.1;
/** Standard deviations of the ratio kept below its mean when usage will top the count up. */
const MARGIN = 2;
/** Spread of the ratio assumed for a model's first streams. */
const PRIOR_SPREAD = 0.1;
/** Usage ÷ estimate believed: beyond, the usage is not a count of this text. Also the lowest scale used. */
const MIN_RATIO = 0.25;
const MAX_RATIO = 4;
/** Streams estimated at fewer tokens than this teach nothing: their ratio is mostly rounding. */
const MIN_ESTIMATE = 8;
/** A stream teaches its script's ratio when that script holds this share of its estimate. */
const MAIN_SCRIPT_SHARE = 0.7;
