/**
 * Realistic LLM response streams in the four supported wire formats (plus a unary chat body), built from a small
 * spec so that a property test can generate them, and an oracle that says what the middleware must count for them
 * when `countTokens` counts one token per code point.
 */
import fc from 'fast-check';
import { codePoints } from './streams';

export type StreamFormat = 'chat' | 'completions' | 'responses' | 'anthropic' | 'unary';

export const STREAM_FORMATS: readonly StreamFormat[] = ['chat', 'completions', 'responses', 'anthropic', 'unary'];

export interface TextDelta {
  /** Choice index (OpenAI `n > 1`); 0 for the formats without choices. */
  choice: number;
  text: string;
  /** True token count of this delta, as logprobs and usage report it. */
  tokens: number;
  reasoning: boolean;
}

export interface StreamSpec {
  format: StreamFormat;
  model: string;
  choices: number;
  deltas: TextDelta[];
  /** `continuous`: cumulative usage on every chunk (vLLM `continuous_usage_stats`; chat and completions only). */
  usage: 'none' | 'final' | 'continuous';
  logprobs: boolean;
  promptTokens: number;
  lineEnd: '\n' | '\r\n' | '\r';
  bom: boolean;
  comments: boolean;
  /** Every third event's JSON is spread over two `data:` lines. */
  splitData: boolean;
  spaceAfterColon: boolean;
  /** JSON with every non-ASCII character escaped as `\uXXXX` (Python's `ensure_ascii`). */
  asciiJson: boolean;
}

export interface BuiltStream {
  path: string;
  contentType: string;
  body: string;
  /** The body as its events (framing included; the first one with the BOM, if any), as an engine writes them. */
  events: string[];
  /** What the middleware must count with one token per code point. */
  expected: { outputTokens: number; overcount: number; inputTokens: number; finishReason: string };
}

export const ENDPOINT_PATH: Readonly<Record<StreamFormat, string>> = {
  chat: '/v1/chat/completions',
  completions: '/v1/completions',
  responses: '/v1/responses',
  anthropic: '/v1/messages',
  unary: '/v1/chat/completions',
};

export const ENDPOINT_LABEL: Readonly<Record<StreamFormat, string>> = {
  chat: 'chat_completions',
  completions: 'completions',
  responses: 'responses',
  anthropic: 'anthropic_messages',
  unary: 'chat_completions',
};

const FRAGMENTS = [
  ' the',
  'Héllo',
  '你好',
  '世界',
  '🌍',
  '👨‍👩‍👧',
  '🚀🚀',
  'naïve',
  'こんにちは',
  '한국어',
  '"',
  '\\',
  '\n',
  '\r\n',
  'a"b',
  '\t',
  ' ',
  '日本語',
  'Ω≈ç',
  '\u2028',
  'data: x',
  '\n\ndata: [DONE]\n\n',
  '{"json":1}',
  'é',
  '\u0000',
];

export const textArbitrary: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...FRAGMENTS),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }),
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }),
);

const modelArbitrary = fc.constantFrom('m', 'gpt-4o-mini', 'Meta-Llama-3.1-8B-Instruct', 'claude-x', 'qwen/Qwen2.5-7B');

export function streamSpecArbitrary(format: StreamFormat): fc.Arbitrary<StreamSpec> {
  const hasChoices = format === 'chat' || format === 'completions' || format === 'unary';
  return fc
    .record({
      model: modelArbitrary,
      choices: hasChoices ? fc.integer({ min: 1, max: 3 }) : fc.constant(1),
      rawDeltas: fc.array(
        fc.record({ choice: fc.nat(2), text: textArbitrary, tokens: fc.integer({ min: 1, max: 4 }), reasoning: fc.boolean() }),
        { minLength: 0, maxLength: 14, size: 'max' },
      ),
      usage: fc.constantFrom<StreamSpec['usage']>('none', 'final', 'continuous'),
      logprobs: fc.boolean(),
      promptTokens: fc.integer({ min: 1, max: 5000 }),
      lineEnd: fc.constantFrom<StreamSpec['lineEnd']>('\n', '\r\n', '\r'),
      bom: fc.boolean(),
      comments: fc.boolean(),
      splitData: fc.boolean(),
      spaceAfterColon: fc.boolean(),
      asciiJson: fc.boolean(),
    })
    .map(({ rawDeltas, ...rest }) => {
      const deltas = rawDeltas.map((d) => ({
        ...d,
        choice: d.choice % rest.choices,
        // Legacy completions have no reasoning field.
        reasoning: format === 'completions' ? false : d.reasoning,
      }));
      const usage = rest.usage === 'continuous' && !(format === 'chat' || format === 'completions') ? 'final' : rest.usage;
      return { ...rest, format, deltas, usage };
    });
}

function cumulativeUsage(spec: StreamSpec, completion: number): Record<string, unknown> {
  return {
    prompt_tokens: spec.promptTokens,
    completion_tokens: completion,
    total_tokens: spec.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: 0 },
  };
}

