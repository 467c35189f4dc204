import { EventEmitter } from 'node:events';

/**
 * Watches for process warnings and listener leaks from inside Jest, where `process.on('warning')` never fires: the
 * test's `process` is a sandbox copy, while Node core warns on the real one.
 *
 * - `warnings`: calls to `process.emitWarning` made by code loaded in the test (the library, its dependencies).
 * - `leaks`: every `addListener`/`on`/`prependListener` on any EventEmitter (sockets, responses, servers, the real
 *   process…) that leaves more listeners for one event than the emitter allows: exactly the condition on which Node
 *   emits MaxListenersExceededWarning.
 */
export interface WarningWatch {
  warnings: { message: string; code: string | undefined; name: string }[];
  leaks: string[];
  stop(): void;
}

type AddListener = (this: EventEmitter, event: string | symbol, listener: (...args: unknown[]) => void) => EventEmitter;

export function watchWarnings(): WarningWatch {
  const watch: WarningWatch = { warnings: [], leaks: [], stop: () => undefined };
  const proto = EventEmitter.prototype as unknown as Record<'on' | 'addListener' | 'prependListener', AddListener>;
  const originals = { on: proto.on, addListener: proto.addListener, prependListener: proto.prependListener };
  for (const method of ['on', 'addListener', 'prependListener'] as const) {
    const original = originals[method];
    proto[method] = function watchedAddListener(this: EventEmitter, event, listener) {
      const result = original.call(this, event, listener);
      const max = this.getMaxListeners();
      if (max > 0 && this.listenerCount(event) > max && watch.leaks.length < 20) {
        watch.leaks.push(`${this.constructor.name}: ${this.listenerCount(event)} ${String(event)} listeners (max ${max})`);
      }
      return result;
    };
  }
  const originalEmitWarning = process.emitWarning;
  process.emitWarning = function watchedEmitWarning(this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const options = rest[0];
    const code =
      typeof options === 'object' && options !== null ? (options as { code?: string }).code : typeof rest[1] === 'string' ? rest[1] : undefined;
    watch.warnings.push({
      message: typeof warning === 'string' ? warning : warning.message,
      code: code ?? (warning as { code?: string }).code,
      name: typeof warning === 'string' ? (typeof options === 'string' ? options : ((options as { type?: string } | undefined)?.type ?? 'Warning')) : warning.name,
    });
    return (originalEmitWarning as (...args: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
  watch.stop = () => {
    proto.on = originals.on;
    proto.addListener = originals.addListener;
    proto.prependListener = originals.prependListener;
    process.emitWarning = originalEmitWarning;
  };
  return watch;
}
