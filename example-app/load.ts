import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { fetchMetrics, sumBy } from './metrics-text';
import { rootCause } from './root-cause';

const OUTPUT_TOKENS = 'dynamo_frontend_output_tokens_total';
const OVERCOUNT = 'dynamo_frontend_output_tokens_overcount_total';
const ESTIMATED = 'dynamo_frontend_output_tokens_estimated_total';
const PROMPTS = [
  'Tell me about lighthouses.',
  'Why do we measure things while they happen?',
  'Write a short story about a keeper and an engineer.',
  'Explain what a rate is to a child.',
];

interface LoadOptions {
  baseUrl: string;
  concurrency: number;
  durationSeconds: number;
  models: string[] | undefined;
  maxTokens: number | undefined;
}

interface ModelTally {
  requests: number;
  failed: number;
  usageTokens: number;
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0)) throw new TypeError(`${name} must be a positive number (got ${raw})`);
  return value;
}

function readOptions(): LoadOptions {
  const { values } = parseArgs({
    options: {
      'base-url': { type: 'string' },
      concurrency: { type: 'string', short: 'c' },
      duration: { type: 'string', short: 'd' },
      models: { type: 'string' },
      'max-tokens': { type: 'string' },
    },
  });
  const env = process.env;
  const models = values.models ?? env.MODELS;
  const maxTokens = values['max-tokens'] ?? env.MAX_TOKENS;
  return {
    baseUrl: (values['base-url'] ?? env.BASE_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, ''),
    concurrency: Math.round(positive('CONCURRENCY', values.concurrency ?? env.CONCURRENCY, 8)),
    durationSeconds: positive('DURATION_S', values.duration ?? env.DURATION_S, 30),
    models: models ? models.split(',').map((m) => m.trim()) : undefined,
    maxTokens: maxTokens ? Math.round(positive('MAX_TOKENS', maxTokens, 1)) : undefined,
  };
}

async function streamOnce(client: OpenAI, model: string, prompt: string, maxTokens: number | undefined): Promise<number> {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
    stream: true,
    // Without it the SDK never learns the token count, and there would be nothing to compare the counter with.
    stream_options: { include_usage: true },
    ...(maxTokens === undefined ? {} : { max_tokens: maxTokens }),
  });
  let tokens = 0;
  for await (const chunk of stream) if (chunk.usage) tokens = chunk.usage.completion_tokens;
  return tokens;
}

function counterTotal(counts: Map<string, number>): number {
  return [...counts.values()].reduce((a, b) => a + b, 0);
}

interface Snapshot {
  tokens: Map<string, number>;
  over: Map<string, number>;
  estimated: Map<string, number>;
}

/**
 * Compares the counter's increase with the usage the SDK received, per model. "counter = usage" is what
 * rate(output_tokens_total) shows; when it is above, the difference is what live estimates counted past the usage
 * (output_tokens_overcount_total), which a counter cannot take back. Returns false when the two do not reconcile.
 */
function printSummary(tallies: Map<string, ModelTally>, before: Snapshot, after: Snapshot): boolean {
  const rows = [['model', 'requests', 'failed', 'tokens (SDK usage)', 'counter increase', 'overcount', 'no usage', 'counter = usage']];
  let reconciled = true;
  const grew = (counter: keyof Snapshot, model: string) => (after[counter].get(model) ?? 0) - (before[counter].get(model) ?? 0);
  for (const [model, tally] of [...tallies].sort(([a], [b]) => a.localeCompare(b))) {
    const increase = grew('tokens', model);
    const over = grew('over', model);
    const estimated = grew('estimated', model);
    const verdict =
      increase === tally.usageTokens
        ? 'yes'
        : increase - over - estimated === tally.usageTokens
          ? `no: +${increase - tally.usageTokens} (${over} overshoot, ${estimated} without usage)`
          : 'NO';
    reconciled &&= verdict !== 'NO';
    rows.push([model, tally.requests, tally.failed, tally.usageTokens, increase, over, estimated, verdict].map(String));
  }
  const widths = (rows[0] as string[]).map((_, col) => Math.max(...rows.map((r) => (r[col] as string).length)));
  for (const row of rows) console.log(row.map((cell, col) => cell.padEnd(widths[col] as number)).join('  '));
  return reconciled;
}

