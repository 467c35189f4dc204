/**
 * A real RequestState on a fresh Registry, built as the middleware builds it (one token per code point), and a
 * reader's events run through it, so a bad-input test can check the end result the contract speaks of: the value
 * is ignored or counted in parse_errors_total, and nothing throws.
 */
import { Registry } from 'prom-client';
import { MetricsStore } from '../../lib/metrics';
import { resolveOptions } from '../../lib/options';
import type { WireFormatReader } from '../../lib/formats/types';
import { RequestState } from '../../lib/request/request-state';
import { m, value } from './registry-values';
import { codePoints } from './streams';

export interface NewRequestState {
  registry: Registry;
  config: ReturnType<typeof resolveOptions>;
  state: RequestState;
  /** Reasons reported to `malformed`, in order. */
  malformed: string[];
}

/** One request to `endpoint`; what it reports as malformed is recorded and counted. */
export function newRequestState(endpoint: string, options: { maxBodyBytes?: number; maxEventBytes?: number } = {}): NewRequestState {
  const registry = new Registry();
  const config = resolveOptions({ registry, maxBodyBytes: options.maxBodyBytes, maxEventBytes: options.maxEventBytes });
  const store = MetricsStore.for(config);
  const malformed: string[] = [];
  const state = new RequestState(
    {
      store,
      endpoint,
      estimate: codePoints,
      malformed: (ep, reason) => {
        malformed.push(reason);
        store.parseError(ep, reason);
      },
    },
    undefined,
  );
  return { registry, config, state, malformed };
}

export interface StateRun {
  registry: Registry;
  /** Reasons reported to `malformed`, in order. */
  malformed: string[];
  output(model?: string): Promise<number>;
  reasoning(model?: string): Promise<number>;
  input(model?: string): Promise<number>;
  cachedCount(model?: string): Promise<number>;
  cachedSum(model?: string): Promise<number>;
  overcount(model?: string): Promise<number>;
  parseErrors(reason?: string): Promise<number>;
  requests(labels: Record<string, string>): Promise<number>;
  finished(reason: string): Promise<number>;
}

/** Feeds `events` (SSE data strings with their event type) or a unary `body` and ends the request with 200. */
export function runThroughState(
  reader: WireFormatReader,
  endpoint: string,
  input: { events: [string, string | undefined][] } | { body: unknown },
): StateRun {
  const { registry, state, malformed } = newRequestState(endpoint);
  if ('events' in input) {
    state.responseStarted(true, undefined);
    for (const [data, type] of input.events) reader.readEvent(data, type, state);
  } else {
    state.responseStarted(false, undefined);
    reader.readBody(input.body, state);
  }
  state.end('finished', 200);
  const byModel = (model: string | undefined): Record<string, string> => (model === undefined ? {} : { model });
  return {
    registry,
    malformed,
    output: (model) => value(registry, m('output_tokens_total'), byModel(model)),
    reasoning: (model) => value(registry, m('reasoning_tokens_total'), byModel(model)),
    input: (model) => value(registry, m('input_tokens_total'), byModel(model)),
    cachedCount: (model) => value(registry, m('cached_tokens'), byModel(model), 'count'),
    cachedSum: (model) => value(registry, m('cached_tokens'), byModel(model), 'sum'),
    overcount: (model) => value(registry, m('output_tokens_overcount_total'), byModel(model)),
    parseErrors: (reason) => value(registry, m('parse_errors_total'), reason === undefined ? {} : { reason }),
    requests: (labels) => value(registry, m('requests_total'), labels),
    finished: (reason) => value(registry, m('requests_finished_total'), { finish_reason: reason }),
  };
}

const BAD_VALUES: unknown[] = [undefined, null, -1, 1.5, '7', 'NaN', [], {}, 1e308, true, -0, 1e8 + 1];

/** A copy of a JSON value with fields replaced at random by values of the wrong type or range (top-level `type` kept). */
export function mangle(value: unknown, random: () => number, top = false): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => mangle(item, random));
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const key of Object.keys(copy)) {
    if (top && key === 'type') continue;
    if (random() < 0.3) copy[key] = BAD_VALUES[Math.floor(random() * BAD_VALUES.length)];
    else copy[key] = mangle(copy[key], random);
  }
  return copy;
}
