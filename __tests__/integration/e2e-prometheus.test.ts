import { spawn } from 'node:child_process';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { Registry } from 'prom-client';
import { createApp } from '../../example-app/app';
import { dashboardQueries } from '../../example-app/dashboard-queries';
import { listen } from '../../example-app/listen';
import type { RunningServer } from '../../example-app/listen';
import { instantQuery } from '../../example-app/prom-api';
import type { InstantSample, RangeSeries } from '../../example-app/prom-api';
import { findExecutable, requirePrometheus, startPrometheus } from '../../example-app/prometheus-process';
import type { PrometheusServer } from '../../example-app/prometheus-process';
import { testNeeding } from '../support/needs-tool';

// The slow request has a model to itself, so its counter holds exactly its own tokens.
const SLOW_MODEL = 'mock-llama-3.1-8b-instruct';
const BACKGROUND_MODELS = ['mock-qwen2.5-7b-instruct', 'mock-mistral-7b-instruct'];
const SLOW_TOKENS = 300;
const TOKENS_PER_SECOND = 30;
const COUNTER = 'dynamo_frontend_output_tokens_total';

jest.setTimeout(60_000);

const withPrometheus = testNeeding({
  what: 'prometheus and promtool',
  found: findExecutable('prometheus') !== undefined && findExecutable('promtool') !== undefined,
  install: 'apt-get install -y prometheus',
});

let app: RunningServer | undefined;
let prometheus: PrometheusServer | undefined;
let client: OpenAI;

beforeAll(async () => {
  if (!withPrometheus.run) return;
  // In CI a missing binary throws "prometheus is not on PATH. Install …": the suite fails rather than skipping.
  requirePrometheus();
  app = await listen(
    createApp({ registry: new Registry(), mock: { tokensPerSecond: TOKENS_PER_SECOND } }),
    0,
    '127.0.0.1',
  );
  prometheus = await startPrometheus({ target: new URL(app.url).host, scrapeIntervalSeconds: 1 });
  client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
  await waitFor('Prometheus to scrape the app', async () => {
    const up = await vector('up');
    return up.some((s) => s.value[1] === '1');
  });
});

afterAll(async () => {
  await Promise.allSettled([prometheus?.stop(), app?.close()]);
});

async function vector(query: string, time?: number): Promise<InstantSample[]> {
  const data = await instantQuery((prometheus as PrometheusServer).url, query, time);
  if (data.resultType !== 'vector') throw new Error(`${query}: expected a vector, got ${data.resultType}`);
  return data.result;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Keeps short streams, unary calls and failing requests going on the other models, so every dashboard query
 * (rates, quantiles, error breakdowns) has something to show when it is evaluated.
 */
function backgroundTraffic(): () => Promise<void> {
  let running = true;
  const worker = async (model: string) => {
    for (let i = 0; running; i++) {
      const messages = [{ role: 'user' as const, content: `Background request ${i} for ${model}.` }];
      try {
        if (i % 4 === 3) {
          await client.chat.completions.create({ model: 'no-such-model', messages });
        } else if (i % 4 === 2) {
          await client.chat.completions.create({ model, messages, max_tokens: 8 });
        } else {
          const stream = await client.chat.completions.create({
            model,
            messages,
            max_tokens: 15,
            stream: true,
            stream_options: { include_usage: true },
          });
          for await (const chunk of stream) void chunk;
        }
      } catch (error) {
        if (!(error instanceof OpenAI.NotFoundError)) throw error;
      }
    }
  };
  const workers = BACKGROUND_MODELS.map(worker);
  return async () => {
    running = false;
    await Promise.all(workers);
  };
}

function promtoolCheck(metricsText: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(requirePrometheus().promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (piece: Buffer) => (output += piece.toString()));
    child.stderr.on('data', (piece: Buffer) => (output += piece.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(metricsText);
  });
}

withPrometheus.test(`Prometheus sees the token counter move during a stream, the exact total after it, and every dashboard query has data (${withPrometheus.label})`, async () => {
  const stopBackground = backgroundTraffic();
  try {
    const params: ChatCompletionCreateParamsStreaming & { ignore_eos: boolean } = {
      model: SLOW_MODEL,
      messages: [{ role: 'user', content: 'Tell me a long story about a lighthouse.' }],
      max_tokens: SLOW_TOKENS,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
    };
    const stream = await client.chat.completions.create(params);

    let received = 0;
    let usage: OpenAI.CompletionUsage | undefined;
    let liveSamples: RangeSeries['values'] | undefined;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) received += 1;
      if (chunk.usage) usage = chunk.usage;
      // Half-way through (about 5 s in), look at what Prometheus has scraped so far.
      if (received === SLOW_TOKENS / 2 && liveSamples === undefined) {
        const data = await instantQuery(
          (prometheus as PrometheusServer).url,
          `${COUNTER}{model="${SLOW_MODEL}"}[20s]`,
        );
        liveSamples = data.resultType === 'matrix' ? (data.result[0]?.values ?? []) : [];
      }
    }
    const streamEnded = Date.now() / 1000;

    const scraped = (liveSamples ?? []).map(([, value]) => Number(value)).filter((v) => v > 0);
    const rising = scraped.filter((v, i) => i > 0 && v > (scraped[i - 1] as number));
    expect({ scraped, risesBetweenScrapes: rising.length > 0, allBelowTotal: scraped.every((v) => v < SLOW_TOKENS) })
      .toEqual({ scraped, risesBetweenScrapes: true, allBelowTotal: true });

    expect(usage?.completion_tokens).toBe(SLOW_TOKENS);
    expect(received).toBe(SLOW_TOKENS);
    // The first scrape taken after the stream ended must hold the exact total.
    let final: number | undefined;
    await waitFor('a scrape after the stream ended', async () => {
      const [sample] = await vector(`timestamp(${COUNTER}{model="${SLOW_MODEL}"})`);
      if (sample === undefined || Number(sample.value[1]) <= streamEnded) return false;
      const [counter] = await vector(`${COUNTER}{model="${SLOW_MODEL}"}`, Number(sample.value[1]));
      final = Number(counter?.value[1]);
      return true;
    });
    expect(final).toBe(usage?.completion_tokens);

    const metricsText = await (await fetch(`${(app as RunningServer).url}/metrics`)).text();
    const check = await promtoolCheck(metricsText);
    expect({ exitCode: check.code, output: check.output }).toEqual({ exitCode: 0, output: check.output });

    const withoutData: string[] = [];
    for (const { panel, expr } of dashboardQueries()) {
      const data = await instantQuery((prometheus as PrometheusServer).url, expr).catch((error: Error) => error);
      if (data instanceof Error) withoutData.push(`${panel}: ${expr}\n  ${data.message}`);
      else if (data.resultType !== 'vector' || !data.result.some((s) => Number.isFinite(Number(s.value[1])))) {
        withoutData.push(`${panel}: ${expr}\n  returned no finite sample: ${JSON.stringify(data.result)}`);
      }
    }
    expect(withoutData).toEqual([]);
  } finally {
    await stopBackground();
  }
});
