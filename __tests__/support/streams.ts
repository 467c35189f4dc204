/**
 * Response streams of every wire format, as servers write them, and the ways a test cuts them into writes. Token
 * counts assume the one-token-per-code-point estimator ({@link codePoints}), so every number a test states is exact.
 * Text pieces hold multi-byte characters, so random cuts land inside UTF-8 sequences; counts a stream states are
 * chosen apart from its text's code points, so a test can tell a stated count from an estimate.
 */

/** A counting function that makes token counts exact and independent of the default estimator: one per code point. */
export function codePoints(text: string): number {
  return [...text].length;
}

/** Token count of text pieces under the code-point estimator. */
export function countOf(pieces: readonly string[] | undefined): number {
  return (pieces ?? []).reduce((sum, piece) => sum + codePoints(piece), 0);
}

// ---- SSE framing ----------------------------------------------------------------------------------------------

/** One SSE event line pair for a JSON payload (a string payload is written as it is). */
export function sse(payload: unknown, lineEnd = '\n'): string {
  return `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}${lineEnd}${lineEnd}`;
}

export const DONE = 'data: [DONE]\n\n';

/** The three line ends SSE allows, named. */
export const LINE_ENDS = [
  ['LF', '\n'],
  ['CRLF', '\r\n'],
  ['CR', '\r'],
] as const;

// ---- OpenAI chat completions -----------------------------------------------------------------------------------

export interface ChoiceDelta {
  index?: number;
  delta?: Record<string, unknown>;
  text?: string;
  finish_reason?: string | null;
  logprobs?: unknown;
}

export function chatChunk(model: string, choices: ChoiceDelta[] | null, usage?: Record<string, unknown>): Record<string, unknown> {
  const chunk: Record<string, unknown> = {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model,
    choices:
      choices === null
        ? null
        : choices.map((choice, i) => ({
            index: choice.index ?? i,
            delta: choice.delta ?? {},
            finish_reason: choice.finish_reason ?? null,
            ...(choice.logprobs === undefined ? {} : { logprobs: choice.logprobs }),
          })),
  };
  if (usage !== undefined) chunk.usage = usage;
  return chunk;
}

/** logprobs with one entry per token, as in `choices[].logprobs.content[]`. */
export function logprobs(tokens: string[]): Record<string, unknown> {
  return { content: tokens.map((token) => ({ token, logprob: -0.1, top_logprobs: [] })) };
}

export const RICH_STREAM_TOKENS = 5 + 4 + 3 + 4 + 3 + 2;

/**
 * A chat stream exercising the framing and counting rules at once: a BOM, CRLF line ends, comments, keep-alive
 * lines, `n = 2`, a data field split over two `data:` lines, emoji and CJK text, a chunk with logprobs, the final
 * usage chunk with `choices: []` (13 prompt tokens, 5 cached), `[DONE]`. Counted with {@link codePoints} its output is {@link RICH_STREAM_TOKENS}.
 */
