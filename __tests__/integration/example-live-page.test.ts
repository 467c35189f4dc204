import OpenAI from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import type { Page } from 'puppeteer-core';
import { Registry } from 'prom-client';
import { createApp } from '../../example-app/app';
import { CHROMIUM_INSTALL, chromiumFound, launchChromium } from '../../example-app/browser';
import type { HeadlessChromium } from '../../example-app/browser';
import { listen } from '../../example-app/listen';
import type { RunningServer } from '../../example-app/listen';
import { testNeeding } from '../support/needs-tool';
import { value } from '../support/registry-values';

/**
 * The example's live page at `GET /`, in a real headless Chromium: it loads with no console error and no failed
 * request (uPlot comes from the app itself), and its numbers move while a stream runs.
 */
jest.setTimeout(60_000);

const withChromium = testNeeding({ what: 'chromium', found: chromiumFound(), install: CHROMIUM_INSTALL });
const MODEL = 'mock-qwen2.5-7b-instruct';
const STREAM_TOKENS = 150;

let app: RunningServer | undefined;
let chromium: HeadlessChromium | undefined;
let registry: Registry;

beforeAll(async () => {
  if (!withChromium.run) return;
  registry = new Registry();
  app = await listen(createApp({ registry, mock: { tokensPerSecond: 40 } }), 0, '127.0.0.1');
  chromium = await launchChromium();
});

afterAll(async () => {
  await Promise.allSettled([chromium?.close(), app?.close()]);
});

const text = (page: Page, selector: string): Promise<string> => page.$eval(selector, (element) => element.textContent ?? '');
const numberIn = async (page: Page, selector: string): Promise<number> => Number((await text(page, selector)).replace(/,/g, ''));

async function until<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await read();
    if (ok(current)) return current;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(current)})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

withChromium.test(`GET / shows live numbers from /metrics that move while a stream runs (${withChromium.label})`, async () => {
  const { url } = app as RunningServer;
  const page = await (chromium as HeadlessChromium).browser.newPage();
  await page.setViewport({ width: 1100, height: 900 });
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warn') problems.push(`console.${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error instanceof Error ? error.message : String(error)}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${response.url()}`);
  });

  const response = await page.goto(`${url}/`, { waitUntil: 'load' });
  expect(response?.headers()['content-type']).toMatch(/^text\/html/);
  await until('the first poll of /metrics', () => text(page, '#status'), (status) => status.startsWith('updated'));
  expect(await page.evaluate('typeof uPlot')).toBe('function');
  expect(await page.$('#chart canvas')).not.toBeNull();
  expect(await text(page, '#output-tokens')).toBe('0');

  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  // ignore_eos (as vLLM has it) makes the mock generate exactly max_tokens.
  const params: ChatCompletionCreateParamsStreaming & { ignore_eos: boolean } = {
    model: MODEL,
    messages: [{ role: 'user', content: 'Tell me a story.' }],
    max_tokens: STREAM_TOKENS,
    ignore_eos: true,
    stream: true,
    stream_options: { include_usage: true },
  };
  const stream = await client.chat.completions.create(params);
  // Read the page while the stream is open: the totals it shows must rise, with a non-zero rate and one in flight.
  const seen: { outputTokens: number; tokensPerSecond: number; inFlight: number }[] = [];
  let streamOpen = true;
  const watching = (async () => {
    while (streamOpen) {
      seen.push({
        outputTokens: await numberIn(page, '#output-tokens'),
        tokensPerSecond: await numberIn(page, '#tokens-per-second'),
        inFlight: await numberIn(page, '#in-flight'),
      });
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  let usage: number | undefined;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage.completion_tokens;
  streamOpen = false;
  await watching;
  expect(usage).toBe(STREAM_TOKENS);

  const during = [...new Set(seen.filter((s) => s.outputTokens > 0 && s.outputTokens < STREAM_TOKENS).map((s) => s.outputTokens))];
  expect(during.length).toBeGreaterThanOrEqual(2);
  expect(during).toEqual([...during].sort((a, b) => a - b));
  expect(seen.some((s) => s.tokensPerSecond > 0 && s.inFlight === 1)).toBe(true);

  // After the stream, the page settles on the registry's own total, and the model has its row.
  const counted = await value(registry, 'dynamo_frontend_output_tokens_total', { model: MODEL });
  expect(counted).toBe(STREAM_TOKENS);
  await until('the final total on the page', () => numberIn(page, '#output-tokens'), (shown) => shown === counted);
  expect(await page.$$eval('#models tbody tr', (rows) => rows.map((row) => row.getAttribute('data-model')))).toEqual([MODEL]);
  expect(problems).toEqual([]);
  await page.close();
});
