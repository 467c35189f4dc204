import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * A function that runs a full garbage collection: `global.gc` when node runs with `--expose-gc`, else the same
 * function obtained at run time (the flag can be set on a live isolate; a new context then exposes `gc`).
 */
export function garbageCollector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** heapUsed after two full collections (the second one frees what finalizers of the first released). */
export function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export const MB = 1024 * 1024;