export function richChatStream(model: string): string {
  const chunks: string[] = [];
  chunks.push('\ufeff: keep-alive comment\r\n\r\n');
  chunks.push(
    sse(
      chatChunk(model, [
        { index: 0, delta: { role: 'assistant', content: '' } },
        { index: 1, delta: { role: 'assistant', content: '' } },
      ]),
      '\r\n',
    ),
  );
  chunks.push(sse(chatChunk(model, [{ index: 0, delta: { content: 'Héllo' } }]), '\r\n')); // 5
  chunks.push(':\r\n\r\n'); // an empty comment as keep-alive
  chunks.push(sse(chatChunk(model, [{ index: 1, delta: { content: '你好世界' } }]), '\r\n')); // 4
  // One event whose JSON is split over two data lines (joined with "\n", still valid JSON).
  const twoLines = JSON.stringify(chatChunk(model, [{ index: 0, delta: { content: ' 🌍🚀' } }])).replace(',"choices"', ',\n"choices"');
  chunks.push(
    twoLines
      .split('\n')
      .map((line) => `data: ${line}\r\n`)
      .join('') + '\r\n',
  ); // 3
  chunks.push('\r\n'); // keep-alive blank line
  chunks.push(
    sse(
      chatChunk(model, [{ index: 1, delta: { content: 'ab' }, logprobs: logprobs(['a', 'b', 'c', 'd']) }]),
      '\r\n',
    ),
  ); // 4 (logprobs win over the text)
  chunks.push(sse(chatChunk(model, [{ index: 0, delta: { content: 'ünï' } }, { index: 1, delta: { content: '日本' } }]), '\r\n')); // 3 + 2
  chunks.push(
    sse(
      chatChunk(model, [
        { index: 0, delta: {}, finish_reason: 'stop' },
        { index: 1, delta: {}, finish_reason: 'length' },
      ]),
      '\r\n',
    ),
  );
  chunks.push(': ping\r\n\r\n');
  // The final usage chunk (`stream_options.include_usage`): agrees with the counted total, so nothing is corrected.
  chunks.push(
    sse(
      chatChunk(model, [], { prompt_tokens: 13, completion_tokens: RICH_STREAM_TOKENS, total_tokens: 13 + RICH_STREAM_TOKENS, prompt_tokens_details: { cached_tokens: 5 } }),
      '\r\n',
    ),
  );
  chunks.push('data: [DONE]\r\n\r\n');
  return chunks.join('');
}

/**
 * A stream with continuous usage stats (cumulative `completion_tokens` on every chunk) and a final usage chunk
 * with `choices: null`, CRLF line ends; its exact output is 6 tokens, 11 prompt tokens of which 3 cached.
 */
export function continuousUsageStream(model: string): string {
  const usage = (completion: number): Record<string, unknown> => ({
    prompt_tokens: 11,
    completion_tokens: completion,
    total_tokens: 11 + completion,
    prompt_tokens_details: { cached_tokens: 3 },
  });
  return [
    sse(chatChunk(model, [{ delta: { role: 'assistant', content: '' } }], usage(0)), '\r\n'),
    sse(chatChunk(model, [{ delta: { content: 'Hi 👋' } }], usage(2)), '\r\n'),
    sse(chatChunk(model, [{ delta: { content: ' 世界' } }], usage(4)), '\r\n'),
    sse(chatChunk(model, [{ delta: { content: '!' } }], usage(5)), '\r\n'),
    sse(chatChunk(model, [{ delta: { content: '' }, finish_reason: 'stop' }], usage(6)), '\r\n'),
    sse(chatChunk(model, null, usage(6)), '\r\n'),
    'data: [DONE]\r\n\r\n',
  ].join('');
}

/** A chat chunk event with one content delta. */
export const contentChunk = (model: string, content: string): string => sse(chatChunk(model, [{ delta: { content } }]));
/** The first chat chunk event of a stream: the assistant role, no text. */
export const roleChunk = (model: string): string => sse(chatChunk(model, [{ delta: { role: 'assistant', content: '' } }]));
/** A chat chunk event with the finish reason. */
export const finishChunk = (model: string, reason = 'stop'): string => sse(chatChunk(model, [{ delta: {}, finish_reason: reason }]));

