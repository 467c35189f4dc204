import { bucketEnvKey, defaultBuckets, dynamoBuckets } from '../../lib/metrics/buckets';
import type { HistogramName } from '../../lib/metrics/buckets';
import { HISTOGRAM_NAMES, METRICS } from '../../lib/metrics/definitions';

// The bounds tables of the contract (metrics.md, "Buckets").
const CONTRACT: Record<HistogramName, number[]> = {
  requestDuration: [0, 2, 4, 8, 16, 32, 64, 130, 260, 510],
  timeToFirstToken: [0, 0.0022, 0.0047, 0.01, 0.022, 0.047, 0.1, 0.22, 0.47, 1, 2.2, 4.7, 10, 22, 48, 100, 220, 480],
  interTokenLatency: [0, 0.0019, 0.0035, 0.0067, 0.013, 0.024, 0.045, 0.084, 0.16, 0.3, 0.56, 1.1, 2],
  inputSequenceTokens: [0, 100, 210, 430, 870, 1800, 3600, 7400, 15000, 31000, 63000, 130000],
  outputSequenceTokens: [0, 100, 210, 430, 880, 1800, 3700, 7600, 16000, 32000],
  cachedTokens: [0, 100, 210, 430, 870, 1800, 3600, 7400, 15000, 31000, 63000, 130000],
};

describe('dynamoBuckets', () => {
  it.each(Object.entries(CONTRACT))('reproduces the contract table for %s', (name, bounds) => {
    expect(defaultBuckets(name as HistogramName, {})).toEqual(bounds);
  });

  it('starts at 0, rounds to two significant figures, and is strictly increasing', () => {
    const bounds = dynamoBuckets(0.001, 480, 18);
    expect(bounds[0]).toBe(0);
    for (let i = 1; i < bounds.length; i++) {
      expect(bounds[i]).toBeGreaterThan(bounds[i - 1] as number);
      expect(Number((bounds[i] as number).toPrecision(2))).toBe(bounds[i]);
    }
  });

  it('drops repeats created by rounding', () => {
    // 1..2 in 50 steps rounds to far fewer than 50 distinct two-digit values.
    const bounds = dynamoBuckets(1, 2, 50);
    expect(new Set(bounds).size).toBe(bounds.length);
    expect(bounds.length).toBeLessThan(50);
    expect(bounds[bounds.length - 1]).toBe(2);
  });

  it.each([
    [0, 1, 5],
    [2, 1, 5],
    [1, 2, 1],
    [1, 2, 2.5],
    [Number.NaN, 2, 5],
  ])('throws a TypeError for an impossible range (min=%p, max=%p, count=%p)', (min, max, count) => {
    expect(() => dynamoBuckets(min, max, count)).toThrow(TypeError);
  });

  it('has a bucket range for every histogram of the contract, with the contract suffix and environment key', () => {
    expect(HISTOGRAM_NAMES.map((name) => METRICS[name].buckets)).not.toContain(undefined);
    expect(bucketEnvKey('timeToFirstToken')).toBe('DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS');
    expect(Object.fromEntries(HISTOGRAM_NAMES.map((name) => [name, METRICS[name].suffix]))).toEqual({
      requestDuration: 'request_duration_seconds',
      timeToFirstToken: 'time_to_first_token_seconds',
      interTokenLatency: 'inter_token_latency_seconds',
      inputSequenceTokens: 'input_sequence_tokens',
      outputSequenceTokens: 'output_sequence_tokens',
      cachedTokens: 'cached_tokens',
    });
  });
});

describe('defaultBuckets with DYN_METRICS_<NAME>_{MIN,MAX,COUNT}', () => {
  it('replaces the range of one histogram from the environment', () => {
    const env = {
      DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_MIN: '0.01',
      DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_MAX: '10',
      DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_COUNT: '4',
    };
    expect(defaultBuckets('timeToFirstToken', env)).toEqual(dynamoBuckets(0.01, 10, 4));
    expect(defaultBuckets('timeToFirstToken', env)).toEqual([0, 0.1, 1, 10]);
    expect(defaultBuckets('requestDuration', env)).toEqual(CONTRACT.requestDuration);
  });

  it('keeps the default for a field that is empty, and throws for one that is not a number', () => {
    expect(defaultBuckets('requestDuration', { DYN_METRICS_REQUEST_DURATION_SECONDS_MIN: ' ' })).toEqual(
      CONTRACT.requestDuration,
    );
    expect(() => defaultBuckets('requestDuration', { DYN_METRICS_REQUEST_DURATION_SECONDS_MAX: 'lots' })).toThrow(
      TypeError,
    );
  });

  it('names the variables and the histogram when the range they give is empty', () => {
    expect(() => defaultBuckets('timeToFirstToken', { DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_MIN: '500' })).toThrow(
      /DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_\{MIN,MAX,COUNT\} give timeToFirstToken an empty range.*min=500, max=480/,
    );
  });
});
