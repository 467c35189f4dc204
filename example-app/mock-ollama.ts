import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Router } from 'express';
import type { Request, Response } from 'express';
import type { MockOptions } from './mock-llm';
import { createPacer } from './pacer';
import { countPromptTokens, hashText, tokensFrom } from './tokens';
import type { Token } from './tokens';

/**
 * Ollama's native `/api/chat` on the mock model: NDJSON, one token per line, a final line with `done_reason`,
 * `eval_count` and `prompt_eval_count`; `"stream": false` answers with one JSON object. `options.num_predict`
 * fixes the length, as in Ollama, so a test can ask for an exact count.
 */
export function mockOllama(options: MockOptions): Router {
  const router = Router();
  router.post('/api/chat', (req: Request, res: Response, next) => {
    chat(req, res, options).catch(next);
  });
  return router;
}

interface ChatRequest {
  model: string;
  prompt: string;
  stream: boolean;
  numPredict: number | undefined;
}

function parse(body: unknown): ChatRequest | string {
  const fields = (body ?? {}) as Record<string, unknown>;
  if (typeof fields.model !== 'string' || fields.model.length === 0) return 'model is required';
  const messages = Array.isArray(fields.messages) ? fields.messages : [];
  const prompt = messages.map((message) => String((message as { content?: unknown } | null)?.content ?? '')).join('\n');
  const numPredict = (fields.options as { num_predict?: unknown } | undefined)?.num_predict;
  return {
    model: fields.model,
    prompt,
    stream: fields.stream !== false,
    numPredict: typeof numPredict === 'number' && Number.isInteger(numPredict) && numPredict > 0 ? numPredict : undefined,
  };
}

function writeLine(res: ServerResponse, line: object, signal: AbortSignal): Promise<void> | undefined {
  if (res.write(`${JSON.stringify(line)}\n`)) return undefined;
  return once(res, 'drain', { signal }).then(() => undefined);
}

async function chat(req: Request, res: Response, options: MockOptions): Promise<void> {
  const request = parse(req.body);
  if (typeof request === 'string') return void res.status(400).json({ error: request });
  if (!options.models.includes(request.model)) return void res.status(404).json({ error: `model '${request.model}' not found` });
  const seed = hashText(`${request.model}\n${request.prompt}`);
  const tokens: Token[] = tokensFrom(seed, request.numPredict ?? 32 + (seed % 128));
  const doneReason = request.numPredict === undefined ? 'stop' : 'length';
  const final = {
    model: request.model,
    created_at: new Date().toISOString(),
    done: true,
    done_reason: doneReason,
    prompt_eval_count: countPromptTokens(request.prompt),
    eval_count: tokens.length,
  };
  const aborted = new AbortController();
  res.once('close', () => aborted.abort());
  const next = createPacer(options.tokensPerSecond, aborted.signal);
  try {
    if (!request.stream) {
      for (let i = 0; i < tokens.length; i++) await next();
      res.json({ ...final, message: { role: 'assistant', content: tokens.map((t) => t.text).join('') } });
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
    for (const token of tokens) {
      await next();
      const line = { model: request.model, created_at: new Date().toISOString(), message: { role: 'assistant', content: token.text }, done: false };
      await writeLine(res, line, aborted.signal);
    }
    await writeLine(res, { ...final, message: { role: 'assistant', content: '' } }, aborted.signal);
    res.end();
  } catch (error) {
    if (!aborted.signal.aborted) throw error;
  }
}