/** One chat-completion chunk event with a single choice: its content, or (content undefined) its finish reason. */
export function chatEvent(model: string, content: string | undefined, finish?: string): string {
  const choice = content === undefined ? { index: 0, delta: {}, finish_reason: finish ?? null } : { index: 0, delta: { content }, finish_reason: null };
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model, choices: [choice] })}\n\n`;
}

// ---- typed SSE events (Responses, Anthropic) ----------------------------------------------------------------

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

// ---- text pieces with multi-byte characters ---------------------------------------------------------------------

export const REASONING_PIECES = ['Thé', ' user', ' wänts', ' 天气', ' 🌦️'];
export const TEXT_PIECES = ['Hé', 'llo', ' wörld', ',', ' 你好', '世界', ' 🌍🚀', ' naïve', ' café', '!'];
export const ARG_PIECES = ['{"ci', 'ty":"', 'Zürich', '","u', 'nit":"°C"}'];

// ---- Gemini and Ollama -----------------------------------------------------------------------------------------
// Shaped as their documentation shows them: Gemini's API reference and captured `alt=sse` streams; Ollama's
// docs/api.md and docs/api/streaming.mdx.

export const PIECES = ['Hé', 'llo', ' wörld', ' 🌍', ', ', 'ça', ' va', '?'];
export const THOUGHT_PIECES = ['Let', ' me', ' thïnk'];

// ---- Gemini ---------------------------------------------------------------------------------------------------

export interface GeminiShape {
  model: string;
  pieces: string[];
  thoughts?: string[];
  /** Stated cumulative answer tokens after each piece (defaults to 2 per piece). */
  answerTokens?: number[];
  /** Thinking tokens, stated on every chunk once thinking is done. */
  thoughtsTokens?: number;
  prompt?: number;
  cached?: number;
  finishReason?: string;
}

export function geminiChunks(shape: GeminiShape): Record<string, unknown>[] {
  const chunks: Record<string, unknown>[] = [];
  const answer = shape.answerTokens ?? shape.pieces.map((_, i) => 2 * (i + 1));
  for (const thought of shape.thoughts ?? []) {
    chunks.push({
      candidates: [{ content: { parts: [{ text: thought, thought: true }], role: 'model' }, index: 0 }],
      usageMetadata: {
        promptTokenCount: shape.prompt ?? 9,
        totalTokenCount: shape.prompt ?? 9,
        ...(shape.cached !== undefined ? { cachedContentTokenCount: shape.cached } : {}),
      },
      modelVersion: shape.model,
      responseId: 'resp-1',
    });
  }
  shape.pieces.forEach((text, i) => {
    const last = i === shape.pieces.length - 1;
    const usage: Record<string, unknown> = {
      promptTokenCount: shape.prompt ?? 9,
      candidatesTokenCount: answer[i],
      totalTokenCount: (shape.prompt ?? 9) + (answer[i] as number) + (shape.thoughtsTokens ?? 0),
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: shape.prompt ?? 9 }],
    };
    if (shape.thoughtsTokens !== undefined) usage.thoughtsTokenCount = shape.thoughtsTokens;
    if (shape.cached !== undefined) usage.cachedContentTokenCount = shape.cached;
    chunks.push({
      candidates: [
        {
          content: { parts: [{ text }], role: 'model' },
          ...(last ? { finishReason: shape.finishReason ?? 'STOP' } : {}),
          index: 0,
        },
      ],
      usageMetadata: usage,
      modelVersion: shape.model,
      responseId: 'resp-1',
    });
  });
  return chunks;
}

/** `alt=sse` framing: Gemini ends its lines with CRLF. */
export function geminiSse(chunks: Record<string, unknown>[], lineEnd = '\r\n'): string {
  return chunks.map((chunk) => sse(chunk, lineEnd)).join('');
}

/** The unary `:generateContent` body for the same answer. */
export function geminiBody(shape: GeminiShape): Record<string, unknown> {
  const chunks = geminiChunks({ ...shape, thoughts: [] });
  const last = chunks[chunks.length - 1] as Record<string, unknown>;
  return {
    ...last,
    candidates: [{ content: { parts: [{ text: shape.pieces.join('') }], role: 'model' }, finishReason: shape.finishReason ?? 'STOP', index: 0 }],
  };
}

export const GEMINI_PATH = '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse';

// ---- Ollama ---------------------------------------------------------------------------------------------------

export interface OllamaShape {
  model: string;
  pieces: string[];
  thinking?: string[];
  kind?: 'chat' | 'generate';
  evalCount?: number;
  promptEvalCount?: number;
  doneReason?: string;
}

const CREATED = Date.UTC(2025, 9, 26, 17, 15, 24);

export function ollamaLines(shape: OllamaShape): Record<string, unknown>[] {
  const kind = shape.kind ?? 'chat';
  const lines: Record<string, unknown>[] = [];
  let at = CREATED;
  const line = (fields: Record<string, unknown>): Record<string, unknown> => ({ model: shape.model, created_at: new Date((at += 11)).toISOString(), ...fields });
  for (const thinking of shape.thinking ?? []) {
    lines.push(line(kind === 'chat' ? { message: { role: 'assistant', content: '', thinking }, done: false } : { response: '', thinking, done: false }));
  }
  for (const text of shape.pieces) {
    lines.push(line(kind === 'chat' ? { message: { role: 'assistant', content: text }, done: false } : { response: text, done: false }));
  }
  const final: Record<string, unknown> = {
    ...(kind === 'chat' ? { message: { role: 'assistant', content: '' } } : { response: '' }),
    done: true,
    done_reason: shape.doneReason ?? 'stop',
    total_duration: 4883583458,
    load_duration: 1334875,
    prompt_eval_duration: 342546000,
    eval_duration: 4535599000,
  };
  if (shape.promptEvalCount !== undefined) final.prompt_eval_count = shape.promptEvalCount;
  if (shape.evalCount !== undefined) final.eval_count = shape.evalCount;
  lines.push(line(final));
  return lines;
}

export function ndjson(lines: unknown[], lineEnd = '\n'): string {
  return lines.map((line) => `${JSON.stringify(line)}${lineEnd}`).join('');
}

/** The `stream: false` body for the same answer. */
export function ollamaBody(shape: OllamaShape): Record<string, unknown> {
  const lines = ollamaLines({ ...shape, thinking: [] });
  const last = lines[lines.length - 1] as Record<string, unknown>;
  const text = shape.pieces.join('');
  return (shape.kind ?? 'chat') === 'chat' ? { ...last, message: { role: 'assistant', content: text } } : { ...last, response: text };
}

// ---- cutting a stream into writes --------------------------------------------------------------------------------

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

/** Cuts `bytes` at `cuts` distinct random offsets (sorted), returning the pieces. */
export function cutAtRandom(bytes: Buffer, cuts: number, random: () => number): Buffer[] {
  const offsets = new Set<number>();
  while (offsets.size < Math.min(cuts, bytes.length - 1)) offsets.add(1 + Math.floor(random() * (bytes.length - 1)));
  return cutAt(bytes, [...offsets]);
}

/**
 * Byte offsets where a cut is awkward for a reader: inside a multi-byte UTF-8 character (before each continuation
 * byte) and right after every CR (between CR and LF, and after a CR that ends a line on its own).
 */
export function awkwardOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let i = 1; i < bytes.length; i++) {
    if (bytes[i - 1] === 0x0d || ((bytes[i] as number) & 0xc0) === 0x80) offsets.push(i);
  }
  return offsets;
}

/** Byte offsets of the event boundaries of a body given as its events. */
export function eventOffsets(events: readonly string[]): number[] {
  const offsets: number[] = [];
  let at = 0;
  for (const event of events) {
    at += Buffer.byteLength(event, 'utf8');
    offsets.push(at);
  }
  return offsets;
}

/** How many random cuts: a number, or drawn from the same seeded generator. */
export type RandomCuts = number | ((random: () => number) => number);

/**
 * The ways the HTTP suites write one stream, each named: whole, cut at every awkward offset, cut at seeded random
 * offsets (one entry per `randomCuts`), and optionally one byte per write.
 */
export function cuttings(bytes: Buffer, random: () => number, randomCuts: readonly RandomCuts[], options: { bytePerWrite?: boolean } = {}): [string, Buffer[]][] {
  const cuts: [string, Buffer[]][] = [
    ['whole', [bytes]],
    ['inside every UTF-8 character and after every CR', cutAt(bytes, awkwardOffsets(bytes))],
  ];
  randomCuts.forEach((count, i) => {
    cuts.push([`random cuts ${i}`, cutAtRandom(bytes, typeof count === 'number' ? count : count(random), random)]);
  });
  if (options.bytePerWrite === true) cuts.push(['one byte per write', cutAt(bytes, Array.from({ length: bytes.length }, (_, i) => i))]);
  return cuts;
}
