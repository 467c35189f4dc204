import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from './prng';

/**
 * The response every bench server streams: OpenAI chat completion chunks exactly as they go on the wire, built
 * once from real text cut into real tokens so the decode/parse/count work per chunk matches production.
 */
export interface StreamFixture {
  model: string;
  /** Every `data: …\n\n` event of one response, in order: role, one per token, finish, usage, `[DONE]`. */
  events: string[];
  /** The text of each content delta (one token each). */
  tokens: string[];
  promptTokens: number;
}

export const BENCH_MODEL = 'bench-model';
export const TOKENS_PER_RESPONSE = 300;
export const RESULTS_DIR = join(__dirname, '..', 'results');

// Prose with a few accented characters and typographic punctuation, so some tokens are multi-byte UTF-8 like
// real model output; code-ish markdown would tokenise unlike a chat answer.
const TEXT = `Streaming a model's answer token by token changes what a server has to measure. A classic request
lasts a few milliseconds and ends with one status code; a chat completion can run for a minute, and the interesting
events happen in between: when the first token leaves the server, how evenly the next ones follow, and how many
were sent before the client lost interest. Operators of large inference clusters learned this the hard way. Their
dashboards showed healthy request rates while users stared at a blinking cursor, because the latency that matters —
time to first token — was invisible to middleware that only looks at the start and the end of a request.

The café analogy is useful here. A waiter who writes down when an order arrived and when the bill was paid knows
nothing about the guest who waited forty minutes for the entrée and then received everything at once. To see that,
someone has to watch each plate leave the kitchen. For a language model, each plate is a server-sent event: a small
JSON document carrying a fragment of text, usually a single token, sometimes a role, a finish reason or a usage
report. Counting them as they pass is cheap in principle, but a busy gateway forwards a hundred thousand of them per
second, so every microsecond spent per event turns into whole cores.

There are three honest ways to know how many tokens a chunk holds. The best is when the stream says so: some servers
attach usage to every chunk, others report log-probabilities per token. The second is to run the model's own
tokenizer over the text, which is exact for single-token deltas but costs memory and time. The third is to estimate
from the length of the text and correct the total when the final usage arrives. A careful implementation prefers
the first, falls back to the third, and publishes any overshoot rather than hiding it, because a counter in
Prometheus can only go up. Naïve approaches fail in predictable ways: they buffer the whole body, they parse every
chunk twice, or they create a new label set for each event and let the number of series grow without bound.`;

function chunkJson(id: string, created: number, model: string, delta: string, finish: string | null): string {
  return (
    `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"${model}",` +
    `"system_fingerprint":"fp_bench","choices":[{"index":0,"delta":${delta},"logprobs":null,` +
    `"finish_reason":${finish === null ? 'null' : JSON.stringify(finish)}}]}\n\n`
  );
}

/** Builds the events for `count` tokens of the text (cycling through it) with the given model name. */
export function buildEvents(tokens: readonly string[], model: string, promptTokens: number): string[] {
  const id = 'chatcmpl-BENCH0123456789abcdefXYZ';
  const created = 1764201600;
  const events: string[] = [chunkJson(id, created, model, '{"role":"assistant","content":"","refusal":null}', null)];
  for (const token of tokens) events.push(chunkJson(id, created, model, `{"content":${JSON.stringify(token)}}`, null));
  events.push(chunkJson(id, created, model, '{}', 'stop'));
  events.push(
    `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"${model}",` +
      `"system_fingerprint":"fp_bench","choices":[],"usage":{"prompt_tokens":${promptTokens},` +
      `"completion_tokens":${tokens.length},"total_tokens":${promptTokens + tokens.length},` +
      `"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n`,
  );
  events.push('data: [DONE]\n\n');
  return events;
}

async function tokenize(count: number): Promise<string[]> {
  // Loaded only when the cache is missing: gpt-tokenizer costs ~100 MB and ~200 ms, which must not land in the
  // servers whose memory and CPU we measure.
  const { encode, decode } = await import('gpt-tokenizer');
  const ids = encode(TEXT.replace(/\n/g, ' '));
  const tokens: string[] = [];
  let pending: number[] = [];
  for (let i = 0; tokens.length < count && i < ids.length * 10; i++) {
    pending.push(ids[i % ids.length] as number);
    const text = decode(pending);
    // A multi-byte character split across tokens decodes to U+FFFD; keep such tokens together, as a server that
    // streams text (not bytes) must.
    if (text.includes('\uFFFD') && pending.length < 4) continue;
    tokens.push(text);
    pending = [];
  }
  return tokens;
}

/** Returns the cached token list (tokenising the text on first use), so servers never load the tokenizer. */
export async function loadTokens(count = TOKENS_PER_RESPONSE): Promise<string[]> {
  const file = join(RESULTS_DIR, `tokens-${count}.json`);
  if (existsSync(file)) {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (Array.isArray(cached) && cached.length === count && cached.every((t) => typeof t === 'string')) {
      return cached as string[];
    }
  }
  const tokens = await tokenize(count);
  mkdirSync(RESULTS_DIR, { recursive: true });
  // Write-then-rename: several processes may create the cache at the same time.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(tokens));
  renameSync(tmp, file);
  return tokens;
}

export async function loadFixture(model = BENCH_MODEL, count = TOKENS_PER_RESPONSE): Promise<StreamFixture> {
  const tokens = await loadTokens(count);
  const promptTokens = 42;
  return { model, tokens, promptTokens, events: buildEvents(tokens, model, promptTokens) };
}

/**
 * The response cut as a gateway reads it from its upstream when it lags behind: pieces of up to four events'
 * length, cut at any byte (inside an event, between `\n\n`, inside a multi-byte character). Seeded, so every run
 * times the same writes.
 */
export function proxyShaped(events: readonly string[], seed = 20261201): Buffer[] {
  const bytes = Buffer.from(events.join(''));
  const average = bytes.length / events.length;
  const random = seededRandom(seed);
  const writes: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = Math.max(1, Math.round(random() * 4 * average));
    writes.push(Buffer.from(bytes.subarray(at, at + length)));
    at += length;
  }
  return writes;
}
