import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector';
import { writeHeapSnapshot } from 'node:v8';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { RequestHandler } from 'express';
import { BENCH_MODEL, buildEvents, loadTokens } from './fixture';
import { CONFIGS, isServerConfig, mountMiddleware } from './server-configs';
import { countSocketWrites } from './socket-writes';
import type { ServerConfig } from './server-configs';

export { isServerConfig, type ServerConfig } from './server-configs';

/**
 * One streaming server under test. Run as its own process (`tsx bench/server.ts <config>`): the harness forks it
 * with IPC, it answers `{type:'ready', port}`, serves the mock model at zero delay, and exits with its parent.
 */

/** Control messages the harness sends over IPC. */
export type ServerRequest =
  | { type: 'mem'; id: number }
  | { type: 'release' }
  | { type: 'cpu'; id: number }
  | { type: 'profile-start'; id: number }
  | { type: 'profile-stop'; id: number; file: string }
  | { type: 'heap-snapshot'; id: number; file: string };

/** Where the server's streams stand; both snapshots carry it, so a measurement can tell which streams it covers. */
export interface StreamTallies {
  streamsCompleted: number;
  streamsClosedEarly: number;
  /** Streams waiting, part-written, for a 'release' message. */
  held: number;
}

export interface CpuSnapshot extends StreamTallies {
  userUs: number;
  systemUs: number;
  /** `res.write` calls made by the handler so far: CPU per chunk is computed against this. */
  chunks: number;
  wallNs: number;
}

export interface MemSnapshot extends StreamTallies {
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };

const YIELD_EVERY = Math.max(1, Number(process.env.BENCH_YIELD_EVERY) || 4);
const MAX_CACHED_MODELS = 1000;

export interface Counters {
  chunks: number;
  streamsCompleted: number;
  streamsClosedEarly: number;
}

function eventsFor(
  cache: Map<string, string[]>,
  tokens: readonly string[],
  model: unknown,
  tokenCount: number,
): string[] {
  const name = typeof model === 'string' && model.length > 0 && model.length <= 200 ? model : BENCH_MODEL;
  const key = `${name}\u0000${tokenCount}`;
  let events = cache.get(key);
  if (events === undefined) {
    events = buildEvents(tokens.slice(0, tokenCount), name, 42);
    if (cache.size < MAX_CACHED_MODELS) cache.set(key, events);
  }
  return events;
}

/**
 * Writes one response's events with one `res.write` per chunk, honouring backpressure, and yields to the event
 * loop every few chunks so concurrent streams interleave as they would behind a real model.
 */
function streamEvents(
  res: ServerResponse,
  events: readonly string[],
  holdAt: number,
  held: Set<() => void>,
  counters: Counters,
): void {
  let next = 0;
  let closed = false;
  let holding = holdAt;
  const pump = (): void => {
    if (closed) return;
    for (let k = 0; k < YIELD_EVERY; k++) {
      if (next === events.length) {
        res.end();
        counters.streamsCompleted++;
        return;
      }
      if (next === holding) {
        holding = -1;
        held.add(pump);
        return;
      }
      counters.chunks++;
      if (!res.write(events[next++] as string)) {
        res.once('drain', pump);
        return;
      }
    }
    setImmediate(pump);
  };
  res.on('close', () => {
    if (next < events.length) counters.streamsClosedEarly++;
    closed = true;
    held.delete(pump);
  });
  res.writeHead(200, SSE_HEADERS);
  pump();
}

export interface StartedServer {
  server: http.Server;
  port: number;
  counters: Counters;
  held: Set<() => void>;
  release(): void;
}

/** The mock model's route: streams the fixture for the requested model (`?tokens=n` shortens it, `?hold=k` pauses it). */
export function chatCompletionsRoute(tokens: readonly string[], counters: Counters, held: Set<() => void>): RequestHandler {
  const cache = new Map<string, string[]>();
  return (req, res) => {
    const query = new URL(req.url, 'http://x').searchParams;
    const tokenCount = Math.min(tokens.length, Math.max(1, Number(query.get('tokens')) || tokens.length));
    // hold=k: write k events, then wait for a 'release' message (memory held per in-flight stream is measured here).
    const holdAt = Math.min(tokenCount, Math.max(-1, Number(query.get('hold') ?? -1)));
    const body = req.body as { model?: unknown } | undefined;
    streamEvents(res, eventsFor(cache, tokens, body?.model, tokenCount), holdAt, held, counters);
  };
}

export function newCounters(): Counters {
  return { chunks: 0, streamsCompleted: 0, streamsClosedEarly: 0 };
}

/** Builds and starts the server for `config` on 127.0.0.1 (port 0 = any free port). */
export async function startBenchServer(config: ServerConfig, port = 0): Promise<StartedServer> {
  const tokens = await loadTokens();
  const counters = newCounters();
  const held = new Set<() => void>();
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  await mountMiddleware(app, config);
  app.post('/v1/chat/completions', chatCompletionsRoute(tokens, counters, held));
  return listenForBench(app, counters, held, port);
}

