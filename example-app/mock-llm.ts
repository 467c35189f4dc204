import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Router } from 'express';
import type { Request, Response } from 'express';
import { RequestError, sendError } from './openai-error';
import { parseGenerationRequest } from './mock-request';
import type { Endpoint, GenerationRequest } from './mock-request';
import { planChoices, responseContext, streamChunk, unaryBody, usage, usageChunk } from './mock-output';
import type { PlannedChoice, ResponseContext } from './mock-output';
import { createPacer } from './pacer';

export interface MockOptions {
  /** Model names served; anything else gets a 404. */
  models: readonly string[];
  /** Tokens per second per choice; 0 streams as fast as the socket takes it. */
  tokensPerSecond: number;
  /** Tokens in each streamed chunk (engines send 1; hosted APIs often pack several). */
  tokensPerChunk: number;
  /** Prompt + completion tokens a request may ask for. */
  maxModelLen: number;
}

export const MOCK_DEFAULTS: MockOptions = {
  models: ['mock-llama-3.1-8b-instruct', 'mock-qwen2.5-7b-instruct', 'mock-mistral-7b-instruct'],
  tokensPerSecond: 20,
  tokensPerChunk: 1,
  maxModelLen: 8192,
};

// Fixed so the models list is byte-stable between runs.
const MODELS_CREATED = 1735689600;

function sendEvent(res: ServerResponse, data: object | string, signal: AbortSignal): Promise<void> | undefined {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  if (res.write(`data: ${payload}\n\n`)) return undefined;
  return once(res, 'drain', { signal }).then(() => undefined);
}

async function stream(
  res: ServerResponse,
  ctx: ResponseContext,
  choices: readonly PlannedChoice[],
  options: MockOptions,
  signal: AbortSignal,
): Promise<void> {
  const { request } = ctx;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache',
    // Tells nginx-style proxies in front of the example not to buffer the stream.
    'X-Accel-Buffering': 'no',
  });
  // Headers go out now, not with the first token: a client sees the request was accepted while the model "thinks".
  res.flushHeaders();
  // Counted across all choices so that, with n > 1, the difference between two chunks is still that chunk's count.
  let completionTokens = 0;
  const running = () => (request.continuousUsage ? usage(request, completionTokens) : undefined);

  if (request.endpoint === 'chat') {
    for (const choice of choices) await sendEvent(res, streamChunk(ctx, choice, 'role', running()), signal);
  }
  const next = createPacer(options.tokensPerSecond / options.tokensPerChunk, signal);
  const sent = choices.map(() => 0);
  for (;;) {
    const pending = choices.filter((choice, i) => (sent[i] as number) < choice.tokens.length);
    if (pending.length === 0) break;
    await next();
    for (const choice of pending) {
      const i = choices.indexOf(choice);
      const from = sent[i] as number;
      const to = Math.min(from + options.tokensPerChunk, choice.tokens.length);
      sent[i] = to;
      completionTokens += to - from;
      await sendEvent(res, streamChunk(ctx, choice, { from, to }, running()), signal);
    }
  }
  for (const choice of choices) await sendEvent(res, streamChunk(ctx, choice, 'finish', running()), signal);
  if (request.includeUsage) await sendEvent(res, usageChunk(ctx, usage(request, completionTokens)), signal);
  await sendEvent(res, '[DONE]', signal);
  res.end();
}

async function unary(
  res: ServerResponse,
  ctx: ResponseContext,
  choices: readonly PlannedChoice[],
  options: MockOptions,
  signal: AbortSignal,
): Promise<void> {
  // A unary answer takes as long as the stream would have: the client waits for the whole generation.
  const steps = Math.max(0, ...choices.map((c) => Math.ceil(c.tokens.length / options.tokensPerChunk)));
  const next = createPacer(options.tokensPerSecond / options.tokensPerChunk, signal);
  if (options.tokensPerSecond > 0) for (let i = 0; i < steps; i++) await next();
  const body = JSON.stringify(unaryBody(ctx, choices));
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function generate(endpoint: Endpoint, options: MockOptions) {
  return async (req: Request, res: Response): Promise<void> => {
    let request: GenerationRequest;
    try {
      request = parseGenerationRequest(endpoint, req.body, options);
    } catch (error) {
      if (error instanceof RequestError) return sendError(res, error);
      throw error;
    }
    const ctx = responseContext(request);
    const choices = planChoices(request);
    // 'close' fires when the response is done or the client hung up; either way generation must stop.
    const aborted = new AbortController();
    res.once('close', () => aborted.abort());
    try {
      if (request.stream) await stream(res, ctx, choices, options, aborted.signal);
      else await unary(res, ctx, choices, options, aborted.signal);
    } catch (error) {
      if (!aborted.signal.aborted) throw error;
    }
  };
}

/** An OpenAI-compatible model server that writes real tokens at a known pace, so every count can be checked. */
export function mockLlm(overrides: Partial<MockOptions> = {}): Router {
  const options: MockOptions = { ...MOCK_DEFAULTS, ...overrides };
  if (options.models.length === 0) throw new TypeError('mock: at least one model name is needed');
  if (!Number.isInteger(options.tokensPerChunk) || options.tokensPerChunk < 1) {
    throw new TypeError(`mock: tokensPerChunk must be a positive integer (got ${options.tokensPerChunk})`);
  }
  if (!(options.tokensPerSecond >= 0)) {
    throw new TypeError(`mock: tokensPerSecond must be >= 0 (got ${options.tokensPerSecond})`);
  }
  const modelCard = (id: string) => ({ id, object: 'model', created: MODELS_CREATED, owned_by: 'mock' });
  const router = Router();
  router.get('/v1/models', (_req, res) => {
    res.json({ object: 'list', data: options.models.map(modelCard) });
  });
  router.get('/v1/models/:model', (req, res) => {
    const model = req.params.model;
    if (options.models.includes(model)) return void res.json(modelCard(model));
    sendError(res, new RequestError(404, `The model \`${model}\` does not exist.`, 'model', 'model_not_found'));
  });
  router.post('/v1/chat/completions', generate('chat', options));
  router.post('/v1/completions', generate('completion', options));
  return router;
}
