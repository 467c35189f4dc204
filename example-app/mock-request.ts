import { RequestError } from './openai-error';
import { countPromptTokens } from './tokens';

export type Endpoint = 'chat' | 'completion';

/** A validated generation request: everything the mock needs, nothing it does not. */
export interface GenerationRequest {
  endpoint: Endpoint;
  model: string;
  prompts: string[];
  promptTokens: number;
  n: number;
  maxTokens: number | undefined;
  ignoreEos: boolean;
  stream: boolean;
  includeUsage: boolean;
  continuousUsage: boolean;
  logprobs: boolean;
  topLogprobs: number;
}

export interface ModelLimits {
  models: readonly string[];
  maxModelLen: number;
}

const MAX_N = 16;
const MAX_TOP_LOGPROBS = 20;
const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
// OpenAI's chat format adds a few tokens of framing per message and for the reply's priming.
const TOKENS_PER_MESSAGE = 4;
const TOKENS_FOR_REPLY = 3;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string, param: string | null): RequestError {
  return new RequestError(400, message, param);
}

function optionalBoolean(body: Json, name: string): boolean | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(`'${name}' must be a boolean`, name);
  return value;
}

function optionalInteger(body: Json, name: string, min: number, max: number): number | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`'${name}' must be an integer between ${min} and ${max}, got ${JSON.stringify(value)}`, name);
  }
  return value;
}

function messageText(message: unknown, index: number): string {
  const param = `messages[${index}]`;
  if (!isObject(message)) throw invalid(`${param} must be an object`, param);
  if (typeof message.role !== 'string' || !ROLES.has(message.role)) {
    throw invalid(`${param}.role must be one of ${[...ROLES].join(', ')}`, `${param}.role`);
  }
  const content = message.content;
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) {
    if (message.role === 'assistant') return '';
    throw invalid(`${param}.content is required`, `${param}.content`);
  }
  if (!Array.isArray(content)) throw invalid(`${param}.content must be a string or an array`, `${param}.content`);
  return content
    .map((part, partIndex) => {
      if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') {
        throw invalid(`${param}.content[${partIndex}] must be a text part`, `${param}.content[${partIndex}]`);
      }
      return part.text;
    })
    .join('');
}

function chatPrompt(body: Json): { prompts: string[]; promptTokens: number } {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw invalid("'messages' must be a non-empty array", 'messages');
  }
  const texts = messages.map(messageText);
  const promptTokens =
    texts.reduce((sum, text) => sum + countPromptTokens(text) + TOKENS_PER_MESSAGE, 0) + TOKENS_FOR_REPLY;
  return { prompts: [texts.join('\n')], promptTokens };
}

function completionPrompt(body: Json): { prompts: string[]; promptTokens: number } {
  const prompt = body.prompt;
  const prompts = typeof prompt === 'string' ? [prompt] : prompt;
  if (!Array.isArray(prompts) || prompts.length === 0 || !prompts.every((p) => typeof p === 'string')) {
    throw invalid("'prompt' must be a string or a non-empty array of strings", 'prompt');
  }
  const promptTokens = prompts.reduce((sum, p: string) => sum + countPromptTokens(p), 0);
  return { prompts: prompts as string[], promptTokens };
}

function logprobSettings(endpoint: Endpoint, body: Json): { logprobs: boolean; topLogprobs: number } {
  if (endpoint === 'completion') {
    // The legacy API's `logprobs` is the number of alternatives per token, not a flag.
    const top = optionalInteger(body, 'logprobs', 0, 5);
    return { logprobs: top !== undefined, topLogprobs: top ?? 0 };
  }
  const logprobs = optionalBoolean(body, 'logprobs') ?? false;
  const topLogprobs = optionalInteger(body, 'top_logprobs', 0, MAX_TOP_LOGPROBS);
  if (topLogprobs !== undefined && !logprobs) {
    throw invalid("'top_logprobs' requires 'logprobs' to be true", 'top_logprobs');
  }
  return { logprobs, topLogprobs: topLogprobs ?? 0 };
}

function streamSettings(body: Json, stream: boolean): { includeUsage: boolean; continuousUsage: boolean } {
  const options = body.stream_options;
  if (options === undefined || options === null) return { includeUsage: false, continuousUsage: false };
  if (!stream) throw invalid("'stream_options' is only allowed when 'stream' is true", 'stream_options');
  if (!isObject(options)) throw invalid("'stream_options' must be an object", 'stream_options');
  return {
    includeUsage: optionalBoolean(options, 'include_usage') ?? false,
    // vLLM and SGLang's extension: usage on every chunk.
    continuousUsage: optionalBoolean(options, 'continuous_usage_stats') ?? false,
  };
}

/** Reads a request body the way an OpenAI-compatible server does; throws a RequestError for anything it would reject. */
export function parseGenerationRequest(endpoint: Endpoint, body: unknown, limits: ModelLimits): GenerationRequest {
  if (!isObject(body)) {
    throw invalid('the request body must be a JSON object (send Content-Type: application/json)', null);
  }
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw invalid("'model' is required and must be a string", 'model');
  }
  const model = body.model;
  if (!limits.models.includes(model)) {
    throw new RequestError(404, `The model \`${model}\` does not exist.`, 'model', 'model_not_found');
  }
  const { prompts, promptTokens } = endpoint === 'chat' ? chatPrompt(body) : completionPrompt(body);
  const maxTokens =
    endpoint === 'chat' && body.max_completion_tokens !== undefined && body.max_completion_tokens !== null
      ? optionalInteger(body, 'max_completion_tokens', 1, limits.maxModelLen)
      : optionalInteger(body, 'max_tokens', 1, limits.maxModelLen);
  if (maxTokens !== undefined && promptTokens + maxTokens > limits.maxModelLen) {
    throw new RequestError(
      400,
      `This model's maximum context length is ${limits.maxModelLen} tokens. However, you requested ` +
        `${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion).`,
      'max_tokens',
      'context_length_exceeded',
    );
  }
  const stream = optionalBoolean(body, 'stream') ?? false;
  return {
    endpoint,
    model,
    prompts,
    promptTokens,
    n: optionalInteger(body, 'n', 1, MAX_N) ?? 1,
    maxTokens,
    ignoreEos: optionalBoolean(body, 'ignore_eos') ?? false,
    stream,
    ...streamSettings(body, stream),
    ...logprobSettings(endpoint, body),
  };
}
