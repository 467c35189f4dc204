import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RESULTS_DIR, loadTokens } from './lib/fixture';
import { buildLibForBench, killAll, startServerProcess } from './lib/procs';
import { runMain } from './lib/entry';
import type { ServerProcess } from './lib/procs';
import type { MemSnapshot, ServerConfig } from './lib/server';
import { censusDiff, heapCensus } from './lib/heap-snapshot';
import type { HeapCensus } from './lib/heap-snapshot';
import { formatTable } from './lib/stats';
import { churn, postStream } from './lib/stream-churn';
import type { StreamOutcome } from './lib/stream-churn';

/**
 * `npm run bench:memory`: what the middleware keeps per response, measured in the server process (forked with
 * --expose-gc, collected before each reading):
 *  1. heap and RSS per in-flight stream: 2,000 streams held mid-response, against the same server idle;
 *  2. a leak check: heap after 100,000 completed and 10,000 aborted streams, against the start and the midpoint.
 * The client runs in this process; only the server's memory is read.
 */

const HELD_STREAMS = Number(process.env.MEM_HELD) || 2000;
/** `--breakdown`: heap snapshots idle and held, to list what each in-flight stream keeps, by constructor. */
const BREAKDOWN = process.argv.includes('--breakdown');
const HOLD_AT = 150;
const COMPLETED = Number(process.env.MEM_COMPLETED) || 100_000;
const ABORTED = Number(process.env.MEM_ABORTED) || 10_000;
const LEAK_TOKENS = Number(process.env.MEM_TOKENS) || 20;
const LEAK_CONCURRENCY = 256;

const KiB = 1024;
const MiB = 1024 * 1024;

async function settle(server: ServerProcess, ms = 300): Promise<MemSnapshot> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return server.mem();
}

interface HeldResult {
  config: ServerConfig;
  idle: MemSnapshot;
  held: MemSnapshot;
  afterRelease: MemSnapshot;
  heapPerStream: number;
  rssPerStream: number;
  heldStreams: number;
  census?: { idle: HeapCensus; held: HeapCensus };
}

