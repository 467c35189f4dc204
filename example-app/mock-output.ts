import { randomUUID } from 'node:crypto';
import type { GenerationRequest } from './mock-request';
import { hashText, tokensFrom } from './tokens';
import type { Token } from './tokens';

export type FinishReason = 'stop' | 'length';

export interface PlannedChoice {
  index: number;
  tokens: Token[];
  finishReason: FinishReason;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** Identity shared by every chunk of one response. */
export interface ResponseContext {
  request: GenerationRequest;
  id: string;
  created: number;
}

const MIN_NATURAL_LENGTH = 32;
const NATURAL_LENGTH_SPREAD = 128;

export function responseContext(request: GenerationRequest): ResponseContext {
  const prefix = request.endpoint === 'chat' ? 'chatcmpl' : 'cmpl';
  return { request, id: `${prefix}-${randomUUID().replace(/-/g, '')}`, created: Math.floor(Date.now() / 1000) };
}

/**
 * Decides every choice's tokens up front. A choice "wants" a length derived from its prompt (so sequence-length
 * histograms get a spread) and stops early at `max_tokens`; vLLM's `ignore_eos` makes it run to `max_tokens`, which
 * is how a test asks for an exact length.
 */
export function planChoices(request: GenerationRequest): PlannedChoice[] {
  const choices: PlannedChoice[] = [];
  request.prompts.forEach((prompt, promptIndex) => {
    const seed = hashText(`${request.model}\n${prompt}`);
    for (let i = 0; i < request.n; i++) {
      const index = promptIndex * request.n + i;
      const natural = MIN_NATURAL_LENGTH + ((seed + index * 31) % NATURAL_LENGTH_SPREAD);
      const max = request.maxTokens;
      let length = natural;
      let finishReason: FinishReason = 'stop';
      if (max !== undefined && (request.ignoreEos || max < natural)) {
        length = max;
        finishReason = 'length';
      }
      choices.push({ index, tokens: tokensFrom(seed + index * 97, length), finishReason });
    }
  });
  return choices;
}

export function usage(request: GenerationRequest, completionTokens: number): Usage {
  return {
    prompt_tokens: request.promptTokens,
    completion_tokens: completionTokens,
    total_tokens: request.promptTokens + completionTokens,
  };
}

// A made-up but stable log-probability, so the same token always reports the same value.
function logprobOf(token: Token): number {
  return -((Math.imul(token.id, 2654435761) >>> 0) % 1000) / 400;
}

function bytesOf(text: string): number[] {
  return [...Buffer.from(text, 'utf8')];
}

function alternatives(tokens: readonly Token[], position: number, count: number): Token[] {
  const picked: Token[] = [];
  for (let j = 0; j < count; j++) picked.push(tokens[(position + j) % tokens.length] as Token);
  return picked;
}

function chatLogprobs(ctx: ResponseContext, choice: PlannedChoice, from: number, to: number): unknown {
  if (!ctx.request.logprobs) return null;
  return {
    content: choice.tokens.slice(from, to).map((token, k) => ({
      token: token.text,
      logprob: logprobOf(token),
      bytes: bytesOf(token.text),
      top_logprobs: alternatives(choice.tokens, from + k, ctx.request.topLogprobs).map((alt) => ({
        token: alt.text,
        logprob: logprobOf(alt),
        bytes: bytesOf(alt.text),
      })),
    })),
  };
}

function completionLogprobs(ctx: ResponseContext, choice: PlannedChoice, from: number, to: number): unknown {
  if (!ctx.request.logprobs) return null;
  const tokens = choice.tokens.slice(from, to);
  let offset = choice.tokens.slice(0, from).reduce((sum, t) => sum + t.text.length, 0);
  const textOffset = tokens.map((t) => {
    const start = offset;
    offset += t.text.length;
    return start;
  });
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map(logprobOf),
    top_logprobs:
      ctx.request.topLogprobs > 0
        ? tokens.map((_, k) =>
            Object.fromEntries(
              alternatives(choice.tokens, from + k, ctx.request.topLogprobs).map((alt) => [alt.text, logprobOf(alt)]),
            ),
          )
        : null,
    text_offset: textOffset,
  };
}

function envelope(ctx: ResponseContext, object: string, choices: unknown[], usageField?: Usage): object {
  const body: Record<string, unknown> = { id: ctx.id, object, created: ctx.created, model: ctx.request.model, choices };
  if (usageField) body.usage = usageField;
  return body;
}

/** One streamed chunk for one choice: its tokens [from, to), the chat role opener, or the chunk with its finish_reason. */
export function streamChunk(
  ctx: ResponseContext,
  choice: PlannedChoice,
  part: { from: number; to: number } | 'role' | 'finish',
  runningUsage: Usage | undefined,
): object {
  const text = typeof part === 'object' ? choice.tokens.slice(part.from, part.to).map((t) => t.text).join('') : '';
  const finishReason = part === 'finish' ? choice.finishReason : null;
  if (ctx.request.endpoint === 'chat') {
    const delta = part === 'role' ? { role: 'assistant', content: '' } : part === 'finish' ? {} : { content: text };
    const logprobs = typeof part === 'object' ? chatLogprobs(ctx, choice, part.from, part.to) : null;
    return envelope(
      ctx,
      'chat.completion.chunk',
      [{ index: choice.index, delta, logprobs, finish_reason: finishReason }],
      runningUsage,
    );
  }
  const logprobs = typeof part === 'object' ? completionLogprobs(ctx, choice, part.from, part.to) : null;
  return envelope(
    ctx,
    'text_completion',
    [{ index: choice.index, text, logprobs, finish_reason: finishReason }],
    runningUsage,
  );
}

/** The chunk `include_usage` adds at the end: no choices, whole-request usage. */
export function usageChunk(ctx: ResponseContext, total: Usage): object {
  return envelope(ctx, ctx.request.endpoint === 'chat' ? 'chat.completion.chunk' : 'text_completion', [], total);
}

export function unaryBody(ctx: ResponseContext, choices: readonly PlannedChoice[]): object {
  const completionTokens = choices.reduce((sum, c) => sum + c.tokens.length, 0);
  const bodies = choices.map((choice) => {
    const text = choice.tokens.map((t) => t.text).join('');
    const all = { from: 0, to: choice.tokens.length };
    return ctx.request.endpoint === 'chat'
      ? {
          index: choice.index,
          message: { role: 'assistant', content: text },
          logprobs: chatLogprobs(ctx, choice, all.from, all.to),
          finish_reason: choice.finishReason,
        }
      : {
          index: choice.index,
          text,
          logprobs: completionLogprobs(ctx, choice, all.from, all.to),
          finish_reason: choice.finishReason,
        };
  });
  return envelope(
    ctx,
    ctx.request.endpoint === 'chat' ? 'chat.completion' : 'text_completion',
    bodies,
    usage(ctx.request, completionTokens),
  );
}
