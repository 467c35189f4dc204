import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { sumOf } from '../../example-app/metrics-text';
import { HALF, scrapeSamples, streamAndScrapeMidway, TEXTS, TOKENS_BEFORE_PAUSE, TOTAL_TOKENS } from '../support/framework-stream';

/**
 * The README's NestJS recipe in a real Nest 12 app (Express platform) on a real socket: `app.use(dynamoMetrics())`
 * and `app.use(metricsRouter())` before `listen()`, a streaming controller writing on the response (`@Res()`), and an
 * `@Sse()` route whose events Nest itself formats. NestJS 12 ships only ES modules, which jest cannot load, so the
 * app (`fixtures/nest-gateway.ts`, a fresh registry each time) runs in a child process started per test.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = 'nest-model';
const SSE_MODEL = 'nest-sse-model';

let child: ChildProcessWithoutNullStreams;
let baseUrl: string;

/** A line on the child's stdin lets its paused stream go on. */
const resume = (): void => void child.stdin.write('\n');

beforeEach(async () => {
  child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'fixtures', 'nest-gateway.ts')], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let errors = '';
  child.stderr.on('data', (piece: Buffer) => (errors += piece.toString()));
  baseUrl = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (piece: Buffer) => {
      output += piece.toString();
      const url = /^(http:\/\/\S+)$/m.exec(output)?.[1];
      if (url) resolve(url);
    });
    child.once('exit', (code) => reject(new Error(`the Nest app exited with ${code} before listening:\n${errors}`)));
  });
}, 30_000);

afterEach(async () => {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
});

test('counts a streaming controller live and at its end, and serves /metrics from the Nest app', async () => {
  const result = await streamAndScrapeMidway(baseUrl, `${baseUrl}/metrics`, MODEL, resume);
  expect(result.text).toBe(TEXTS.join(''));
  expect(result.completionTokens).toBe(TOTAL_TOKENS);
  // While the controller was paused half-way, /metrics already held the first half's tokens.
  expect(result.liveCounter).toBe(TOKENS_BEFORE_PAUSE);

  const after = await scrapeSamples(`${baseUrl}/metrics`);
  expect(after.status).toBe(200);
  expect(after.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  expect(sumOf(after.samples, 'dynamo_frontend_output_tokens_total', { model: MODEL })).toBe(TOTAL_TOKENS);
  expect(sumOf(after.samples, 'dynamo_frontend_requests_total', { model: MODEL, endpoint: 'chat_completions', status: 'success' })).toBe(1);
  expect(sumOf(after.samples, 'dynamo_frontend_inflight_requests', { model: MODEL })).toBe(0);
});

test('counts the events of an @Sse() route, live and at its end', async () => {
  const response = await fetch(`${baseUrl}/v1/chat/completions`, { headers: { accept: 'text/event-stream' } });
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let received = '';
  let liveCounter = Number.NaN;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += decoder.decode(value, { stream: true });
    const deltas = TEXTS.filter((text) => received.includes(`"content":${JSON.stringify(text)}`)).length;
    if (deltas === HALF && Number.isNaN(liveCounter)) {
      liveCounter = sumOf((await scrapeSamples(`${baseUrl}/metrics`)).samples, 'dynamo_frontend_output_tokens_total', { model: SSE_MODEL });
      resume();
    }
  }
  expect(received).toContain('data: [DONE]');
  expect(liveCounter).toBe(TOKENS_BEFORE_PAUSE);

  const after = await scrapeSamples(`${baseUrl}/metrics`);
  expect(sumOf(after.samples, 'dynamo_frontend_output_tokens_total', { model: SSE_MODEL })).toBe(TOTAL_TOKENS);
  expect(sumOf(after.samples, 'dynamo_frontend_requests_finished_total', { model: SSE_MODEL, finish_reason: 'stop' })).toBe(1);
  expect(sumOf(after.samples, 'dynamo_frontend_requests_total', { model: SSE_MODEL, status: 'success' })).toBe(1);
});
