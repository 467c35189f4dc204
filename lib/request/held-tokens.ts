import type { CounterSet, MetricsStore } from '../metrics';

/**
 * Token-bearing chunks held while no event has named the model yet (the formats that name it do in their first
 * event; a stream that never does is counted under `unknown_model` after this many). Streams of formats that need
 * not name it are not held at all (see `RequestState.modelNotInStream`).
 */
const MAX_CHUNKS_BEFORE_MODEL = 16;

/**
 * Tokens counted before the response named its model: they wait in a series of their own, and join the model's
 * series (counters, inter-token latency, time to first token) once the model is known.
 */
export class HeldTokens {
  private series: CounterSet | undefined;
  private chunks = 0;
  /** Time to first token, when the first token came before the model was named. */
  timeToFirstToken: number | undefined;

  /** The series for one more chunk, or undefined when too many waited: the request takes `unknown_model` then. */
  seriesForChunk(store: MetricsStore): CounterSet | undefined {
    if (++this.chunks > MAX_CHUNKS_BEFORE_MODEL) return undefined;
    return (this.series ??= store.detachedSeries());
  }

  /** The model is known: what was held joins its series. */
  release(series: CounterSet, store: MetricsStore): void {
    const held = this.series;
    if (held === undefined) return;
    this.series = undefined;
    series.absorb(held);
    if (this.timeToFirstToken !== undefined) store.observeTimeToFirstToken(series.model, this.timeToFirstToken);
  }
}
