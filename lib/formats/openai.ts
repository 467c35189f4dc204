import { asRecord, bodyObject, estimateText, failedWithError, isCount, isRecord, parseStreamChunk } from './json';
import type { ChunkCount, ObservationSink, WireFormatReader } from './types';

/**
 * OpenAI Chat Completions and legacy Completions, streamed (`chat.completion.chunk`, `text_completion`) and unary.
 * vLLM, SGLang, TGI, llama.cpp and Dynamo speak the same format, with their extensions: `reasoning_content` /
 * `reasoning` deltas and `continuous_usage_stats` (cumulative usage on every chunk); Groq states usage in
 * `x_groq.usage`; Mistral's reasoning models send `content` as a list of `thinking` and `text` parts.
 */
export const openAiReader: WireFormatReader = {
  shapedEvents: true,
  readEvent(data, eventType, sink) {
    const chunk = unwrapped(parseStreamChunk(data, sink, eventType));
    if (chunk === undefined || failedWithError(chunk, sink)) return;
    sink.responseModel(chunk.model);

    let tokens = 0;
    let reasoning = 0;
    const choices = chunk.choices;
    if (Array.isArray(choices)) {
      for (const choice of choices) {
        if (!isRecord(choice)) continue;
        const counted = countChoiceDelta(choice, sink);
        tokens += counted.tokens;
        reasoning += counted.reasoning;
        const finishReason = choice.finish_reason ?? choice.finishReason;
        if (finishReason !== undefined && finishReason !== null) {
          sink.finishReason(finishReason);
          sink.completed();
        }
      }
    }
    const live = Array.isArray(choices) && choices.length > 0;
    if (chunk.usage !== undefined) {
      readUsage(chunk.usage, { tokens, reasoning }, live, sink, live ? ownChoice(choices) : undefined);
    } else {
      // Groq states the request's usage under `x_groq` on its last chunk, unasked; Moonshot in that chunk's choice.
      readUsage(asRecord(chunk.x_groq)?.usage ?? (live ? asRecord(choices[0])?.usage : undefined), { tokens, reasoning }, live, sink);
    }
  },

  readBody(body, sink) {
    const response = bodyObject(body, sink);
    if (response === undefined || failedWithError(response, sink)) return;
    sink.responseModel(response.model);
    let tokens = 0;
    let reasoning = 0;
    if (Array.isArray(response.choices)) {
      for (const choice of response.choices) {
        if (!isRecord(choice)) continue;
        const message = asRecord(choice.message);
        const counted = message ? countMessage(message, sink) : { tokens: estimateText(choice.text, sink), reasoning: 0 };
        tokens += counted.tokens;
        reasoning += counted.reasoning;
        const finishReason = choice.finish_reason ?? choice.finishReason;
        if (finishReason !== undefined && finishReason !== null) sink.finishReason(finishReason);
      }
    }
    sink.completed();
    readUsage(response.usage, { tokens, reasoning }, false, sink);
  },
};

function countChoiceDelta(choice: Record<string, unknown>, sink: ObservationSink): ChunkCount {
  // Chat chunks carry a `delta`; legacy completions carry `text`.
  const delta = asRecord(choice.delta);
  const exact = logprobTokens(choice.logprobs);
  if (exact === undefined) return delta ? countMessage(delta, sink) : { tokens: estimateText(choice.text, sink), reasoning: 0 };
  // One logprobs entry per generated token: exact, so the text is not estimated (nor an empty one reported).
  // Reasoning keeps its estimate, bounded by the exact total.
  sink.countedExactly?.();
  const estimateNonEmpty = (value: unknown): number => (typeof value === 'string' && value.length > 0 ? sink.estimate(value) : 0);
  const reasoning = delta ? reasoningTokens(delta, estimateNonEmpty) + contentTokens(delta.content, estimateNonEmpty).reasoning : 0;
  return { tokens: exact, reasoning: Math.min(reasoning, exact) };
}

/** Generated text of a chat delta or message: content, reasoning, refusal, tool-call names and arguments. */
function countMessage(message: Record<string, unknown>, sink: ObservationSink): ChunkCount {
  const estimate = (value: unknown): number => estimateText(value, sink);
  const content = contentTokens(message.content, estimate);
  const reasoning = reasoningTokens(message, estimate) + content.reasoning;
  let tokens = reasoning + (content.tokens - content.reasoning) + estimateText(message.refusal, sink);
  // An audio answer's text is its transcript (`content` is null then).
  tokens += estimateText(asRecord(message.audio)?.transcript, sink);
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      const fn = isRecord(call) ? asRecord(call.function) : undefined;
      if (fn) tokens += estimateText(fn.name, sink) + estimateText(fn.arguments, sink);
    }
  }
  const legacyCall = asRecord(message.function_call);
  if (legacyCall) tokens += estimateText(legacyCall.name, sink) + estimateText(legacyCall.arguments, sink);
  return { tokens, reasoning };
}

