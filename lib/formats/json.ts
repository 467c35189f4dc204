import { errorTypeForErrorObject } from '../labels';
import type { ObservationSink } from './types';

/**
 * Parses one event's JSON; malformed data is reported and yields undefined, so a reader never throws. An SSE
 * `event: error` whose data is not a JSON object is the server's own failure notice (NestJS writes its error
 * message so), not a malformed event: the stream failed.
 */
export function parseJsonObject(data: string, sink: ObservationSink, eventType?: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    if (eventType === 'error') sink.failed('internal');
    else sink.malformed('invalid_json', data.length > 120 ? `${data.slice(0, 120)}…` : data);
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    if (eventType === 'error') sink.failed('internal');
    else sink.malformed('unexpected_shape', typeof value);
    return undefined;
  }
  return value as Record<string, unknown>;
}

/**
 * One event of a stream that ends with OpenAI's `[DONE]` sentinel (OpenAI, the AI SDK): its JSON object, or
 * `undefined` after the sentinel (which completes the request) or after malformed data (reported).
 */
export function parseStreamChunk(data: string, sink: ObservationSink, eventType?: string): Record<string, unknown> | undefined {
  if (data === '[DONE]') {
    sink.completed();
    return undefined;
  }
  return parseJsonObject(data, sink, eventType);
}

/**
 * One event of a stream that ends with an event of its own (Anthropic's `message_stop`, the Responses API's
 * `response.completed`, Gemini's last chunk): its JSON object, or `undefined` after malformed data (reported) and
 * after OpenAI's `[DONE]` sentinel, which gateways append to the streams they pass on: it means nothing in these
 * formats, and is not malformed.
 */
export function parseEventObject(data: string, sink: ObservationSink, eventType?: string): Record<string, unknown> | undefined {
  return data === '[DONE]' ? undefined : parseJsonObject(data, sink, eventType);
}

/** A unary body as an object; anything else is reported as `unexpected_shape` and yields undefined. */
export function bodyObject(body: unknown, sink: ObservationSink): Record<string, unknown> | undefined {
  if (isRecord(body)) return body;
  sink.malformed('unexpected_shape', 'body is not an object');
  return undefined;
}

/**
 * A chunk or body that is `{"error": …}` in the OpenAI style (OpenAI, Gemini, Ollama and the servers that copy
 * them) fails the request with that error's type; whether it did.
 */
export function failedWithError(object: Record<string, unknown>, sink: ObservationSink): boolean {
  if (object.error === undefined || object.error === null) return false;
  sink.failed(errorTypeForErrorObject(object.error));
  return true;
}

/** A token count as the formats state it: a non-negative safe integer. */
export function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
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
