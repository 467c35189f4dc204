/** mulberry32: a tiny seeded PRNG, so "random" cut points are the same on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cuts `bytes` at `cuts` distinct random offsets (sorted), returning the pieces. */
export function cutAtRandom(bytes: Buffer, cuts: number, random: () => number): Buffer[] {
  const offsets = new Set<number>();
  while (offsets.size < Math.min(cuts, bytes.length - 1)) offsets.add(1 + Math.floor(random() * (bytes.length - 1)));
  return cutAt(bytes, [...offsets]);
}

/** Cuts `bytes` at the given offsets (deduplicated, sorted; offsets outside (0, length) are ignored). */
export function cutAt(bytes: Buffer, offsets: Iterable<number>): Buffer[] {
  const sorted = [...new Set(offsets)].filter((o) => o > 0 && o < bytes.length).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const offset of sorted) {
    pieces.push(bytes.subarray(start, offset));
    start = offset;
  }
  pieces.push(bytes.subarray(start));
  return pieces;
}
