import { Registry } from 'prom-client';
import { MetricsStore } from '../../lib/metrics';
import { resolveOptions } from '../../lib/options';
import type { DynamoMetricsOptions } from '../../lib/options';
import { RequestState } from '../../lib/request/request-state';
import type { RequestHints } from '../../lib/request/request-model';
import { m, value } from '../support/registry-values';
import { codePoints } from '../support/streams';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let registry: Registry;
let store: MetricsStore;
let malformed: [string, string][];

function setup(options: DynamoMetricsOptions = {}): void {
  registry = new Registry();
  store = MetricsStore.for(resolveOptions({ registry, ...options }));
  malformed = [];
}

function newRequest(hints?: RequestHints, endpoint = 'chat_completions'): RequestState {
  return new RequestState(
    {
      store,
      endpoint,
      estimate: codePoints,
      malformed: (ep, reason) => {
        malformed.push([ep, reason]);
        store.parseError(ep, reason);
      },
    },
    hints,
  );
}

const STREAM_HINTS: RequestHints = { model: 'm', stream: true };

async function gauges(model: string): Promise<number[]> {
  return [
    await value(registry, m('inflight_requests'), { model }),
    await value(registry, m('active_requests'), { model }),
    await value(registry, m('queued_requests'), { model }),
  ];
}

beforeEach(() => setup());

