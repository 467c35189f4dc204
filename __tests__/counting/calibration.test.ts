import { Registry } from 'prom-client';
import { MetricsStore } from '../../lib/metrics';
import { resolveOptions } from '../../lib/options';
import { openAiReader } from '../../lib/formats/openai';
import { RequestState } from '../../lib/request/request-state';
import { m, value } from '../support/registry-values';
import { codePoints } from '../support/streams';

// Request-state tests for what usage teaches: a model's total ending exactly at its stated usage, the live count
// leaning low to allow it, reasoning alike, and output_tokens_estimated_total for what no usage confirmed.

let registry: Registry;
let store: MetricsStore;

function setup(): void {
  registry = new Registry();
  store = MetricsStore.for(resolveOptions({ registry }));
}

beforeEach(() => setup());

/**
 * A streamed request counted with one token per code point (as a `countTokens` would), or the default estimator.
 * `unnamed`: neither the request nor its stream names a model (an AI SDK data stream without a `model` option).
 */
function newRequest(model: string | 'unnamed' = 'm', counter: 'code points' | 'default estimator' = 'code points'): RequestState {
  const estimate = counter === 'code points' ? codePoints : undefined;
  const hints = model === 'unnamed' ? undefined : { model, stream: true };
  const state = new RequestState({ store, endpoint: 'chat_completions', estimate, malformed: () => undefined }, hints);
  state.responseStarted(true, undefined);
  return state;
}

const read = (name: string, model = 'm'): Promise<number> => value(registry, m(name), { model });

interface Outcome {
  live: number;
  output: number;
  overcount: number;
  estimated: number;
  reasoning: number;
}

/**
 * One request: `chunks` deltas of `size` code points (the estimate), then usage `stated` (if given) with its
 * reasoning part; returns the counters' increases (`live`: before the usage arrived).
 */
async function run(
  chunks: number,
  size: number,
  stated: number | undefined,
  options: { reasoning?: boolean; statedReasoning?: number; model?: string } = {},
): Promise<Outcome> {
  const model = options.model === 'unnamed' ? 'unknown_model' : (options.model ?? 'm');
  const before = {
    output: await read('output_tokens_total', model),
    overcount: await read('output_tokens_overcount_total', model),
    estimated: await read('output_tokens_estimated_total', model),
    reasoning: await read('reasoning_tokens_total', model),
  };
  const state = newRequest(options.model ?? 'm');
  let previous = before.output;
  for (let i = 0; i < chunks; i++) {
    state.textDelta('x'.repeat(size), options.reasoning === true);
    const now = await read('output_tokens_total', model);
    expect(now).toBeGreaterThanOrEqual(previous);
    previous = now;
  }
  const live = (await read('output_tokens_total', model)) - before.output;
  if (stated !== undefined) state.statedOutputTokens(stated, options.statedReasoning, { tokens: 0, reasoning: 0 }, false);
  state.completed();
  state.end('finished', 200);
  return {
    live,
    output: (await read('output_tokens_total', model)) - before.output,
    overcount: (await read('output_tokens_overcount_total', model)) - before.overcount,
    estimated: (await read('output_tokens_estimated_total', model)) - before.estimated,
    reasoning: (await read('reasoning_tokens_total', model)) - before.reasoning,
  };
}

