import type { Chunk, Vocabulary } from './streams';

export const CHECKPOINTS = [0.25, 0.5, 0.75, 1] as const;

/**
 * Signed relative error of the live counter at each checkpoint: after the first chunk at which the true
 * cumulative count reaches p × total, (estimated so far − true so far) / true so far.
 */
export function checkpointErrors(chunks: Chunk[], estimates: number[]): number[] {
  const total = chunks.reduce((s, c) => s + c.tokens, 0);
  const errors: number[] = [];
  let truth = 0;
  let est = 0;
  let next = 0;
  for (let i = 0; i < chunks.length && next < CHECKPOINTS.length; i++) {
    truth += chunks[i]!.tokens;
    est += estimates[i]!;
    while (next < CHECKPOINTS.length && truth >= CHECKPOINTS[next]! * total) {
      errors.push((est - truth) / truth);
      next++;
    }
  }
  return errors;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The value with the largest magnitude, sign kept (the worst stream's error). */
export function worst(values: number[]): number {
  let w = 0;
  for (const v of values) if (Math.abs(v) > Math.abs(w)) w = v;
  return w;
}

/**
 * Mean cost of one call in µs over the given deltas, from a timed loop after a warm-up. Timed in process CPU
 * time, not wall time: on a shared machine the wall clock also counts the time other processes held the CPU.
 */
export function costPerCall(
  est: { count(text: string, vocab: Vocabulary['name']): number },
  deltas: string[],
  vocab: Vocabulary['name'],
  budgetMs = 150,
): number {
  let sink = 0;
  for (let i = 0; i < Math.min(deltas.length, 20000); i++) sink += est.count(deltas[i]!, vocab);
  const cpu = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  let calls = 0;
  const start = cpu();
  let spent = 0;
  while (spent < budgetMs * 1000) {
    for (let i = 0; i < deltas.length; i++) sink += est.count(deltas[i]!, vocab);
    calls += deltas.length;
    spent = cpu() - start;
  }
  if (sink < 0) console.log(sink); // keeps the loop from being optimised away
  return spent / calls;
}
