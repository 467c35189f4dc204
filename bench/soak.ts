/**
 * `npm run soak`: a bounded soak of the middleware under streaming load with random client aborts and hostile
 * events, in a child server process so its memory is measured alone.
 *
 * The server (this file with `--server`) streams OpenAI chat chunks with dynamoMetrics() in front, mixing in
 * garbage JSON, oversized events (past maxEventBytes), absurd usage values, unary bodies and random bytes, and
 * keeps the ground truth: the tokens it handed to `res.write` while each response was open. The load side keeps
 * SOAK_CONCURRENCY streams busy for SOAK_SECONDS (default 90, at most 120), aborting ~30% at random points, prints
 * the server's RSS and heap every few seconds, and at the end compares the counters with the truth.
 *
 * Exit code 0 when the final counter equals the true token count, every request ended exactly once and the
 * gauges are back to 0; 1 otherwise.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { seededRandom } from './lib/prng';

const SECONDS = Math.min(120, Math.max(1, Number(process.env.SOAK_SECONDS ?? 90)));
const CONCURRENCY = Math.max(1, Number(process.env.SOAK_CONCURRENCY ?? 48));
const REPORT_EVERY_MS = 5000;
const ABORT_RATE = Math.min(1, Math.max(0, Number(process.env.SOAK_ABORT_RATE ?? 0.3)));
/** Share of events preceded by a hostile one, and of responses that are random bytes (SOAK_HOSTILE=0: none). */
const HOSTILE_RATE = process.env.SOAK_HOSTILE === '0' ? 0 : 0.03;
const RANDOM_BYTES_RATE = process.env.SOAK_HOSTILE === '0' ? 0 : 0.03;
const MAX_EVENT_BYTES = 64 * 1024;
const PREFIX = 'dynamo_frontend';
const TEXTS = [' the', ' café', ' 你好', ' 🌍', ' naïve', ' 世界', ' data', ' ok', ' "quoted"', ' back\\slash'];

const codePoints = (text: string): number => Array.from(text).length;