describe('calibration: totals end at the stated usage', () => {
  it('ends exactly at the usage from the 4th request of a model whose estimate overshoots', async () => {
    // The estimate (100 per request) is ~25% above the usage (78–82).
    const usages = [80, 78, 82, 79, 81, 80, 78, 82, 80, 79, 81, 80];
    const outcomes: Outcome[] = [];
    for (const usage of usages) outcomes.push(await run(50, 2, usage));
    expect(outcomes[0]).toMatchObject({ live: 100, output: 100, overcount: 20, estimated: 0 });
    for (const [i, o] of outcomes.entries()) {
      if (i < 3) continue;
      expect(o.output).toBe(usages[i]);
      expect(o.overcount).toBe(0);
      // Leaning low, but near the truth.
      expect(o.live).toBeLessThanOrEqual(usages[i]!);
      expect(o.live).toBeGreaterThanOrEqual(usages[i]! * 0.85);
    }
  });

  it('scales up a model whose estimate undercounts, still ending at the usage', async () => {
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 8; i++) outcomes.push(await run(40, 1, 60 + (i % 3)));
    expect(outcomes[0]!.live).toBe(40);
    for (const o of outcomes.slice(3)) {
      expect(o.overcount).toBe(0);
      expect(o.live).toBeGreaterThan(48);
    }
    expect(outcomes.slice(3).map((o) => o.output)).toEqual([60, 61, 62, 60, 61]);
  });

  it('ends reasoning_tokens_total at the stated reasoning tokens too', async () => {
    for (let i = 0; i < 3; i++) await run(30, 2, 45, { reasoning: true, statedReasoning: 45 });
    const o = await run(30, 2, 45, { reasoning: true, statedReasoning: 45 });
    expect(o.reasoning).toBe(45);
    expect(o.output).toBe(45);
    expect(o.overcount).toBe(0);
  });

  it('calibrates a stream that never names its model (unknown_model, taken after its first chunks) too', async () => {
    // The estimate (100 per request) is ~25% above the usage; the request's label is decided only mid-stream.
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 10; i++) outcomes.push(await run(50, 2, 80, { model: 'unnamed' }));
    expect(outcomes[0]).toMatchObject({ live: 100, output: 100, overcount: 20 });
    for (const o of outcomes.slice(4)) expect(o).toMatchObject({ output: 80, overcount: 0 });
  });

  it('learns per model and per store', async () => {
    for (let i = 0; i < 4; i++) await run(50, 2, 50);
    // Another model of the same store has learned nothing: its estimate stands.
    expect((await run(50, 2, undefined, { model: 'other' })).live).toBe(100);
    // Another store (another middleware) has learned nothing either.
    const learned = store;
    setup();
    expect(store).not.toBe(learned);
    expect((await run(50, 2, undefined)).live).toBe(100);
  });

  it('ends a stream without usage at the unbiased estimate, though its model leaned low for a usage that never came', async () => {
    // The estimate (100 per request) is ~25% above the usage (78–82): the live count leans below 80.
    for (const usage of [80, 78, 82, 79, 81]) await run(50, 2, usage);
    const o = await run(50, 2, undefined);
    expect(o.live).toBeLessThan(80);
    expect(o.output).toBeGreaterThanOrEqual(79);
    expect(o.output).toBeLessThanOrEqual(81);
    expect(o.estimated).toBe(o.output);
    // The next stream with usage still ends exactly at it.
    expect(await run(50, 2, 80)).toMatchObject({ output: 80, overcount: 0 });
  });

  it('uses the learned ratio unbiased once a model\'s streams stop stating usage', async () => {
    for (let i = 0; i < 4; i++) await run(50, 2, 50);
    for (let i = 0; i < 6; i++) await run(50, 2, undefined);
    const o = await run(50, 2, undefined);
    expect(o.output).toBeGreaterThanOrEqual(48);
    expect(o.output).toBeLessThanOrEqual(52);
  });
});

describe('output_tokens_estimated_total', () => {
  it('counts the output of requests that ended without usage, and nothing of those with usage', async () => {
    expect((await run(10, 3, undefined)).estimated).toBe(30);
    expect((await run(10, 3, 25)).estimated).toBe(0);
    expect((await run(10, 3, 40)).estimated).toBe(0);
    const total = await read('output_tokens_total');
    const estimated = await read('output_tokens_estimated_total');
    const overcount = await read('output_tokens_overcount_total');
    // What usage confirmed: the two stated requests' 25 + 40.
    expect(total - estimated - overcount).toBe(65);
  });
});

describe('calibration: bad usage', () => {
  it('never decreases a counter and is not taught by usage that is zero, too small, repeated or absent', async () => {
    const steps: Outcome[] = [];
    steps.push(await run(20, 2, 0)); // zero
    steps.push(await run(20, 2, 5)); // far smaller than counted
    steps.push(await run(20, 2, undefined)); // absent
    for (const o of steps) {
      for (const v of Object.values(o)) expect(v).toBeGreaterThanOrEqual(0);
    }
    expect(steps[0]).toMatchObject({ output: 40, overcount: 40 });
    // Neither taught the model that its text is worth 0 or 1/8 of the estimate.
    expect((await run(20, 2, undefined)).live).toBeGreaterThanOrEqual(36);

    // The same usage twice, then a smaller one: the first stands.
    const state = newRequest();
    state.textDelta('abcdef', false);
    state.statedOutputTokens(10, undefined, { tokens: 0, reasoning: 0 }, false);
    const afterFirst = await read('output_tokens_total');
    state.statedOutputTokens(10, undefined, { tokens: 0, reasoning: 0 }, false);
    state.statedOutputTokens(4, undefined, { tokens: 0, reasoning: 0 }, false);
    state.end('finished', 200);
    expect(await read('output_tokens_total')).toBe(afterFirst);
  });

  it('counts empty deltas as tokens only once text has started, through the OpenAI reader and the default estimator', async () => {
    const state = newRequest('m', 'default estimator');
    const chunk = (delta: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      openAiReader.readEvent(JSON.stringify({ model: 'm', choices: [{ index: 0, delta, finish_reason: null }], ...extra }), undefined, state);
    chunk({ role: 'assistant', content: '' });
    expect(await read('output_tokens_total')).toBe(0);
    chunk({ content: 'Hello' });
    chunk({ content: '' });
    chunk({ content: '' });
    chunk({ content: ' 🎂' });
    expect(await read('output_tokens_total')).toBe(4);
    // Ollama sends content "" beside reasoning text: the chunk is its reasoning's tokens, not one more.
    chunk({ content: '', reasoning: ' thinking' });
    expect(await read('output_tokens_total')).toBe(5);
    expect(await read('reasoning_tokens_total')).toBe(1);
    chunk({ content: '   ' });
    expect(await read('output_tokens_total')).toBe(6);
    state.end('finished', 200);
    expect(await read('output_tokens_estimated_total')).toBe(6);
  });
});