function streamTallies(counters: Counters, held: Set<() => void>): StreamTallies {
  return { streamsCompleted: counters.streamsCompleted, streamsClosedEarly: counters.streamsClosedEarly, held: held.size };
}

function cpuSnapshot(counters: Counters, held: Set<() => void>): CpuSnapshot {
  const cpu = process.cpuUsage();
  return {
    userUs: cpu.user,
    systemUs: cpu.system,
    chunks: counters.chunks,
    ...streamTallies(counters, held),
    wallNs: Number(process.hrtime.bigint()),
  };
}

function memSnapshot(started: StartedServer): MemSnapshot {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Several passes: weak maps and finalizers free memory only on a later cycle.
  if (gc) for (let i = 0; i < 4; i++) gc();
  const mem = process.memoryUsage();
  return {
    heapUsed: mem.heapUsed,
    rss: mem.rss,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
    ...streamTallies(started.counters, started.held),
  };
}

/**
 * The V8 sampling profiler driven over IPC, so that a profile covers exactly the measurement window and not the
 * start-up (tsx compiling TypeScript would otherwise dominate it).
 */
function createProfiler(): { start(): Promise<void>; stop(file: string): Promise<void> } {
  let session: Session | undefined;
  const post = (method: string, params?: object): Promise<unknown> =>
    new Promise((resolve, reject) => {
      (session as Session).post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result)));
    });
  return {
    async start() {
      session ??= new Session();
      session.connect();
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 200 });
      await post('Profiler.start');
    },
    async stop(file) {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      writeFileSync(file, JSON.stringify(profile));
      await post('Profiler.disable');
      (session as Session).disconnect();
    },
  };
}

const profiler = createProfiler();

/**
 * Answers the harness over IPC (ready, CPU and memory snapshots, profiler, heap snapshot) for a started server; run
 * by hand without IPC, it prints where it listens and exits cleanly on a signal.
 */
export function answerHarness(started: StartedServer, config: string): void {
  const send = process.send?.bind(process);
  if (!send) {
    // Exit cleanly on a signal so that --cpu-prof and --heap-prof write their files when run by hand.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(0));
    console.log(`bench ${config} on http://127.0.0.1:${started.port}/v1/chat/completions`);
    return;
  }
  process.on('message', (message: ServerRequest) => {
    if (message.type === 'release') started.release();
    else if (message.type === 'mem') send({ type: 'mem', id: message.id, mem: memSnapshot(started) });
    else if (message.type === 'cpu') send({ type: 'cpu', id: message.id, cpu: cpuSnapshot(started.counters, started.held) });
    else if (message.type === 'profile-start') {
      profiler.start().then(() => send({ type: 'profile-start', id: message.id, ok: true }), (error: unknown) => send({ type: 'profile-start', id: message.id, error: String(error) }));
    } else if (message.type === 'heap-snapshot') {
      writeHeapSnapshot(message.file);
      send({ type: 'heap-snapshot', id: message.id, file: message.file });
    } else if (message.type === 'profile-stop') {
      profiler
        .stop(message.file)
        .then(() => send({ type: 'profile-stop', id: message.id, file: message.file }), (error: unknown) => send({ type: 'profile-stop', id: message.id, error: String(error) }));
    }
  });
  // A server must never outlive the harness that forked it, whatever way the harness ended.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', port: started.port, config, pid: process.pid });
}

/** Listens on 127.0.0.1 with settings for thousands of long streams; answers `/__cpu` before `app` sees the request. */
export async function listenForBench(app: (req: IncomingMessage, res: ServerResponse) => void, counters: Counters, held: Set<() => void>, port = 0): Promise<StartedServer> {
  // Control endpoints answer before Express so that the middlewares under test never see them.
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/__cpu') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(cpuSnapshot(counters, held)));
      return;
    }
    app(req, res);
  });
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 65_000;
  // Thousands of held streams from one client must not be cut by the default per-request timeout.
  server.requestTimeout = 0;
  server.maxConnections = 20_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  return {
    server,
    port: address.port,
    counters,
    held,
    release(): void {
      const waiting = [...held];
      held.clear();
      for (const resume of waiting) resume();
    },
  };
}

async function main(): Promise<void> {
  const config = process.argv[2] ?? process.env.BENCH_CONFIG ?? 'bare';
  if (!isServerConfig(config)) throw new Error(`unknown config "${config}"; use one of ${CONFIGS.join(', ')}`);
  if (process.env.BENCH_SOCKET_WRITES === '1') countSocketWrites(config);
  answerHarness(await startBenchServer(config, Number(process.env.BENCH_PORT) || 0), config);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
