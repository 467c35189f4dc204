/**
 * Streams generated chunks through the package's own request pipeline — the OpenAI chat reader and a
 * RequestState on a MetricsStore with a fresh registry, exactly as the middleware wires them — and reads the live
 * output-token count after every chunk, so the tables measure what the middleware does (estimator, empty-delta
 * rule, calibration, reconciliation with usage). The HTTP layer around it is tested in __tests__.
 */
import { Registry } from 'prom-client';
import { MetricsStore } from '../../lib/metrics';
import { resolveOptions } from '../../lib/options';
import { openAiReader } from '../../lib/formats/openai';
import { RequestState } from '../../lib/request/request-state';
import type { Chunk } from './streams';

export interface Simulated {
  /** The live counter's increase after each chunk (before the usage chunk). */
  live: number[];
  /** The counter's increase for the request once it ended (usage included). */
  final: number;
}

export class Pipeline {
  private readonly store = MetricsStore.for(resolveOptions({ registry: new Registry() }));

  /** One streamed chat completion of `chunks`; with `usage`, a final usage chunk states the true total. */
  request(model: string, chunks: Chunk[], usage: boolean): Simulated {
    const { store } = this;
    const series = store.seriesFor(model);
    const state = new RequestState({ store, endpoint: 'chat_completions', estimate: undefined, malformed: () => undefined }, { model, stream: true });
    state.responseStarted(true, undefined);
    const base = { id: 'chatcmpl-acc', object: 'chat.completion.chunk', created: 1, model };
    const event = (body: object) => openAiReader.readEvent(JSON.stringify({ ...base, ...body }), undefined, state);
    const start = series.pendingOutputTokens;
    event({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    const live: number[] = [];
    for (const c of chunks) {
      event({ choices: [{ index: 0, delta: { content: c.text }, finish_reason: null }] });
      live.push(series.pendingOutputTokens - start);
    }
    event({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    if (usage) {
      const completion = chunks.reduce((a, c) => a + c.tokens, 0);
      event({ choices: [], usage: { prompt_tokens: 12, completion_tokens: completion, total_tokens: 12 + completion } });
    }
    openAiReader.readEvent('[DONE]', undefined, state);
    state.end('finished', 200);
    return { live, final: series.pendingOutputTokens - start };
  }
}