describe('RequestState: start and gauges', () => {
  it('counts the start at once when the request body names an allow-listed model, and moves the gauges', async () => {
    setup({ models: ['m'] });
    const state = newRequest(STREAM_HINTS);
    expect(await value(registry, m('requests_started_total'), { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
    expect(await gauges('m')).toEqual([1, 1, 1]);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(2, 0);
    expect(await gauges('m')).toEqual([1, 1, 0]);
    state.completed();
    state.end('finished', 200);
    expect(await gauges('m')).toEqual([0, 0, 0]);
    expect(await value(registry, m('requests_started_total'))).toBe(1);
  });

  it('holds a name not admitted yet under unknown_model until the response head says it succeeded', async () => {
    const state = newRequest(STREAM_HINTS);
    expect(await value(registry, m('requests_started_total'))).toBe(0);
    expect(await gauges('unknown_model')).toEqual([1, 1, 1]);
    state.responseStarted(true, STREAM_HINTS, 200);
    expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    expect(await gauges('m')).toEqual([1, 1, 1]);
    expect(await value(registry, m('requests_started_total'), { model: 'm' })).toBe(1);
    state.completed();
    state.end('finished', 200);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a request that failed with a name not admitted yet under unknown_model, start included', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(false, STREAM_HINTS, 404);
    state.end('finished', 404);
    expect(await value(registry, m('requests_started_total'), { model: 'unknown_model' })).toBe(1);
    expect(await value(registry, m('requests_total'), { model: 'unknown_model', error_type: 'not_found' })).toBe(1);
    expect(await value(registry, m('requests_total'), { model: 'm' })).toBe(0);
    expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
  });

  it('decrements queued at the end when no token came', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.end('finished', 503);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('takes the model from the response when the body was not parsed, moving the gauges to its label', async () => {
    const state = newRequest(undefined);
    expect(await gauges('unknown_model')).toEqual([1, 1, 1]);
    state.responseStarted(true, undefined);
    expect(await value(registry, m('requests_started_total'))).toBe(0); // waits for the label
    state.responseModel('upstream-model');
    expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    expect(await gauges('upstream-model')).toEqual([1, 1, 1]);
    expect(await value(registry, m('requests_started_total'), { model: 'upstream-model', request_type: 'stream' })).toBe(1);
    state.responseModel('another-name'); // resolved once
    state.generatedTokens(1, 0);
    state.completed();
    state.end('finished', 200);
    expect(await value(registry, m('output_tokens_total'), { model: 'upstream-model' })).toBe(1);
    expect(await gauges('upstream-model')).toEqual([0, 0, 0]);
    expect(await value(registry, m('requests_total'), { model: 'upstream-model', status: 'success' })).toBe(1);
  });

  it('ends under unknown_model when nothing names the model', async () => {
    const state = newRequest(undefined);
    state.responseStarted(false, undefined);
    state.end('finished', 200);
    expect(await value(registry, m('requests_started_total'), { model: 'unknown_model', request_type: 'unary' })).toBe(1);
    expect(await value(registry, m('requests_total'), { model: 'unknown_model', status: 'success', error_type: '' })).toBe(1);
    expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
  });

  it('counts a request that ends before its response started exactly once as started and ended', async () => {
    const state = newRequest(undefined);
    state.end('client_left', 200);
    expect(await value(registry, m('requests_started_total'))).toBe(1);
    expect(await value(registry, m('requests_total'), { status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
  });
});

describe('RequestState: ends exactly once', () => {
  it('ignores later ends', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.completed();
    state.end('finished', 200);
    state.end('client_left', 200);
    state.end('finished', 500);
    expect(await value(registry, m('requests_total'))).toBe(1);
    expect(await value(registry, m('requests_total'), { status: 'success', error_type: '' })).toBe(1);
    expect(await value(registry, m('disconnected_clients'))).toBe(0);
    expect(await value(registry, m('request_duration_seconds'), {}, 'count')).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it.each([
    ['a completed stream', 'finished', 200, true, undefined, 'success', ''],
    ['a stream without its end marker', 'finished', 200, false, undefined, 'error', 'internal'],
    ['a stream with an error event', 'finished', 200, false, 'overload', 'error', 'overload'],
    ['a client that left', 'client_left', 200, false, undefined, 'error', 'cancelled'],
    ['a server abort', 'server_aborted', 200, false, undefined, 'error', 'internal'],
    ['a 404', 'finished', 404, true, undefined, 'error', 'not_found'],
    ['a 529', 'finished', 529, true, undefined, 'error', 'overload'],
  ] as const)('labels %s', async (_what, outcome, status, completed, failed, statusLabel, errorType) => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(1, 0);
    if (completed) state.completed();
    if (failed !== undefined) state.failed(failed);
    state.end(outcome, status);
    expect(await value(registry, m('requests_total'), { model: 'm', status: statusLabel, error_type: errorType })).toBe(1);
    expect(await value(registry, m('requests_total'))).toBe(1);
    const left = outcome === 'client_left' ? 1 : 0;
    expect(await value(registry, m('disconnected_clients'))).toBe(left);
    expect(await value(registry, m('model_cancellation_total'), { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(left);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(1);
  });

  it('treats a unary 2xx response without end marker as success', async () => {
    const state = newRequest({ model: 'm', stream: false });
    state.responseStarted(false, undefined);
    state.end('finished', 200);
    expect(await value(registry, m('requests_total'), { status: 'success', request_type: 'unary' })).toBe(1);
  });
});

describe('RequestState: tokens and timing', () => {
  it('counts tokens live, before the request ends', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(3, 0);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(3);
    state.generatedTokens(0, 0);
    state.generatedTokens(2, 1);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(5);
    expect(await value(registry, m('reasoning_tokens_total'), { model: 'm' })).toBe(1);
    state.completed();
    state.end('finished', 200);
    expect(await value(registry, m('output_sequence_tokens'), { model: 'm' }, 'sum')).toBe(5);
  });

  it('observes TTFT once, at the first token-bearing chunk, from arrival', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(0, 0);
    await sleep(40);
    state.generatedTokens(1, 0);
    state.generatedTokens(1, 0);
    expect(await value(registry, m('time_to_first_token_seconds'), { model: 'm' }, 'count')).toBe(1);
    expect(await value(registry, m('time_to_first_token_seconds'), { model: 'm' }, 'sum')).toBeGreaterThanOrEqual(0.035);
  });

  it('observes ITL n times for a chunk of n tokens after the first, divided over them; zero-token chunks do not reset the clock', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(2, 0); // first token-bearing chunk: no ITL samples
    await sleep(60);
    state.generatedTokens(0, 0); // does not reset the clock
    state.generatedTokens(3, 0); // 3 samples of ≈ 20 ms
    state.generatedTokens(1, 0);
    expect(await value(registry, m('inter_token_latency_seconds'), { model: 'm' }, 'count')).toBe(4);
    const sum = await value(registry, m('inter_token_latency_seconds'), { model: 'm' }, 'sum');
    expect(sum).toBeGreaterThanOrEqual(0.055);
    expect(sum).toBeLessThan(1);
    // Each of the 3 samples is ≈ 20 ms: above the 0.013 bound, so the bucket le=0.013 holds only the last chunk's sample.
    const samplesBelow13ms = (await registry.getSingleMetric(m('inter_token_latency_seconds'))!.get()).values.find(
      (sample) => (sample as { metricName?: string }).metricName?.endsWith('_bucket') && sample.labels.le === 0.013,
    );
    expect(samplesBelow13ms?.value).toBe(1);
  });

  it('does not time unary responses', async () => {
    const state = newRequest({ model: 'm', stream: false });
    state.responseStarted(false, undefined);
    state.generatedTokens(5, 0);
    state.end('finished', 200);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(5);
    expect(await value(registry, m('time_to_first_token_seconds'), {}, 'count')).toBe(0);
    expect(await value(registry, m('inter_token_latency_seconds'), {}, 'count')).toBe(0);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });
});

describe('RequestState: counts that are not positive numbers', () => {
  it('adds nothing for a NaN or negative reasoning part, and later chunks still count under the model', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(1, NaN);
    state.generatedTokens(2, -1);
    state.generatedTokens(5, 5);
    state.statedOutputTokens(100, 1.5, { tokens: 0, reasoning: 2 }, false);
    state.end('finished', 200);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(100);
    // 5 counted live, then 2 more from the usage-only event's own reasoning (1.5 is not a count).
    expect(await value(registry, m('reasoning_tokens_total'), { model: 'm' })).toBe(7);
  });
});

describe('RequestState: stated usage and exactness', () => {
  it('takes cumulative usage on every chunk as each chunk\'s exact count', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.statedOutputTokens(0, undefined, { tokens: 0, reasoning: 0 }, false);
    state.statedOutputTokens(4, undefined, { tokens: 9, reasoning: 0 }, true);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(4);
    state.statedOutputTokens(6, undefined, { tokens: 1, reasoning: 0 }, true);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(6);
    // The second token-bearing chunk (2 tokens) gave ITL samples; the first gave TTFT.
    expect(await value(registry, m('inter_token_latency_seconds'), {}, 'count')).toBe(2);
    expect(await value(registry, m('time_to_first_token_seconds'), {}, 'count')).toBe(1);
  });

  it('times a live chunk whose stated usage grows even when its own text counted 0 (e.g. the stop token)', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.statedOutputTokens(0, undefined, { tokens: 0, reasoning: 0 }, true);
    state.statedOutputTokens(1, undefined, { tokens: 0, reasoning: 0 }, true);
    expect(await value(registry, m('time_to_first_token_seconds'), {}, 'count')).toBe(1);
    expect(await gauges('m')).toEqual([1, 1, 0]);
    state.statedOutputTokens(3, undefined, { tokens: 2, reasoning: 0 }, true);
    state.statedOutputTokens(4, undefined, { tokens: 0, reasoning: 0 }, true);
    expect(await value(registry, m('inter_token_latency_seconds'), {}, 'count')).toBe(3);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(4);
  });

  it('does not time usage first stated on a generation chunk with no text (a finish chunk carrying the final usage)', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(2, 0);
    state.generatedTokens(3, 0);
    state.statedOutputTokens(9, undefined, { tokens: 0, reasoning: 0 }, true);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(9);
    expect(await value(registry, m('inter_token_latency_seconds'), {}, 'count')).toBe(3);
  });

  it("sums the counts stated for each choice apart, live, and takes the request's final count over them", async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.statedOutputTokens(1, undefined, { tokens: 1, reasoning: 0 }, true, 0);
    state.statedOutputTokens(1, undefined, { tokens: 1, reasoning: 0 }, true, 1);
    state.statedOutputTokens(3, undefined, { tokens: 2, reasoning: 0 }, true, 1);
    state.statedOutputTokens(2, undefined, { tokens: 1, reasoning: 0 }, true, 0);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(5);
    expect(await value(registry, m('inter_token_latency_seconds'), {}, 'count')).toBe(4);
    // A choice's own count going back is not believed; the others' stand.
    state.statedOutputTokens(1, undefined, { tokens: 0, reasoning: 0 }, true, 1);
    expect(malformed).toEqual([['chat_completions', 'usage_backwards']]);
    state.statedOutputTokens(6, undefined, { tokens: 0, reasoning: 0 }, false);
    state.completed();
    state.end('finished', 200);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(6);
    expect(await value(registry, m('output_sequence_tokens'), { model: 'm' }, 'sum')).toBe(6);
    expect(malformed).toHaveLength(1);
  });

  it('does not time the correction from a usage-only event', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(1, 0);
    state.statedOutputTokens(9, undefined, { tokens: 0, reasoning: 0 }, false);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(9);
    expect(await value(registry, m('inter_token_latency_seconds'), {}, 'count')).toBe(0);
  });

  it('corrects a low live estimate upward to the final usage', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(2, 0);
    state.generatedTokens(3, 0);
    state.statedOutputTokens(12, 4, { tokens: 0, reasoning: 0 }, false);
    state.completed();
    state.end('finished', 200);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(12);
    expect(await value(registry, m('reasoning_tokens_total'), { model: 'm' })).toBe(4);
    expect(await value(registry, m('output_tokens_overcount_total'), { model: 'm' })).toBe(0);
    expect(await value(registry, m('output_sequence_tokens'), { model: 'm' }, 'sum')).toBe(12);
  });

  it('publishes an overshoot of the live estimate in output_tokens_overcount_total', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(10, 0);
    state.generatedTokens(5, 0);
    state.statedOutputTokens(12, undefined, { tokens: 0, reasoning: 0 }, false);
    state.completed();
    state.end('finished', 200);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(15);
    expect(await value(registry, m('output_tokens_overcount_total'), { model: 'm' })).toBe(3);
    expect(await value(registry, m('output_sequence_tokens'), { model: 'm' }, 'sum')).toBe(12);
  });

  it('does not believe usage that goes backwards or is not a count', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.statedOutputTokens(5, undefined, { tokens: 1, reasoning: 0 }, true);
    state.statedOutputTokens(3, undefined, { tokens: 1, reasoning: 0 }, true);
    state.statedOutputTokens('7', undefined, { tokens: 2, reasoning: 0 }, true);
    state.statedOutputTokens(-1, undefined, { tokens: 0, reasoning: 0 }, false);
    expect(await value(registry, m('output_tokens_total'), { model: 'm' })).toBe(7);
    expect(malformed.map(([, reason]) => reason)).toEqual(['usage_backwards', 'invalid_usage', 'invalid_usage']);
    expect(await value(registry, m('parse_errors_total'), { endpoint: 'chat_completions', reason: 'invalid_usage' })).toBe(2);
  });

  it('counts prompt tokens once: input_tokens_total, input_sequence_tokens and cached_tokens', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.promptTokens(100, 40);
    state.promptTokens(100, 40);
    expect(await value(registry, m('input_tokens_total'), { model: 'm' })).toBe(100);
    expect(await value(registry, m('input_sequence_tokens'), { model: 'm' }, 'count')).toBe(1);
    expect(await value(registry, m('input_sequence_tokens'), { model: 'm' }, 'sum')).toBe(100);
    expect(await value(registry, m('cached_tokens'), { model: 'm' }, 'sum')).toBe(40);
  });

  it('does not observe output_sequence_tokens for a request without output', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.end('client_left', 200);
    expect(await value(registry, m('output_sequence_tokens'), {}, 'count')).toBe(0);
    expect(await value(registry, m('request_duration_seconds'), { model: 'm' }, 'count')).toBe(1);
  });

  it('counts the finish reason in requests_finished_total, Anthropic names mapped', async () => {
    for (const reason of ['stop', 'end_turn', 'tool_calls', 'weird']) {
      const state = newRequest(STREAM_HINTS);
      state.responseStarted(true, STREAM_HINTS);
      state.finishReason(reason);
      state.completed();
      state.end('finished', 200);
    }
    expect(await value(registry, m('requests_finished_total'), { model: 'm', finish_reason: 'stop' })).toBe(2);
    expect(await value(registry, m('requests_finished_total'), { model: 'm', finish_reason: 'tool_calls' })).toBe(1);
    expect(await value(registry, m('requests_finished_total'), { model: 'm', finish_reason: 'other' })).toBe(1);
  });
});