/**
 * The reasoning text of a delta or message, `reasoning_content` or `reasoning`. vLLM sends the same text under both
 * names (it copies `reasoning` into the deprecated `reasoning_content`): counted once.
 */
function reasoningTokens(message: Record<string, unknown>, estimate: (value: unknown) => number): number {
  const { reasoning, reasoning_content: deprecated } = message;
  if (typeof reasoning === 'string' && reasoning === deprecated) return estimate(reasoning);
  return estimate(deprecated) + estimate(reasoning);
}

/**
 * `content`: a string, or Mistral's list of parts, `{type:"text",text}` and reasoning as
 * `{type:"thinking",thinking:[{type:"text",text}]}` (other parts, such as references, carry no generated text).
 */
function contentTokens(content: unknown, estimate: (value: unknown) => number): ChunkCount {
  if (!Array.isArray(content)) return { tokens: estimate(content), reasoning: 0 };
  let tokens = 0;
  let reasoning = 0;
  for (const part of content) {
    if (!isRecord(part)) continue;
    if (part.type === 'text') {
      tokens += estimate(part.text);
    } else if (part.type === 'thinking') {
      const thought = Array.isArray(part.thinking) ? contentTokens(part.thinking, estimate).tokens : estimate(part.thinking);
      tokens += thought;
      reasoning += thought;
    }
  }
  return { tokens, reasoning };
}

/** Number of tokens the logprobs of one choice describe, when it has any. */
function logprobTokens(logprobs: unknown): number | undefined {
  const record = asRecord(logprobs);
  if (record === undefined) return undefined;
  let count: number | undefined;
  for (const key of ['content', 'refusal', 'tokens']) {
    const entries = record[key];
    if (Array.isArray(entries)) count = (count ?? 0) + entries.length;
  }
  return count;
}

/**
 * The chunk itself, or the one a relay of Mistral's TypeScript SDK wraps as `{data: chunk}` (that SDK also writes
 * its fields in camelCase: `finishReason`, `completionTokens`).
 */
function unwrapped(chunk: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (chunk === undefined || chunk.choices !== undefined) return chunk;
  const inner = asRecord(chunk.data);
  return inner !== undefined && Array.isArray(inner.choices) ? inner : chunk;
}

/** Most choices a request can ask for (OpenAI's bound on `n`). */
const MAX_CHOICES = 128;

/**
 * The choice a chunk's usage counts alone: a chunk of one choice, as vLLM and SGLang send each choice's running
 * count with continuous usage (with `n = 1`, the request's). Undefined: the usage is the request's.
 */
function ownChoice(choices: unknown[]): number | undefined {
  const index = choices.length === 1 ? asRecord(choices[0])?.index : undefined;
  return typeof index === 'number' && Number.isInteger(index) && index >= 0 && index < MAX_CHOICES ? index : undefined;
}

/**
 * The output count: `completion_tokens`, reasoning included, as OpenAI states it. xAI's chat API states reasoning
 * apart, with `total_tokens` = prompt + completion + reasoning: then the output is the two together.
 */
function outputCount(usage: Record<string, unknown>, completion: unknown, reasoning: unknown): unknown {
  const prompt = usage.prompt_tokens;
  const apart = isCount(completion) && isCount(reasoning) && reasoning > 0 && isCount(prompt) && usage.total_tokens === prompt + completion + reasoning;
  return apart ? completion + reasoning : completion;
}

/**
 * Usage on a chunk or body is cumulative: for the whole request, or with `choice`, for that choice. It takes
 * precedence over the chunk's own count.
 */
function readUsage(usageValue: unknown, counted: ChunkCount, live: boolean, sink: ObservationSink, choice?: number): void {
  const usage = asRecord(usageValue);
  // `??` would take a stated null for absent: a null count is malformed, and reported as such.
  const completion = usage?.completion_tokens !== undefined ? usage.completion_tokens : usage?.completionTokens;
  if (usage === undefined || completion === undefined) {
    sink.generatedTokens(counted.tokens, counted.reasoning);
  } else {
    const reasoning = asRecord(usage.completion_tokens_details)?.reasoning_tokens;
    sink.statedOutputTokens(outputCount(usage, completion, reasoning), reasoning, counted, live, choice);
  }
  const prompt = usage?.prompt_tokens !== undefined ? usage.prompt_tokens : usage?.promptTokens;
  if (usage !== undefined && prompt !== undefined) {
    sink.promptTokens(prompt, asRecord(usage.prompt_tokens_details)?.cached_tokens);
  }
}