function tokenList(delta: TextDelta): string[] {
  return Array.from({ length: delta.tokens }, (_, i) => `${i}`);
}

function asciiEscaped(json: string): string {
  return json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The SSE text of one event, with the spec's framing quirks. */
function frame(spec: StreamSpec, index: number, data: string, eventType?: string): string {
  const colon = spec.spaceAfterColon ? ': ' : ':';
  const eol = spec.lineEnd;
  const lines: string[] = [];
  if (spec.asciiJson) data = asciiEscaped(data);
  if (eventType !== undefined) lines.push(`event${colon}${eventType}`);
  if (spec.splitData && index % 3 === 1 && data.startsWith('{')) {
    lines.push(`data${colon}{`, `data${colon}${data.slice(1)}`);
  } else {
    lines.push(`data${colon}${data}`);
  }
  if (spec.comments && index % 4 === 2) lines.splice(1, 0, ': a comment inside an event');
  let text = lines.join(eol) + eol + eol;
  if (spec.comments && index % 2 === 0) text += `: ping${eol}${eol}`;
  return text;
}

function withPrefix(prefix: string, events: string[]): string[] {
  return events.map((event, i) => (i === 0 ? prefix + event : event));
}

/** Builds the response body and what must be counted for it. */
export function buildStream(spec: StreamSpec): BuiltStream {
  const totalTokens = spec.deltas.reduce((sum, d) => sum + d.tokens, 0);
  const liveTokens = (perDelta: (d: TextDelta) => number): number => spec.deltas.reduce((sum, d) => sum + perDelta(d), 0);
  const settle = (live: number, stated: number | undefined): { outputTokens: number; overcount: number } =>
    stated === undefined ? { outputTokens: live, overcount: 0 } : { outputTokens: Math.max(live, stated), overcount: Math.max(0, live - stated) };
  const path = ENDPOINT_PATH[spec.format];
  const events: string[] = [];
  const push = (data: unknown, eventType?: string): void => {
    events.push(frame(spec, events.length, typeof data === 'string' ? data : JSON.stringify(data), eventType));
  };
  const prefix = spec.bom ? '\ufeff' : '';
  // An event stream's body and what it must count, once all its events are pushed.
  const sseStream = (live: number, inputTokens: number): BuiltStream => ({
    path,
    contentType: 'text/event-stream; charset=utf-8',
    body: prefix + events.join(''),
    events: withPrefix(prefix, events),
    expected: { ...settle(live, spec.usage === 'none' ? undefined : totalTokens), inputTokens, finishReason: 'stop' },
  });

  switch (spec.format) {
    case 'chat':
    case 'completions': {
      const chat = spec.format === 'chat';
      const continuous = spec.usage === 'continuous';
      // With continuous usage, vLLM and SGLang state on each choice's chunk that choice's own running count.
      const cumulative = Array.from({ length: spec.choices }, () => 0);
      const chunk = (choices: unknown[] | null, usage?: Record<string, unknown>): Record<string, unknown> => ({
        id: 'cmpl-1',
        object: chat ? 'chat.completion.chunk' : 'text_completion',
        created: 1,
        model: spec.model,
        choices,
        ...(usage === undefined ? {} : { usage }),
      });
      if (chat) {
        for (let c = 0; c < spec.choices; c++) {
          push(chunk([{ index: c, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], continuous ? cumulativeUsage(spec, 0) : undefined));
        }
      }
      for (const delta of spec.deltas) {
        cumulative[delta.choice] = (cumulative[delta.choice] ?? 0) + delta.tokens;
        const logprobs = !spec.logprobs
          ? null
          : chat
            ? { content: tokenList(delta).map((token) => ({ token, logprob: -0.5, bytes: [48], top_logprobs: [] })) }
            : { tokens: tokenList(delta), token_logprobs: tokenList(delta).map(() => -0.5), top_logprobs: null, text_offset: tokenList(delta).map((_, i) => i) };
        const choice = chat
          ? { index: delta.choice, delta: delta.reasoning ? { reasoning_content: delta.text } : { content: delta.text }, logprobs, finish_reason: null }
          : { index: delta.choice, text: delta.text, logprobs, finish_reason: null };
        push(chunk([choice], continuous ? cumulativeUsage(spec, cumulative[delta.choice] as number) : undefined));
      }
      for (let c = 0; c < spec.choices; c++) {
        const choice = chat ? { index: c, delta: {}, logprobs: null, finish_reason: 'stop' } : { index: c, text: '', logprobs: null, finish_reason: 'stop' };
        push(chunk([choice], continuous ? cumulativeUsage(spec, cumulative[c] as number) : undefined));
      }
      if (spec.usage !== 'none') push(chunk(chat ? [] : null, cumulativeUsage(spec, totalTokens)));
      push('[DONE]');
      const live = continuous ? totalTokens : liveTokens((d) => (spec.logprobs ? d.tokens : codePoints(d.text)));
      return sseStream(live, spec.usage === 'none' ? 0 : spec.promptTokens);
    }
    case 'responses': {
      let sequence = 0;
      const event = (type: string, fields: Record<string, unknown>): void => push({ type, sequence_number: sequence++, ...fields }, type);
      const reasoningTokens = spec.deltas.filter((d) => d.reasoning).reduce((sum, d) => sum + d.tokens, 0);
      const base = { id: 'resp_1', object: 'response', created_at: 1, model: spec.model };
      event('response.created', { response: { ...base, status: 'in_progress', output: [], usage: null } });
      event('response.in_progress', { response: { ...base, status: 'in_progress', output: [], usage: null } });
      event('response.output_item.added', { output_index: 0, item: { id: 'msg_1', type: 'message', status: 'in_progress', role: 'assistant', content: [] } });
      event('response.content_part.added', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
      for (const delta of spec.deltas) {
        if (delta.reasoning) {
          event('response.reasoning_text.delta', { item_id: 'rs_1', output_index: 0, content_index: 0, delta: delta.text });
        } else {
          event('response.output_text.delta', {
            item_id: 'msg_1',
            output_index: 0,
            content_index: 0,
            delta: delta.text,
            logprobs: spec.logprobs ? tokenList(delta).map((token) => ({ token, logprob: -0.5, top_logprobs: [] })) : [],
          });
        }
      }
      const text = spec.deltas.filter((d) => !d.reasoning).map((d) => d.text).join('');
      event('response.output_text.done', { item_id: 'msg_1', output_index: 0, content_index: 0, text, logprobs: [] });
      event('response.content_part.done', { item_id: 'msg_1', output_index: 0, content_index: 0, part: { type: 'output_text', text, annotations: [] } });
      const item = { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] };
      event('response.output_item.done', { output_index: 0, item });
      const usage =
        spec.usage === 'none'
          ? null
          : {
              input_tokens: spec.promptTokens,
              input_tokens_details: { cached_tokens: 0 },
              output_tokens: totalTokens,
              output_tokens_details: { reasoning_tokens: reasoningTokens },
              total_tokens: spec.promptTokens + totalTokens,
            };
      event('response.completed', { response: { ...base, status: 'completed', output: [item], usage } });
      const live = liveTokens((d) => (spec.logprobs && !d.reasoning ? d.tokens : codePoints(d.text)));
      return sseStream(live, spec.usage === 'none' ? 0 : spec.promptTokens);
    }
    case 'anthropic': {
      const event = (type: string, fields: Record<string, unknown>): void => push({ type, ...fields }, type);
      event('message_start', {
        message: {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          content: [],
          model: spec.model,
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: spec.promptTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
        },
      });
      event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
      spec.deltas.forEach((delta, i) => {
        if (i % 5 === 3) event('ping', {});
        event('content_block_delta', {
          index: 0,
          delta: delta.reasoning ? { type: 'thinking_delta', thinking: delta.text } : { type: 'text_delta', text: delta.text },
        });
      });
      event('content_block_stop', { index: 0 });
      event('message_delta', {
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        ...(spec.usage === 'none' ? {} : { usage: { output_tokens: totalTokens } }),
      });
      event('message_stop', {});
      const live = liveTokens((d) => codePoints(d.text));
      return sseStream(live, spec.promptTokens);
    }
    case 'unary': {
      const choices = Array.from({ length: spec.choices }, (_, c) => {
        const mine = spec.deltas.filter((d) => d.choice === c);
        const content = mine.filter((d) => !d.reasoning).map((d) => d.text).join('');
        const reasoning = mine.filter((d) => d.reasoning).map((d) => d.text).join('');
        return {
          index: c,
          message: { role: 'assistant', content, ...(reasoning.length > 0 ? { reasoning_content: reasoning } : {}) },
          logprobs: null,
          finish_reason: 'stop',
        };
      });
      const body = {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: spec.model,
        choices,
        ...(spec.usage === 'none' ? {} : { usage: cumulativeUsage(spec, totalTokens) }),
      };
      const unaryText = (spec.asciiJson ? asciiEscaped : (json: string) => json)(JSON.stringify(body, null, spec.splitData ? 2 : undefined));
      // A unary body's usage is its whole count (contract: "add their whole usage.completion_tokens").
      const outputTokens = spec.usage === 'none' ? liveTokens((d) => codePoints(d.text)) : totalTokens;
      return {
        path,
        contentType: 'application/json; charset=utf-8',
        body: unaryText,
        events: [unaryText],
        expected: {
          outputTokens,
          overcount: 0,
          inputTokens: spec.usage === 'none' ? 0 : spec.promptTokens,
          finishReason: 'stop',
        },
      };
    }
  }
}