describe('MetricsStore', () => {
  it('registers every metric of the contract with its type', async () => {
    const types = Object.fromEntries((await registry.getMetricsAsJSON()).map((metric) => [metric.name, metric.type]));
    expect(types).toEqual({
      [m('output_tokens_total')]: 'counter',
      [m('reasoning_tokens_total')]: 'counter',
      [m('requests_total')]: 'counter',
      [m('requests_started_total')]: 'counter',
      [m('inflight_requests')]: 'gauge',
      [m('active_requests')]: 'gauge',
      [m('queued_requests')]: 'gauge',
      [m('disconnected_clients')]: 'gauge',
      [m('model_cancellation_total')]: 'counter',
      [m('request_duration_seconds')]: 'histogram',
      [m('time_to_first_token_seconds')]: 'histogram',
      [m('inter_token_latency_seconds')]: 'histogram',
      [m('input_sequence_tokens')]: 'histogram',
      [m('output_sequence_tokens')]: 'histogram',
      [m('cached_tokens')]: 'histogram',
      [m('input_tokens_total')]: 'counter',
      [m('requests_finished_total')]: 'counter',
      [m('output_tokens_estimated_total')]: 'counter',
      [m('output_tokens_overcount_total')]: 'counter',
      [m('parse_errors_total')]: 'counter',
    });
  });

  it('uses exactly the contract\'s label names on every metric', async () => {
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(1, 1);
    state.generatedTokens(1, 0);
    state.promptTokens(10, 2);
    state.statedOutputTokens(1, undefined, { tokens: 0, reasoning: 0 }, false);
    state.finishReason('stop');
    state.malformed('invalid_json');
    state.end('client_left', 200);
    const labelNames = async (suffix: string): Promise<string[]> => {
      const values = (await registry.getSingleMetric(m(suffix))!.get()).values;
      expect(values.length).toBeGreaterThan(0);
      const keys = new Set<string>();
      for (const sample of values) for (const key of Object.keys(sample.labels)) if (key !== 'le') keys.add(key);
      return [...keys].sort();
    };
    const expected: Record<string, string[]> = {
      output_tokens_total: ['model'],
      reasoning_tokens_total: ['model'],
      requests_total: ['endpoint', 'error_type', 'model', 'request_type', 'status'],
      requests_started_total: ['endpoint', 'model', 'request_type'],
      inflight_requests: ['model'],
      active_requests: ['model'],
      queued_requests: ['model'],
      disconnected_clients: [],
      model_cancellation_total: ['endpoint', 'model', 'request_type'],
      request_duration_seconds: ['model'],
      time_to_first_token_seconds: ['model'],
      inter_token_latency_seconds: ['model'],
      input_sequence_tokens: ['model'],
      output_sequence_tokens: ['model'],
      cached_tokens: ['model'],
      input_tokens_total: ['model'],
      requests_finished_total: ['finish_reason', 'model'],
      output_tokens_overcount_total: ['model'],
      parse_errors_total: ['endpoint', 'reason'],
    };
    for (const [suffix, names] of Object.entries(expected)) {
      expect({ suffix, labels: await labelNames(suffix) }).toEqual({ suffix, labels: names });
    }
  });

  it('returns the same store for the same registry and prefix, and refuses a foreign metric of the same name', () => {
    expect(MetricsStore.for(resolveOptions({ registry }))).toBe(store);
    const other = new Registry();
    other.registerMetric({ name: m('requests_total'), get: () => ({}) } as never);
    expect(() => MetricsStore.for(resolveOptions({ registry: other }))).toThrow(/already registered/);
  });

  it('caps model labels at 100 distinct names by default', async () => {
    for (let i = 0; i < 101; i++) {
      const state = newRequest({ model: `model-${i}`, stream: false });
      state.responseStarted(false, undefined);
      state.end('finished', 200);
    }
    const models = new Set((await registry.getSingleMetric(m('requests_total'))!.get()).values.map((v) => v.labels.model));
    expect(models.size).toBe(101);
    expect(models.has('model-99')).toBe(true);
    expect(models.has('model-100')).toBe(false);
    expect(await value(registry, m('requests_total'), { model: 'unknown_model' })).toBe(1);
  });

  it('uses the configured bounds', async () => {
    setup({ buckets: { timeToFirstToken: [0.5, 5], interTokenLatency: [0.25] } });
    const state = newRequest(STREAM_HINTS);
    state.responseStarted(true, STREAM_HINTS);
    state.generatedTokens(1, 0);
    state.generatedTokens(1, 0);
    const bounds = async (name: string): Promise<unknown[]> =>
      (await registry.getSingleMetric(name)!.get()).values
        .filter((sample) => (sample as { metricName?: string }).metricName === `${name}_bucket`)
        .map((sample) => sample.labels.le);
    expect(await bounds(m('time_to_first_token_seconds'))).toEqual([0.5, 5, '+Inf']);
    expect(await bounds(m('inter_token_latency_seconds'))).toEqual([0.25, '+Inf']);
  });
});
