import type { ServerResponse } from 'node:http';
import OpenAI from 'openai';
import { parseMetrics, sumOf } from '../../example-app/metrics-text';
import type { Sample } from '../../example-app/metrics-text';
import { chatChunk, codePoints, DONE, sse } from './streams';

/**
 * One streamed chat completion that pauses half-way until the test has scraped `/metrics`, shared by the framework
 * recipes (NestJS, Fastify): the framework's route writes it, the official SDK reads it.
 */
export const TEXTS = ['Hello', ' from', ' a', ' framework', ' route'];
export const HALF = 2;
/** With `countTokens: codePoints`, each delta counts its code points, so the live counter is exact. */
export const TOKENS_BEFORE_PAUSE = TEXTS.slice(0, HALF).reduce((sum, text) => sum + codePoints(text), 0);
export const TOTAL_TOKENS = TEXTS.reduce((sum, text) => sum + codePoints(text), 0);

export class Gate {
  readonly opened: Promise<void>;
  open!: () => void;
  constructor() {
    this.opened = new Promise((resolve) => (this.open = resolve));
  }
}

/** The events of the stream, in order; `pause` is where the writer waits for the gate. */
export function streamEvents(model: string): { beforePause: string[]; afterPause: string[] } {
  const delta = (content: string): string => sse(chatChunk(model, [{ delta: { content } }]));
  return {
    beforePause: [sse(chatChunk(model, [{ delta: { role: 'assistant', content: '' } }])), ...TEXTS.slice(0, HALF).map(delta)],
    afterPause: [
      ...TEXTS.slice(HALF).map(delta),
      sse(chatChunk(model, [{ delta: {}, finish_reason: 'stop' }])),
      sse(chatChunk(model, [], { prompt_tokens: 7, completion_tokens: TOTAL_TOKENS, total_tokens: 7 + TOTAL_TOKENS })),
      DONE,
    ],
  };
}

/** Writes the stream on Node's own response, as a streaming route does once the framework lets go of it. */
export async function writeStream(res: ServerResponse, model: string, gate: Gate): Promise<void> {
  const { beforePause, afterPause } = streamEvents(model);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  for (const event of beforePause) res.write(event);
  await gate.opened;
  for (const event of afterPause.slice(0, -1)) res.write(event);
  res.end(afterPause[afterPause.length - 1]);
}

export interface Scrape {
  status: number;
  contentType: string | null;
  samples: Sample[];
}

export async function scrapeSamples(url: string): Promise<Scrape> {
  const response = await fetch(url);
  return { status: response.status, contentType: response.headers.get('content-type'), samples: parseMetrics(await response.text()) };
}

export interface StreamResult {
  text: string;
  completionTokens: number | undefined;
  /** `output_tokens_total` for the model as `/metrics` showed it while the stream was paused. */
  liveCounter: number;
}

/**
 * Streams a chat completion through the official SDK; once the first half has arrived, reads `/metrics` (the stream
 * is still open, its writer waiting) and then calls `resume` to let the writer finish.
 */
export async function streamAndScrapeMidway(baseUrl: string, metricsUrl: string, model: string, resume: () => void): Promise<StreamResult> {
  const client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Say hello.' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let deltas = 0;
  let completionTokens: number | undefined;
  let liveCounter = Number.NaN;
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta.content;
    if (content) {
      text += content;
      deltas++;
      if (deltas === HALF) {
        const live = await scrapeSamples(metricsUrl);
        liveCounter = sumOf(live.samples, 'dynamo_frontend_output_tokens_total', { model });
        resume();
      }
    }
    if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
  }
  return { text, completionTokens, liveCounter };
}
