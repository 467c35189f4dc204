import type { ObservationSink } from './types';

/** Parses one event's JSON; malformed data is reported and yields undefined, so a reader never throws. */
export function parseJsonObject(data: string, sink: ObservationSink): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    sink.malformed('invalid_json', data.length > 120 ? `${data.slice(0, 120)}…` : data);
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    sink.malformed('unexpected_shape', typeof value);
    return undefined;
  }
  return value as Record<string, unknown>;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return isRecord(value) ? value : undefined;
}

/** A non-empty string's estimate; anything else counts 0 tokens (an empty string is reported, see `emptyText`). */
export function estimateText(value: unknown, sink: ObservationSink): number {
  if (typeof value !== 'string') return 0;
  if (value.length > 0) return sink.estimate(value);
  sink.emptyText?.();
  return 0;
}
