import { configError } from '../errors';
import { HISTOGRAM_NAMES, METRICS } from './definitions';
import type { HistogramName } from './definitions';

export type { HistogramName } from './definitions';

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

/** The environment variable prefix Dynamo reads for one histogram's range. */
export function bucketEnvKey(name: HistogramName): string {
  return `DYN_METRICS_${METRICS[name].suffix.toUpperCase()}`;
}

/** Default bounds for one histogram, with Dynamo's environment overrides applied. */
export function defaultBuckets(name: HistogramName, env: NodeJS.ProcessEnv = process.env): number[] {
  const range = METRICS[name].buckets;
  const key = bucketEnvKey(name);
  const read = (field: 'MIN' | 'MAX' | 'COUNT', fallback: number): number => {
    const raw = env[`${key}_${field}`];
    if (raw === undefined || raw.trim() === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value)) {
      configError(`${key}_${field}="${raw}" is not a number`);
    }
    return value;
  };
  const [min, max, count] = [read('MIN', range.min), read('MAX', range.max), read('COUNT', range.count)];
  if (!(min > 0) || !(max > min) || !Number.isInteger(count) || count < 2) {
    configError(`${key}_{MIN,MAX,COUNT} give ${name} an empty range: it needs 0 < min < max and an integer count >= 2 (got min=${min}, max=${max}, count=${count})`);
  }
  return dynamoBuckets(min, max, count);
}

export type HistogramBounds = Record<HistogramName, number[]>;

/** The `buckets` option checked and completed with the defaults (environment overrides included). */
export function resolveBuckets(buckets: unknown, env: NodeJS.ProcessEnv = process.env): HistogramBounds {
  if (buckets !== undefined && (buckets === null || typeof buckets !== 'object')) {
    configError('option "buckets" must be an object such as { timeToFirstToken: [0.1, 0.5, 1] }');
  }
  const given = (buckets ?? {}) as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!HISTOGRAM_NAMES.includes(key as HistogramName)) {
      configError(`option "buckets.${key}" is not a histogram; use one of ${HISTOGRAM_NAMES.join(', ')}`);
    }
  }
  const resolved = {} as HistogramBounds;
  for (const name of HISTOGRAM_NAMES) {
    const bounds = given[name];
    if (bounds === undefined) {
      resolved[name] = defaultBuckets(name, env);
      continue;
    }
    if (
      !Array.isArray(bounds) ||
      bounds.length === 0 ||
      !bounds.every((b, i) => typeof b === 'number' && Number.isFinite(b) && (i === 0 || b > (bounds[i - 1] as number)))
    ) {
      configError(`option "buckets.${name}" must be a non-empty array of finite numbers in increasing order`);
    }
    resolved[name] = [...(bounds as number[])];
  }
  return resolved;
}
