import { configError } from './errors';

/**
 * Dynamo's histogram bounds: `[0]` followed by `count - 1` log-spaced values between `min` and `max`, each rounded
 * to two significant figures, repeats dropped. Reproducing the formula (rather than hard-coding the tables) keeps
 * `DYN_METRICS_<NAME>_{MIN,MAX,COUNT}` meaning exactly what it means in Dynamo.
 */
export function dynamoBuckets(min: number, max: number, count: number): number[] {
  if (!(min > 0) || !(max > min) || !Number.isInteger(count) || count < 2) {
    configError(
      `bucket range needs 0 < min < max and an integer count >= 2 (got min=${min}, max=${max}, count=${count})`,
    );
  }
  const bounds = [0];
  const lnMin = Math.log(min);
  const step = (Math.log(max) - lnMin) / (count - 1);
  for (let i = 1; i < count; i++) {
    const bound = Number(Math.exp(lnMin + step * i).toPrecision(2));
    if (bound !== bounds[bounds.length - 1]) bounds.push(bound);
  }
  return bounds;
}

export type HistogramName =
  | 'requestDuration'
  | 'timeToFirstToken'
  | 'interTokenLatency'
  | 'inputSequenceTokens'
  | 'outputSequenceTokens'
  | 'cachedTokens';

interface BucketSpec {
  /** Metric suffix; `DYN_METRICS_<SUFFIX IN UPPER CASE>_{MIN,MAX,COUNT}` overrides the range. */
  suffix: string;
  min: number;
  max: number;
  count: number;
}

export const BUCKET_SPECS: Readonly<Record<HistogramName, BucketSpec>> = {
  requestDuration: { suffix: 'request_duration_seconds', min: 1, max: 512, count: 10 },
  timeToFirstToken: { suffix: 'time_to_first_token_seconds', min: 0.001, max: 480, count: 18 },
  interTokenLatency: { suffix: 'inter_token_latency_seconds', min: 0.001, max: 2, count: 13 },
  inputSequenceTokens: { suffix: 'input_sequence_tokens', min: 50, max: 128000, count: 12 },
  outputSequenceTokens: { suffix: 'output_sequence_tokens', min: 50, max: 32000, count: 10 },
  cachedTokens: { suffix: 'cached_tokens', min: 50, max: 128000, count: 12 },
};

/** Default bounds for one histogram, with Dynamo's environment overrides applied. */
export function defaultBuckets(name: HistogramName, env: NodeJS.ProcessEnv = process.env): number[] {
  const spec = BUCKET_SPECS[name];
  const key = `DYN_METRICS_${spec.suffix.toUpperCase()}`;
  const read = (field: 'MIN' | 'MAX' | 'COUNT', fallback: number): number => {
    const raw = env[`${key}_${field}`];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value)) {
      configError(`${key}_${field}="${raw}" is not a number`);
    }
    return value;
  };
  return dynamoBuckets(read('MIN', spec.min), read('MAX', spec.max), read('COUNT', spec.count));
}
