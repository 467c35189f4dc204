import http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { CpuSnapshot } from './server';

/**
 * Load generator: keeps `concurrency` streams busy against one bench server, reads every byte, and measures over a
 * window after a warm-up. Runs in its own process (forked by the harness, or `tsx bench/load.ts --port N`) so its
 * CPU never counts as the server's.
 */

export interface LoadOptions {
  port: number;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** How long to let in-flight streams finish after the window before cutting them. */
  drainMs?: number;
  path?: string;
  body?: string;
  /**
   * Where events are counted when the loaded server writes none itself (a proxy gateway): the upstream's port. CPU
   * is always the loaded server's.
   */
  chunksPort?: number;
}

export interface LoadResult {
  concurrency: number;
  seconds: number;
  /** Streams that completed inside the window. */
  streams: number;
  /** SSE events (`\n\n`-terminated) received inside the window. */
  chunks: number;
  streamsPerSec: number;
  chunksPerSec: number;
  /** Client-side time to the first event with non-empty `delta.content`, for streams started in the window. */
  ttftP50Ms: number;
  ttftP99Ms: number;
  ttftSamples: number;
  errors: number;
  serverUserUs: number;
  /** Server CPU (user + system) between the two snapshots taken at the window's edges. */
  serverCpuUs: number;
  serverChunks: number;
  cpuUsPerChunk: number;
  /** Server CPU time over wall time: near 1 means the single-threaded server was the bottleneck. */
  serverCpuUtilisation: number;
  clientCpuUtilisation: number;
}

const LF = 10;
const LFLF = Buffer.from('\n\n');
const CONTENT_KEY = Buffer.from('"content":"');
const QUOTE = 34;
const HOST = '127.0.0.1';
const FULL_LENGTH_TOKENS = 300;

export const DEFAULT_BODY = JSON.stringify({
  model: 'bench-model',
  stream: true,
  stream_options: { include_usage: true },
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Explain why streaming metrics need per-chunk accounting.' },
  ],
});

/** Events in `buf`, given whether the previous buffer ended in a lone `\n` (a delimiter split across reads). */
function countEvents(buf: Buffer, previousEndedInLf: boolean): number {
  let events = previousEndedInLf && buf[0] === LF ? 1 : 0;
  let at = buf.indexOf(LFLF, events);
  while (at !== -1) {
    events++;
    at = buf.indexOf(LFLF, at + 2);
  }
  return events;
}

function endsInLoneLf(buf: Buffer): boolean {
  const n = buf.length;
  return n > 0 && buf[n - 1] === LF && (n < 2 || buf[n - 2] !== LF);
}

