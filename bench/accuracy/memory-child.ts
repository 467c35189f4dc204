/**
 * Child process: memory an estimator's module adds to a process (RSS and heap, MB), measured before/after
 * loading it and counting one sample, after a forced GC. Run in its own process so tokenizers loaded by the
 * benchmark itself do not pollute the numbers. Usage: node --expose-gc --import tsx memory-child.ts <module>
 */
const mod = process.argv[2];

async function main(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  const settle = () => {
    for (let i = 0; i < 3; i++) gc?.();
  };
  settle();
  const before = process.memoryUsage();
  const sample = 'Hello, world! 你好，世界 🌍 const x = 1;';
  let n = 0;
  if (mod) {
    const m = (await import(mod)) as Record<string, unknown>;
    const fns = [m.estimateTokens, m.countTokens, (m.default as { encode?: unknown } | undefined)?.encode, m.encode];
    for (const f of fns) {
      if (typeof f === 'function') {
        const r = (f as (t: string) => unknown).call(m.default ?? m, sample);
        n = typeof r === 'number' ? r : Array.isArray(r) ? r.length : 0;
        break;
      }
    }
  }
  settle();
  const after = process.memoryUsage();
  // The per-response state of a streaming estimator, if the module has one: 10 000 live instances, each fed a delta.
  let bytesPerStream = 0;
  const Stream = mod ? ((await import(mod)) as { StreamEstimator?: new () => { count(t: string): number } }).StreamEstimator : undefined;
  if (Stream) {
    const held: { count(t: string): number }[] = [];
    for (let i = 0; i < 10000; i++) {
      const s = new Stream();
      s.count(' hello');
      held.push(s);
    }
    settle();
    bytesPerStream = Math.round((process.memoryUsage().heapUsed - after.heapUsed) / held.length);
  }
  const mb = (x: number) => Math.round((x / 1048576) * 10) / 10;
  process.stdout.write(
    JSON.stringify({ rssMB: mb(after.rss - before.rss), heapMB: mb(after.heapUsed - before.heapUsed), sample: n, bytesPerStream }),
  );
}

void main();
