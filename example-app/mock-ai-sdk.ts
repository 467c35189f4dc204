import { Router } from 'express';
import type { Request, Response } from 'express';
import { streamText } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import type { MockOptions } from './mock-llm';
import { createPacer } from './pacer';
import { countPromptTokens, hashText, tokensFrom } from './tokens';

export const AI_SDK_ROUTE = '/api/assistant';

/**
 * A Vercel AI SDK route as apps write it: `streamText(...).pipeUIMessageStreamToResponse(res)`, here on the mock
 * model (the SDK's `MockLanguageModelV3` streaming the mock's tokens). The app sends the step's `totalUsage` in
 * `messageMetadata`, so the count is exact; the model label comes from the middleware's `model` option.
 */
export function mockAiSdk(options: MockOptions): Router {
  const router = Router();
  router.post(AI_SDK_ROUTE, (req: Request, res: Response) => {
    const messages = Array.isArray((req.body as { messages?: unknown } | undefined)?.messages) ? (req.body as { messages: unknown[] }).messages : [];
    const prompt = JSON.stringify(messages);
    const seed = hashText(prompt);
    const tokens = tokensFrom(seed, 32 + (seed % 128));
    const aborted = new AbortController();
    res.once('close', () => aborted.abort());
    const model = new MockLanguageModelV3({
      modelId: options.models[0],
      doStream: async () => {
        const next = createPacer(options.tokensPerSecond, aborted.signal);
        let i = -1;
        const stream = new ReadableStream({
          async pull(controller) {
            try {
              if (i === -1) controller.enqueue({ type: 'text-start', id: 'text-0' });
              else if (i < tokens.length) {
                await next();
                controller.enqueue({ type: 'text-delta', id: 'text-0', delta: (tokens[i] as { text: string }).text });
              } else {
                controller.enqueue({ type: 'text-end', id: 'text-0' });
                controller.enqueue({
                  type: 'finish',
                  finishReason: { unified: 'stop', raw: 'stop' },
                  usage: {
                    inputTokens: { total: countPromptTokens(prompt), noCache: undefined, cacheRead: undefined, cacheWrite: undefined },
                    outputTokens: { total: tokens.length, text: tokens.length, reasoning: undefined },
                  },
                });
                controller.close();
              }
              i++;
            } catch {
              controller.close();
            }
          },
        });
        return { stream };
      },
    });
    streamText({ model, prompt: prompt, abortSignal: aborted.signal }).pipeUIMessageStreamToResponse(res, {
      messageMetadata: ({ part }) => (part.type === 'finish' ? { totalUsage: part.totalUsage } : undefined),
    });
  });
  return router;
}
