/** OpenAI chat-completions stream builders shared by the reader, request-state and HTTP suites. */

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

/** One SSE event line pair for a JSON payload. */
export function sse(payload: unknown, lineEnd = '\n'): string {
  return `data: ${typeof payload === 'string' ? payload : JSON.stringify(payload)}${lineEnd}${lineEnd}`;
}

export const DONE = 'data: [DONE]\n\n';

/** A counting function that makes token counts exact and independent of the default estimator: one per code point. */
export function codePoints(text: string): number {
  return [...text].length;
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