/** True when `buf` holds `"content":"` followed by a character, i.e. a token-bearing delta, not the empty role one. */
function hasContent(buf: Buffer): boolean {
  let at = buf.indexOf(CONTENT_KEY);
  while (at !== -1) {
    const after = at + CONTENT_KEY.length;
    if (after < buf.length && buf[after] !== QUOTE) return true;
    at = buf.indexOf(CONTENT_KEY, after);
  }
  return false;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

/** The server's CPU snapshot; retried once, since a server loaded by 512 streams on a busy machine can be slow to answer. */
export async function fetchCpu(port: number): Promise<CpuSnapshot> {
  try {
    return await fetchCpuOnce(port, 20_000);
  } catch {
    return fetchCpuOnce(port, 20_000);
  }
}

function fetchCpuOnce(port: number, timeoutMs: number): Promise<CpuSnapshot> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path: '/__cpu', agent: false, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (b: Buffer) => parts.push(b));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(parts).toString('utf8')) as CpuSnapshot);
        } catch (error) {
          reject(error as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('/__cpu timed out')));
    req.on('error', reject);
  });
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { port, concurrency, warmupMs, durationMs } = options;
  const drainMs = options.drainMs ?? 3000;
  const path = options.path ?? '/v1/chat/completions';
  const body = Buffer.from(options.body ?? DEFAULT_BODY);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const headers = {
    'content-type': 'application/json',
    'content-length': String(body.length),
    accept: 'text/event-stream',
  };

  let measuring = false;
  let stopping = false;
  let chunks = 0;
  let streams = 0;
  let errors = 0;
  let inFlight = 0;
  const ttfts: number[] = [];
  let allDone: (() => void) | undefined;

  // The first wave asks for responses of random lengths: were they all full length, the streams would start and
  // end in lock-step waves, and a window could hold no stream start at all (no TTFT sample) at high concurrency.
  let firstWave = concurrency;
  const startStream = (): void => {
    if (stopping) {
      if (inFlight === 0) allDone?.();
      return;
    }
    const streamPath = firstWave-- > 0 ? `${path}?tokens=${1 + Math.floor(Math.random() * FULL_LENGTH_TOKENS)}` : path;
    inFlight++;
    const startedAt = performance.now();
    const startedInWindow = measuring;
    let sawContent = false;
    let previousEndedInLf = false;
    let carry: Buffer | undefined;
    let finished = false;
    const finish = (ok: boolean): void => {
      if (finished) return;
      finished = true;
      inFlight--;
      if (!ok) errors++;
      else if (measuring) streams++;
      startStream();
    };
    const req = http.request({ host: HOST, port, path: streamPath, method: 'POST', agent, headers }, (res) => {
      if (res.statusCode !== 200) errors++;
      res.on('data', (buf: Buffer) => {
        if (!sawContent) {
          // Only a few bytes of the previous read are kept: enough to find the key split across two reads.
          const probe = carry === undefined ? buf : Buffer.concat([carry, buf]);
          if (hasContent(probe)) {
            sawContent = true;
            carry = undefined;
            if (startedInWindow && measuring) ttfts.push(performance.now() - startedAt);
          } else {
            carry = Buffer.from(probe.subarray(Math.max(0, probe.length - CONTENT_KEY.length)));
          }
        }
        if (measuring) chunks += countEvents(buf, previousEndedInLf);
        previousEndedInLf = endsInLoneLf(buf);
      });
      res.on('close', () => finish(res.complete));
      res.on('error', () => finish(false));
    });
    req.on('error', () => finish(false));
    req.end(body);
  };

  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  for (let i = 0; i < concurrency; i++) startStream();
  await sleep(warmupMs);

  const chunksPort = options.chunksPort ?? port;
  const snapshot = async (): Promise<{ cpu: CpuSnapshot; chunks: number }> => {
    const [cpu, chunksAt] = await Promise.all([fetchCpu(port), chunksPort === port ? undefined : fetchCpu(chunksPort)]);
    return { cpu, chunks: (chunksAt ?? cpu).chunks };
  };
  const before = await snapshot();
  const cpuBefore = before.cpu;
  const clientCpuBefore = process.cpuUsage();
  const windowStart = performance.now();
  measuring = true;
  await sleep(durationMs);
  measuring = false;
  const windowEnd = performance.now();
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const after = await snapshot();
  const cpuAfter = after.cpu;

  stopping = true;
  await new Promise<void>((resolve) => {
    allDone = resolve;
    if (inFlight === 0) resolve();
    setTimeout(resolve, drainMs).unref();
  });
  agent.destroy();

  const seconds = (windowEnd - windowStart) / 1000;
  const serverCpuUs = cpuAfter.userUs + cpuAfter.systemUs - (cpuBefore.userUs + cpuBefore.systemUs);
  const serverChunks = after.chunks - before.chunks;
  const serverWallUs = (cpuAfter.wallNs - cpuBefore.wallNs) / 1000;
  ttfts.sort((a, b) => a - b);
  return {
    concurrency,
    seconds,
    streams,
    chunks,
    streamsPerSec: streams / seconds,
    chunksPerSec: chunks / seconds,
    ttftP50Ms: percentile(ttfts, 50),
    ttftP99Ms: percentile(ttfts, 99),
    ttftSamples: ttfts.length,
    errors,
    serverCpuUs,
    serverChunks,
    serverUserUs: cpuAfter.userUs - cpuBefore.userUs,
    cpuUsPerChunk: serverChunks > 0 ? serverCpuUs / serverChunks : Number.NaN,
    serverCpuUtilisation: serverWallUs > 0 ? serverCpuUs / serverWallUs : Number.NaN,
    clientCpuUtilisation: (clientCpu.user + clientCpu.system) / 1000 / (windowEnd - windowStart),
  };
}

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? Number.NaN : Number(process.argv[at + 1]);
  return Number.isFinite(value) ? value : fallback;
}

if (require.main === module) {
  const send = process.send?.bind(process);
  if (send) {
    // Forked by the harness: one run per process, options over IPC, result back over IPC.
    process.once('message', (options: LoadOptions) => {
      runLoad(options)
        .then((result) => send({ type: 'result', result }, () => process.exit(0)))
        .catch((error: unknown) => send({ type: 'error', message: String(error) }, () => process.exit(1)));
    });
    process.on('disconnect', () => process.exit(0));
  } else {
    runLoad({
      port: flag('port', 8080),
      concurrency: flag('c', 64),
      warmupMs: flag('warmup', 1) * 1000,
      durationMs: flag('t', 5) * 1000,
    })
      .then((result) => console.log(JSON.stringify(result, null, 2)))
      .catch((error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      });
  }
}