async function measureHeld(config: ServerConfig): Promise<HeldResult> {
  const server = await startServerProcess(config, { exposeGc: true });
  try {
    // Warm up every code path (and the middleware's per-model state) before the idle reading.
    await churn(server.port, 500, 32, `?tokens=${LEAK_TOKENS}`, false);
    const idle = await settle(server);
    const snapshotDir = join(RESULTS_DIR, 'heap');
    if (BREAKDOWN) mkdirSync(snapshotDir, { recursive: true });
    const idleFile = join(snapshotDir, `${config}-idle.heapsnapshot`);
    if (BREAKDOWN) await server.heapSnapshot(idleFile);
    const agent = new http.Agent({ keepAlive: true, maxSockets: HELD_STREAMS });
    let reached = 0;
    const streams: Promise<StreamOutcome>[] = [];
    for (let i = 0; i < HELD_STREAMS; i++) {
      let counted = false;
      streams.push(
        postStream(agent, server.port, `?hold=${HOLD_AT}`, (events) => {
          if (!counted && events >= HOLD_AT) {
            counted = true;
            reached++;
          }
        }),
      );
    }
    const deadline = performance.now() + 60_000;
    while (reached < HELD_STREAMS && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const held = await settle(server);
    const heldFile = join(snapshotDir, `${config}-held.heapsnapshot`);
    if (BREAKDOWN) await server.heapSnapshot(heldFile);
    server.release();
    const outcomes = await Promise.race([
      Promise.all(streams),
      new Promise<StreamOutcome[]>((resolve) => setTimeout(() => resolve([]), 60_000)),
    ]);
    agent.destroy();
    const afterRelease = await settle(server, 500);
    if (outcomes.length !== HELD_STREAMS || outcomes.some((o) => !o.ok)) console.warn(`  ${config}: some held streams failed`);
    return {
      config,
      idle,
      held,
      afterRelease,
      heldStreams: reached,
      heapPerStream: (held.heapUsed - idle.heapUsed) / Math.max(1, reached),
      rssPerStream: (held.rss - idle.rss) / Math.max(1, reached),
      ...(BREAKDOWN ? { census: { idle: heapCensus(idleFile), held: heapCensus(heldFile) } } : {}),
    };
  } finally {
    await server.stop();
  }
}

interface LeakResult {
  config: ServerConfig;
  start: MemSnapshot;
  midpoint: MemSnapshot;
  end: MemSnapshot;
  completed: number;
  aborted: number;
  failed: number;
  seconds: number;
}

async function measureLeak(config: ServerConfig): Promise<LeakResult> {
  const server = await startServerProcess(config, { exposeGc: true });
  try {
    const t0 = performance.now();
    await churn(server.port, 2000, LEAK_CONCURRENCY, `?tokens=${LEAK_TOKENS}`, false);
    await churn(server.port, 200, 32, `?hold=5&tokens=${LEAK_TOKENS}`, true);
    const start = await settle(server);
    const half = Math.floor(COMPLETED / 2);
    const first = await churn(server.port, half, LEAK_CONCURRENCY, `?tokens=${LEAK_TOKENS}`, false);
    const midpoint = await settle(server);
    const second = await churn(server.port, COMPLETED - half, LEAK_CONCURRENCY, `?tokens=${LEAK_TOKENS}`, false);
    // Aborted streams: the server holds after a few events, the client leaves once it has seen the first token.
    const aborted = await churn(server.port, ABORTED, LEAK_CONCURRENCY, `?hold=5&tokens=${LEAK_TOKENS}`, true);
    const end = await settle(server, 1000);
    return {
      config,
      start,
      midpoint,
      end,
      completed: first.ok + second.ok,
      aborted: aborted.ok + aborted.failed,
      failed: first.failed + second.failed,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await server.stop();
  }
}

const kib = (bytes: number): string => (bytes / KiB).toFixed(2);
const mib = (bytes: number): string => (bytes / MiB).toFixed(1);
const signedMib = (bytes: number): string => `${bytes >= 0 ? '+' : ''}${(bytes / MiB).toFixed(2)}`;

async function main(): Promise<void> {
  await loadTokens();
  // --dist matters most here: tsx keeps function names with a defineProperty per closure, which gives every
  // per-request closure its own property store (~250 bytes each, seen in heap snapshots); shipped code has none.
  const dist = process.argv.includes('--dist');
  if (dist) process.env.BENCH_LIB_DIR = buildLibForBench();
  const configs: ServerConfig[] = ['bare', 'dynamo'];
  console.log(
    `bench:memory: ${HELD_STREAMS} held streams; leak check ${COMPLETED} completed + ${ABORTED} aborted streams ` +
      `(${LEAK_TOKENS} tokens each); lib from ${dist ? 'a tsc build' : 'TypeScript source via tsx'}; ` +
      `node ${process.version}, ${cpus().length} CPUs`,
  );
  const held: HeldResult[] = [];
  for (const config of configs) {
    const result = await measureHeld(config);
    held.push(result);
    console.log(`  held ${config}: ${kib(result.heapPerStream)} KiB heap, ${kib(result.rssPerStream)} KiB RSS per stream`);
  }
  const bare = held.find((h) => h.config === 'bare') as HeldResult;
  const heldTable = formatTable(
    ['config', 'idle heap MiB', 'heap MiB, streams held', 'heap KiB per stream', 'added vs bare KiB', 'RSS KiB per stream', 'added RSS vs bare KiB'],
    held.map((h) => [
      h.config,
      mib(h.idle.heapUsed),
      mib(h.held.heapUsed),
      kib(h.heapPerStream),
      h.config === 'bare' ? '–' : kib(h.heapPerStream - bare.heapPerStream),
      kib(h.rssPerStream),
      h.config === 'bare' ? '–' : kib(h.rssPerStream - bare.rssPerStream),
    ]),
    `Memory per in-flight stream (${HELD_STREAMS} streams held after ${HOLD_AT} events)`,
  );
  console.log(`\n${heldTable}\n`);
  const dynamoHeld = held.find((h) => h.config === 'dynamo');
  if (dynamoHeld?.census && bare.census) {
    const perStream = (h: HeldResult): Map<string, { count: number; bytes: number }> =>
      new Map(censusDiff(h.census?.idle ?? new Map(), h.census?.held ?? new Map(), h.heldStreams).map((d) => [d.key, d]));
    const b = perStream(bare);
    const d = perStream(dynamoHeld);
    const rows = [...d.keys()]
      .map((key) => ({ key, bare: b.get(key), dynamo: d.get(key) }))
      .map((r) => ({ ...r, added: (r.dynamo?.bytes ?? 0) - (r.bare?.bytes ?? 0) }))
      .sort((x, y) => y.added - x.added)
      .slice(0, 20);
    console.log(
      `${formatTable(
        ['kept per held stream (heap snapshot)', 'bare objects', 'bare bytes', 'dynamo objects', 'dynamo bytes', 'added bytes'],
        rows.map((r) => [
          r.key,
          (r.bare?.count ?? 0).toFixed(1),
          (r.bare?.bytes ?? 0).toFixed(0),
          (r.dynamo?.count ?? 0).toFixed(1),
          (r.dynamo?.bytes ?? 0).toFixed(0),
          r.added.toFixed(0),
        ]),
        'What each in-flight stream keeps, by constructor (self sizes; top 20 by bytes added)',
      )}\n`,
    );
  }

  const leaks: LeakResult[] = [];
  for (const config of BREAKDOWN ? [] : configs) {
    const result = await measureLeak(config);
    leaks.push(result);
    console.log(`  leak ${config}: ${result.completed} completed, ${result.aborted} aborted in ${result.seconds.toFixed(1)} s`);
  }
  const leakTable = formatTable(
    ['config', 'heap MiB at start', 'after 50%', 'after all', 'end − start MiB', 'end − midpoint MiB', 'RSS end − start MiB', 'streams (completed / aborted / failed)'],
    leaks.map((l) => [
      l.config,
      mib(l.start.heapUsed),
      mib(l.midpoint.heapUsed),
      mib(l.end.heapUsed),
      signedMib(l.end.heapUsed - l.start.heapUsed),
      signedMib(l.end.heapUsed - l.midpoint.heapUsed),
      signedMib(l.end.rss - l.start.rss),
      `${l.completed} / ${l.aborted} / ${l.failed}`,
    ]),
    `Heap after ${COMPLETED} completed and ${ABORTED} aborted streams`,
  );
  if (leaks.length > 0) console.log(`\n${leakTable}\n`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const out = join(RESULTS_DIR, 'memory.json');
  const heldForJson = held.map(({ census: _census, ...rest }) => rest);
  if (!BREAKDOWN) {
    writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, held: heldForJson, leaks }, null, 2)}\n`);
  }
  console.log(`wrote ${out}`);
}

if (require.main === module) {
  runMain(main, killAll);
}
