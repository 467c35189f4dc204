import { anthropicReader } from './anthropic';
import { geminiReader } from './gemini';
import { isRecord } from './json';
import { ollamaReader } from './ollama';
import { openAiReader } from './openai';
import { responsesReader } from './responses';
import type { ObservationSink, WireFormatReader } from './types';

/** Anthropic's event types (its `error` event is told apart by its fallback: other formats send errors too). */
const ANTHROPIC_EVENTS: ReadonlySet<string> = new Set([
  'message_start',
  'content_block_start',
  'content_block_delta',
  'content_block_stop',
  'message_delta',
  'message_stop',
  'ping',
]);

/**
 * The format one event or line shows by its own fields, or undefined when it shows none (an error object, `[DONE]`,
 * something else): OpenAI chunks carry `choices` (Mistral's SDK wraps them in `data`), Responses events a
 * `response.*` type, Anthropic's their event types, Gemini's chunks `candidates` or `usageMetadata`, Ollama's lines
 * `done`.
 */
function formatOf(value: unknown, eventType: string | undefined): WireFormatReader | undefined {
  if (!isRecord(value)) return undefined;
  if (isChoices(value.choices) || value.object === 'chat.completion.chunk' || value.object === 'text_completion') return openAiReader;
  if (isRecord(value.data) && isChoices(value.data.choices)) return openAiReader;
  const type = typeof value.type === 'string' ? value.type : eventType;
  if (type !== undefined && type.startsWith('response.')) return responsesReader;
  if (type !== undefined && ANTHROPIC_EVENTS.has(type)) return anthropicReader;
  if (Array.isArray(value.candidates) || isRecord(value.usageMetadata)) return geminiReader;
  if (typeof value.done === 'boolean') return ollamaReader;
  return undefined;
}

/** OpenAI's `choices`: a list of choice objects (or none yet); a list of strings is some other JSON's. */
function isChoices(value: unknown): boolean {
  return Array.isArray(value) && (value.length === 0 || isRecord(value[0]));
}

/**
 * The format the first line of `text` shows, when that line is whole and is a JSON event of a known format that
 * names its model, as every OpenAI, Anthropic, Gemini and Ollama event that opens a stream does: text that starts
 * so is a relay's NDJSON, whatever its content type says. (Generated text can be JSON lines too, without a model.)
 */
export function formatOfFirstLine(text: string): WireFormatReader | undefined {
  const end = text.indexOf('\n');
  if (end === -1) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text.slice(0, end));
  } catch {
    return undefined;
  }
  return namesModel(value) ? formatOf(value, undefined) : undefined;
}

/**
 * How the first line of an SDK's `toReadableStream()` begins, as the SDKs write their events: an OpenAI chunk (or
 * Mistral's, wrapped in `data`) with its `id` then `object`, an Anthropic or Responses event with its `type`, a
 * Gemini chunk with its `candidates`.
 */
const RELAY_OPENINGS = ['{"id":"', '{"data":{"id":"', '{"type":"message_start"', '{"type":"response.', '{"candidates":['];
/** What follows an OpenAI chunk's `id` value. */
const AFTER_ID = '","object":"';
/** Longest `id` value waited for. */
const MAX_ID_LENGTH = 100;

/**
 * Whether text that has begun so (its first line not whole yet) may still be a relay's first event: so far it is
 * one of {@link RELAY_OPENINGS}, or the start of one. Generated text, such as the JSON of a structured answer, soon
 * shows it is not, and is counted as it comes.
 */
export function mayOpenRelayLine(head: string): boolean {
  for (const opening of RELAY_OPENINGS) {
    if (opening.startsWith(head)) return true;
    if (!head.startsWith(opening)) continue;
    if (!opening.endsWith('"id":"')) return true;
    const idEnd = head.indexOf('"', opening.length);
    if (idEnd === -1) return head.length - opening.length <= MAX_ID_LENGTH;
    const after = head.slice(idEnd, idEnd + AFTER_ID.length);
    return AFTER_ID.startsWith(after);
  }
  return false;
}

/** `model` (or Gemini's `modelVersion`) in the event, in Mistral's `data` wrap, or in Anthropic's or Responses' object. */
function namesModel(value: unknown): boolean {
  if (!isRecord(value)) return false;
  const inner = [value, value.data, value.message, value.response].find((part) => isRecord(part) && (typeof part.model === 'string' || typeof part.modelVersion === 'string'));
  return inner !== undefined;
}

/**
 * A response whose framing does not say which format its events are in, read by the format its events show: SSE
 * on Ollama's routes (Ollama never sends SSE; an app's `/api/chat` relays OpenAI, Anthropic or Gemini events) and
 * NDJSON on any route (Ollama's framing, and the one the OpenAI and Anthropic SDKs' `toReadableStream()` re-emit
 * chunks in). The first event that shows a format decides it for the rest of the response; until then, events go
 * to the fallback. One per response: the readers it hands events to stay stateless.
 */
export class FormatByContent implements WireFormatReader {
  private chosen: WireFormatReader | undefined;

  constructor(private readonly fallback: WireFormatReader) {}

  /** The chosen format's: until one is chosen, no event is taken for a shape. */
  get shapedEvents(): true | undefined {
    return this.chosen?.shapedEvents;
  }

  readEvent(data: string, eventType: string | undefined, sink: ObservationSink): void {
    (this.chosen ?? this.choose(data, eventType)).readEvent(data, eventType, sink);
  }

  readOversizedEvent(eventType: string | undefined, sink: ObservationSink): void {
    (this.chosen ?? this.fallback).readOversizedEvent?.(eventType, sink);
  }

  readBody(body: unknown, sink: ObservationSink): void {
    (formatOf(body, undefined) ?? this.fallback).readBody(body, sink);
  }

  private choose(data: string, eventType: string | undefined): WireFormatReader {
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch {
      return this.fallback;
    }
    this.chosen = formatOf(value, eventType);
    return this.chosen ?? this.fallback;
  }
}
