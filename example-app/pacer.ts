import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';

/**
 * Paces generation steps on a fixed schedule (start + step × interval) rather than sleeping a fixed time after each
 * write, so slow writes do not stretch the stream and the measured rate matches the configured one. Aborting the
 * signal (the client went away) rejects the pending wait and leaves no timer behind.
 */
export function createPacer(stepsPerSecond: number, signal: AbortSignal): () => Promise<void> {
  const start = performance.now();
  let step = 0;
  return async () => {
    step += 1;
    if (stepsPerSecond <= 0) {
      // Unthrottled: still yield, so a disconnect is noticed and other requests get a turn.
      await nextTurn(undefined, { signal });
      return;
    }
    const due = start + (step * 1000) / stepsPerSecond;
    await sleep(Math.max(0, due - performance.now()), undefined, { signal });
  };
}
