/**
 * Builders for OpenAI Responses and Anthropic Messages streams and bodies, shared by the reader unit tests and the
 * HTTP suite. Token counts assume the one-token-per-code-point estimator (`codePoints`), so every number is exact.
 */
import { codePoints } from './chat-fixtures';

export { RecordingSink } from './recording-sink';
export type { Observation } from './recording-sink';

// ---- SSE framing ----------------------------------------------------------------------------------------------

export interface TypedEvent {
  event: string;
  data: Record<string, unknown>;
}

/** One typed SSE event: `event:` line, `data:` line, blank line. */
export function typedSse(event: TypedEvent, lineEnd = '\n'): string {
  return `event: ${event.event}${lineEnd}data: ${JSON.stringify(event.data)}${lineEnd}${lineEnd}`;
}

export function toSse(events: TypedEvent[], lineEnd = '\n'): string {
  return events.map((event) => typedSse(event, lineEnd)).join('');
}

// ---- OpenAI Responses -----------------------------------------------------------------------------------------

export interface ResponsesUsage {
  input_tokens: unknown;
  output_tokens: unknown;
  cached?: unknown;
  reasoning?: unknown;
}

export function responsesUsage(usage: ResponsesUsage): Record<string, unknown> {
  const input = usage.input_tokens;
  const output = usage.output_tokens;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 'cached' in usage ? usage.cached : 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 'reasoning' in usage ? usage.reasoning : 0 },
    total_tokens: typeof input === 'number' && typeof output === 'number' ? input + output : null,
  };
}

/** A Responses `response` object as sent in created/completed/incomplete/failed events and unary bodies. */
export function responseObject(
  model: string,
  status: 'in_progress' | 'completed' | 'incomplete' | 'failed',
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id: 'resp_1',
    object: 'response',
    created_at: 1_700_000_000,
    status,
    error: null,
    incomplete_details: null,
    model,
    output: [],
    usage: null,
    ...extra,
  };
}

/** Sequence-numbered Responses events. */
export class ResponsesEvents {
  private sequence = 0;
  readonly events: TypedEvent[] = [];

  add(type: string, fields: Record<string, unknown>): this {
    this.events.push({ event: type, data: { type, sequence_number: this.sequence++, ...fields } });
    return this;
  }
  created(model: string): this {
    this.add('response.created', { response: responseObject(model, 'in_progress') });
    return this.add('response.in_progress', { response: responseObject(model, 'in_progress') });
  }
  delta(type: string, delta: string, outputIndex = 0): this {
    return this.add(type, { item_id: `item_${outputIndex}`, output_index: outputIndex, content_index: 0, delta });
  }
  text(delta: string): this {
    return this.delta('response.output_text.delta', delta, 1);
  }
}

export interface ResponsesStreamShape {
  model: string;
  reasoning: string[];
  text: string[];
  args?: string[];
  /** The terminal event; `none` cuts the stream before it. */
  end: 'completed' | 'incomplete' | 'failed' | 'none';
  usage?: ResponsesUsage;
  /** Extra fields of the terminal response object. */
  terminal?: Record<string, unknown>;
}

/** A realistic Responses stream: created, in_progress, a reasoning item, a message item, optionally a function call, a terminal event. */
export function responsesStream(shape: ResponsesStreamShape): TypedEvent[] {
  const e = new ResponsesEvents().created(shape.model);
  e.add('response.output_item.added', { output_index: 0, item: { id: 'rs_1', type: 'reasoning', summary: [] } });
  e.add('response.reasoning_summary_part.added', { item_id: 'rs_1', output_index: 0, summary_index: 0, part: { type: 'summary_text', text: '' } });
  for (const piece of shape.reasoning) e.delta('response.reasoning_summary_text.delta', piece, 0);
  e.add('response.reasoning_summary_text.done', { item_id: 'rs_1', output_index: 0, summary_index: 0, text: shape.reasoning.join('') });
  e.add('response.output_item.done', { output_index: 0, item: { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: shape.reasoning.join('') }] } });
  e.add('response.output_item.added', { output_index: 1, item: { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] } });
  e.add('response.content_part.added', { item_id: 'msg_1', output_index: 1, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
  for (const piece of shape.text) e.text(piece);
  const text = shape.text.join('');
  e.add('response.output_text.done', { item_id: 'msg_1', output_index: 1, content_index: 0, text });
  e.add('response.content_part.done', { item_id: 'msg_1', output_index: 1, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
  const output: Record<string, unknown>[] = [
    { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: shape.reasoning.join('') }] },
    { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] },
  ];
  e.add('response.output_item.done', { output_index: 1, item: output[1] });
  if (shape.args !== undefined) {
    e.add('response.output_item.added', { output_index: 2, item: { id: 'fc_1', type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '' } });
    for (const piece of shape.args) e.delta('response.function_call_arguments.delta', piece, 2);
    const args = shape.args.join('');
    e.add('response.function_call_arguments.done', { item_id: 'fc_1', output_index: 2, arguments: args });
    output.push({ id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'call_1', name: 'get_weather', arguments: args });
    e.add('response.output_item.done', { output_index: 2, item: output[2] });
  }
  if (shape.end !== 'none') {
    const usage = shape.usage === undefined ? null : responsesUsage(shape.usage);
    const extra: Record<string, unknown> = { output, usage, ...shape.terminal };
    if (shape.end === 'incomplete') extra.incomplete_details ??= { reason: 'max_output_tokens' };
    if (shape.end === 'failed') extra.error ??= { code: 'server_error', message: 'The model failed' };
    e.add(`response.${shape.end}`, { response: responseObject(shape.model, shape.end, extra) });
  }
  return e.events;
}