/** The connection failure, with the URL that could not be reached and how to start the example there. */
function unreachable(baseUrl: string, error: unknown): Error {
  return new Error(
    `could not reach the gateway at ${baseUrl} (${rootCause(error)}).\n` +
      'Start the example there with `npm run example` (PORT=… to move it), or pass `--base-url <url>` / BASE_URL.',
  );
}

function connectionFailed(error: unknown): boolean {
  // The SDK says "Connection error." and fetch() rejects with a TypeError when nothing answers at the URL.
  return error instanceof OpenAI.APIConnectionError || error instanceof TypeError;
}

async function main(): Promise<void> {
  const options = readOptions();
  try {
    await run(options);
  } catch (error) {
    throw connectionFailed(error) ? unreachable(options.baseUrl, error) : error;
  }
}

async function run(options: LoadOptions): Promise<void> {
  const client = new OpenAI({ baseURL: `${options.baseUrl}/v1`, apiKey: process.env.OPENAI_API_KEY ?? 'not-needed', maxRetries: 0 });
  const models = options.models ?? (await client.models.list()).data.map((m) => m.id).slice(0, 3);
  if (models.length === 0) throw new Error(`${options.baseUrl}/v1/models lists no model; pass --models a,b`);
  const snapshot = async () => {
    const samples = await fetchMetrics(options.baseUrl);
    return {
      tokens: sumBy(samples, OUTPUT_TOKENS, 'model'),
      over: sumBy(samples, OVERCOUNT, 'model'),
      estimated: sumBy(samples, ESTIMATED, 'model'),
    };
  };
  const before = await snapshot();
  console.log(
    `${options.concurrency} concurrent streams over ${models.join(', ')} for ${options.durationSeconds} s against ${options.baseUrl}`,
  );

  const tallies = new Map(models.map((m) => [m, { requests: 0, failed: 0, usageTokens: 0 } as ModelTally]));
  const started = Date.now();
  const deadline = started + options.durationSeconds * 1000;
  let done = 0;
  let streaming = 0;
  let lastError = '';
  const worker = async (id: number) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const model = models[(id + i) % models.length] as string;
      const tally = tallies.get(model) as ModelTally;
      streaming++;
      try {
        const prompt = PROMPTS[(id + i) % PROMPTS.length] as string;
        // Awaited before the +=, which would otherwise read the tally before the await and lose concurrent updates.
        const tokens = await streamOnce(client, model, prompt, options.maxTokens);
        tally.usageTokens += tokens;
        tally.requests++;
      } catch (error) {
        tally.failed++;
        lastError = connectionFailed(error) ? `cannot reach ${options.baseUrl}` : error instanceof Error ? error.message : String(error);
        await new Promise((resolve) => setTimeout(resolve, 500));
      } finally {
        streaming--;
        done++;
      }
    }
  };

  // tokens/s comes from the server's own counter, not from the client: it is what Prometheus would see.
  let previous = { at: Date.now(), total: counterTotal(before.tokens) };
  const progress = setInterval(() => {
    void snapshot().then(({ tokens }) => {
      const now = Date.now();
      const total = counterTotal(tokens);
      const rate = ((total - previous.total) * 1000) / Math.max(1, now - previous.at);
      previous = { at: now, total };
      const line =
        `${((now - started) / 1000).toFixed(0).padStart(4)} s  requests done ${String(done).padStart(5)}  ` +
        `streaming ${String(streaming).padStart(3)}  tokens/s (from /metrics) ${rate.toFixed(0).padStart(6)}` +
        (lastError ? `  last error: ${lastError.slice(0, 60)}` : '');
      process.stdout.write(process.stdout.isTTY ? `\r${line}` : `${line}\n`);
    }, () => undefined);
  }, 1000);

  await Promise.all(Array.from({ length: options.concurrency }, (_, id) => worker(id)));
  clearInterval(progress);
  if (process.stdout.isTTY) process.stdout.write('\n');
  const after = await snapshot();
  console.log(`\n${done} requests in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  if (!printSummary(tallies, before, after)) {
    console.log('\nThe counter and the SDK usage do not reconcile (other traffic on the same server also moves the counter).');
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