function chatEvent(content: string | undefined, extra: Record<string, unknown> = {}): string {
  const choices = content === undefined ? [] : [{ index: 0, delta: { content }, finish_reason: null }];
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'soak-model', choices, ...extra })}\n\n`;
}

const HOSTILE: readonly (() => string)[] = [
  () => 'data: {"choices":[{"delta":{"content":\n\n',
  () => 'data: 42\n\n',
  () => `data: {"choices":[{"index":0,"delta":{"content":"${'x'.repeat(MAX_EVENT_BYTES + 1000)}"}}]}\n\n`,
  () => `data: ${'['.repeat(20_000)}\n\n`,
  () => chatEvent(undefined, { usage: { prompt_tokens: -1, completion_tokens: 1e308 } }),
  () => chatEvent(undefined, { usage: { prompt_tokens: 3, completion_tokens: 'many' } }),
  () => ': keep-alive\n\n',
  () => 'event: ping\ndata: {}\n\n',
];

// ---------------------------------------------------------------------------------------------------------------
// Server side (child process).

interface Truth {
  arrived: number;
  tokensWritten: number;
  finished: number;
  closedEarly: number;
  hostileEvents: number;
}

async function runServer(): Promise<void> {
  const { default: express } = await import('express');
  const { dynamoMetrics, metricsRouter } = await import('../lib');
  const gc = (globalThis as { gc?: () => void }).gc;
  const truth: Truth = { arrived: 0, tokensWritten: 0, finished: 0, closedEarly: 0, hostileEvents: 0 };
  const app = express();
  app.use(dynamoMetrics({ countTokens: codePoints, maxEventBytes: MAX_EVENT_BYTES }));
  app.use(metricsRouter());
  app.get('/stats', (_req, res) => {
    if (_req.query.gc === '1') gc?.();
    const memory = process.memoryUsage();
    res.json({ ...truth, rss: memory.rss, heapUsed: memory.heapUsed });
  });
  app.post('/v1/chat/completions', (req: IncomingMessage, res: ServerResponse) => {
    truth.arrived++;
    req.resume();
    const random = seededRandom(Number(req.headers['x-seed'] ?? 1));
    const kind = random();
    let closed = false;
    res.on('close', () => {
      closed = true;
      if (res.writableFinished) truth.finished++;
      else truth.closedEarly++;
    });
    if (kind < 0.05) {
      // A unary body with exact usage.
      const text = TEXTS[Math.floor(random() * TEXTS.length)] as string;
      truth.tokensWritten += codePoints(text);
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ object: 'chat.completion', model: 'soak-model', choices: [{ index: 0, message: { content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: codePoints(text) } }));
      return;
    }
    if (kind < 0.05 + RANDOM_BYTES_RATE) {
      // Random bytes as an event stream: nothing to count, nothing may break.
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const bytes = Buffer.alloc(2000 + Math.floor(random() * 20_000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      res.end(bytes);
      return;
    }
    const chunks = 20 + Math.floor(random() * 400);
    const withUsage = random() < 0.5;
    let sent = 0;
    let written = 0;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8' });
    const next = (): void => {
      if (closed) return;
      res.cork();
      for (let burst = 0; burst < 4 && sent < chunks; burst++, sent++) {
        if (random() < HOSTILE_RATE) {
          truth.hostileEvents++;
          res.write((HOSTILE[Math.floor(random() * HOSTILE.length)] as () => string)());
        }
        const text = TEXTS[Math.floor(random() * TEXTS.length)] as string;
        truth.tokensWritten += codePoints(text);
        written += codePoints(text);
        // Split some events across two writes at a random byte (inside a UTF-8 character too): bytes, then bytes.
        const event = Buffer.from(chatEvent(text));
        if (random() < 0.2) {
          const cut = 1 + Math.floor(random() * (event.length - 1));
          res.write(event.subarray(0, cut));
          res.write(event.subarray(cut));
        } else {
          res.write(event.toString());
        }
      }
      process.nextTick(() => res.uncork());
      if (sent < chunks) {
        setImmediate(next);
        return;
      }
      res.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'soak-model', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
      if (withUsage) res.write(chatEvent(undefined, { usage: { prompt_tokens: 7, completion_tokens: written, total_tokens: 7 + written } }));
      res.end('data: [DONE]\n\n');
    };
    setImmediate(next);
  });
  const server = app.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port });
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------------------------
// Load side (parent process).

interface Stats extends Truth {
  rss: number;
  heapUsed: number;
}

function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve(Buffer.concat(parts).toString()));
      })
      .on('error', reject);
  });
}

/** One stream; aborted after `abortAfter` bytes when set. Resolves when the socket is gone. */
function oneStream(port: number, seed: number, abortAfter: number | undefined): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { 'x-seed': String(seed), 'content-type': 'application/json' } },
      (res) => {
        let received = 0;
        res.on('data', (part: Buffer) => {
          received += part.length;
          if (abortAfter !== undefined && received >= abortAfter) req.destroy();
        });
        res.on('error', () => undefined);
      },
    );
    req.on('error', () => undefined);
    req.on('close', () => resolve());
    req.end('{"stream":true}');
  });
}

function sumOf(text: string, name: string, labelFilter = ''): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labelFilter !== '' && !line.includes(labelFilter)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function runLoad(): Promise<void> {
  const child: ChildProcess = fork(__filename, ['--server'], {
    execArgv: ['--expose-gc', '--import', pathToFileURL(require.resolve('tsx')).href],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const killChild = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.on('exit', killChild);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killChild();
      process.exit(130);
    });
  }
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the soak server did not start in 30 s')), 30_000);
    child.once('message', (message: { port: number }) => {
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once('exit', (code) => reject(new Error(`the soak server exited (${code})`)));
  });

  const random = seededRandom(20261127);
  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  const baseline = JSON.parse(await getText(port, '/stats?gc=1')) as Stats;
  console.log(`soak: ${SECONDS} s, ${CONCURRENCY} concurrent streams, ~30% aborted, server pid ${child.pid}`);
  console.log(`  t(s)  streams  aborted    rss        heap   (server after start: rss ${mb(baseline.rss)}, heap ${mb(baseline.heapUsed)} after GC)`);
  let streams = 0;
  let aborted = 0;
  let peakRss = baseline.rss;
  let peakHeap = baseline.heapUsed;
  const report = setInterval(() => {
    void getText(port, '/stats').then((text) => {
      const stats = JSON.parse(text) as Stats;
      peakRss = Math.max(peakRss, stats.rss);
      peakHeap = Math.max(peakHeap, stats.heapUsed);
      const t = ((Date.now() - started) / 1000).toFixed(0).padStart(5);
      console.log(`${t}  ${String(streams).padStart(7)}  ${String(aborted).padStart(7)}  ${mb(stats.rss).padStart(9)}  ${mb(stats.heapUsed).padStart(9)}`);
    });
  }, REPORT_EVERY_MS);

  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const seed = 1 + Math.floor(random() * 2 ** 31);
      const abortAfter = random() < ABORT_RATE ? Math.floor(random() * 20_000) : undefined;
      streams++;
      if (abortAfter !== undefined) aborted++;
      await oneStream(port, seed, abortAfter);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  clearInterval(report);

  // Let the server see every close, then compare.
  let final = JSON.parse(await getText(port, '/stats?gc=1')) as Stats;
  for (let i = 0; i < 100 && final.finished + final.closedEarly < final.arrived; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    final = JSON.parse(await getText(port, '/stats?gc=1')) as Stats;
  }
  const metrics = await getText(port, '/metrics');
  const counted = sumOf(metrics, `${PREFIX}_output_tokens_total`);
  const requests = sumOf(metrics, `${PREFIX}_requests_total`);
  const cancelled = sumOf(metrics, `${PREFIX}_requests_total`, 'error_type="cancelled"');
  const gauges = ['inflight_requests', 'active_requests', 'queued_requests'].map((g) => sumOf(metrics, `${PREFIX}_${g}`));
  const parseErrors = metrics
    .split('\n')
    .filter((line) => line.startsWith(`${PREFIX}_parse_errors_total{`))
    .map((line) => `${/reason="([^"]*)"/.exec(line)?.[1]}=${line.slice(line.lastIndexOf(' ') + 1)}`)
    .join(', ');
  const overcount = sumOf(metrics, `${PREFIX}_output_tokens_overcount_total`);
  const ok = counted === final.tokensWritten && requests === final.arrived && gauges.every((g) => g === 0);

  console.log('');
  console.log(`streams: ${streams} (${aborted} aborted by the client; server saw ${final.arrived}, ${final.finished} finished, ${final.closedEarly} closed early)`);
  console.log(`hostile events written: ${final.hostileEvents}; parse_errors_total: ${parseErrors || 'none'}`);
  console.log(`output_tokens_total: ${counted}   true tokens written: ${final.tokensWritten}   ${counted === final.tokensWritten ? 'EQUAL' : 'DIFFERENT'}`);
  console.log(`output_tokens_overcount_total: ${overcount}`);
  console.log(`requests_total: ${requests} (cancelled ${cancelled})   requests that reached the server: ${final.arrived}`);
  console.log(`gauges inflight/active/queued: ${gauges.join('/')}`);
  console.log(`server memory: start rss ${mb(baseline.rss)} heap ${mb(baseline.heapUsed)}; peak rss ${mb(peakRss)} heap ${mb(peakHeap)}; end (after GC) rss ${mb(final.rss)} heap ${mb(final.heapUsed)}`);
  console.log(ok ? 'soak: OK' : 'soak: MISMATCH');
  killChild();
  process.exit(ok ? 0 : 1);
}

if (process.argv.includes('--server')) {
  void runServer();
} else {
  runLoad().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