/** Token count of text pieces under the code-point estimator. */
export function countOf(pieces: readonly string[] | undefined): number {
  return (pieces ?? []).reduce((sum, piece) => sum + codePoints(piece), 0);
}

// ---- Anthropic Messages ---------------------------------------------------------------------------------------

export interface AnthropicPromptUsage {
  input_tokens: unknown;
  cache_creation_input_tokens?: unknown;
  cache_read_input_tokens?: unknown;
}

export function messageStart(model: string, usage: AnthropicPromptUsage, placeholderOutput: unknown = 1): TypedEvent {
  return {
    event: 'message_start',
    data: {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        content: [],
        model,
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: placeholderOutput },
      },
    },
  };
}

export function blockDelta(index: number, delta: Record<string, unknown>): TypedEvent {
  return { event: 'content_block_delta', data: { type: 'content_block_delta', index, delta } };
}

export const textDelta = (index: number, text: string): TypedEvent => blockDelta(index, { type: 'text_delta', text });
export const thinkingDelta = (index: number, thinking: string): TypedEvent => blockDelta(index, { type: 'thinking_delta', thinking });
export const jsonDelta = (index: number, partial: string): TypedEvent => blockDelta(index, { type: 'input_json_delta', partial_json: partial });
export const signatureDelta = (index: number): TypedEvent =>
  blockDelta(index, { type: 'signature_delta', signature: 'EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds' });

export function messageDelta(stopReason: string | null, outputTokens: unknown, extraUsage: Record<string, unknown> = {}): TypedEvent {
  return {
    event: 'message_delta',
    data: { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: outputTokens, ...extraUsage } },
  };
}

export const messageStop = (): TypedEvent => ({ event: 'message_stop', data: { type: 'message_stop' } });
export const ping = (): TypedEvent => ({ event: 'ping', data: { type: 'ping' } });

export function anthropicError(type: string, message = 'Overloaded'): TypedEvent {
  return { event: 'error', data: { type: 'error', error: { type, message } } };
}

function blockStart(index: number, block: Record<string, unknown>): TypedEvent {
  return { event: 'content_block_start', data: { type: 'content_block_start', index, content_block: block } };
}

function blockStop(index: number): TypedEvent {
  return { event: 'content_block_stop', data: { type: 'content_block_stop', index } };
}

export interface AnthropicStreamShape {
  model: string;
  prompt: AnthropicPromptUsage;
  thinking: string[];
  text: string[];
  toolJson?: string[];
  stopReason: string;
  /** Cumulative output tokens of each `message_delta` (the last one is the total); none: no usage. */
  outputTokens: number[];
  /** Where the stream ends: after `message_stop`, or cut before it (after the message_delta or after the deltas). */
  end?: 'stop' | 'before_stop' | 'before_delta';
}

/** A realistic Anthropic stream: message_start, ping, a thinking block with its signature, a text block, optionally a tool_use block, message_delta(s), message_stop. */
export function anthropicStream(shape: AnthropicStreamShape): TypedEvent[] {
  const events: TypedEvent[] = [messageStart(shape.model, shape.prompt), ping()];
  events.push(blockStart(0, { type: 'thinking', thinking: '' }));
  for (const piece of shape.thinking) events.push(thinkingDelta(0, piece));
  events.push(signatureDelta(0), blockStop(0));
  events.push(blockStart(1, { type: 'text', text: '' }));
  for (const piece of shape.text) events.push(textDelta(1, piece));
  events.push(blockStop(1));
  if (shape.toolJson !== undefined) {
    events.push(blockStart(2, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} }));
    for (const piece of shape.toolJson) events.push(jsonDelta(2, piece));
    events.push(blockStop(2));
  }
  if (shape.end === 'before_delta') return events;
  shape.outputTokens.forEach((total, i) => {
    events.push(messageDelta(i === shape.outputTokens.length - 1 ? shape.stopReason : null, total));
  });
  if (shape.end !== 'before_stop') events.push(messageStop());
  return events;
}

// ---- text pieces with multi-byte characters, so random cuts fall inside UTF-8 sequences ---------------------------

export const REASONING_PIECES = ['Thé', ' user', ' wänts', ' 天气', ' 🌦️'];
export const TEXT_PIECES = ['Hé', 'llo', ' wörld', ',', ' 你好', '世界', ' 🌍🚀', ' naïve', ' café', '!'];
export const ARG_PIECES = ['{"ci', 'ty":"', 'Zürich', '","u', 'nit":"°C"}'];
