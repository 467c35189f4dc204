import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { RESULTS_DIR, loadTokens } from './fixture';
import { runLoad } from './load';
import type { LoadOptions, LoadResult } from './load';
import { buildLibForBench, killAll, runLoadProcess, startServerProcess } from './procs';
import type { ServerProcess } from './procs';
import { isServerConfig } from './server';
import type { ServerConfig } from './server';
import { formatTable, median } from './stats';

/**
 * `npm run bench`: the same streaming server in each configuration, each in its own process, loaded in turn by a
 * fresh client process, configurations alternated over rounds so that drift on a noisy machine hits all of them.
 * Ratios are taken within a round (against that round's bare run), then the median over rounds is reported.
 *
 * Options: BENCH_SECONDS (window, default 2.5), BENCH_WARMUP (default 1), BENCH_ROUNDS (default 4),
 * BENCH_CONCURRENCY (comma list, default 64,512), BENCH_CONFIGS (default bare,dynamo,promBundle,both; also
 * dynamoOtel (dynamo with a real OpenTelemetry SDK `meter`), passthrough, hook, and dynamoAlt, dynamoAlt2: the lib built in BENCH_ALT_LIB_DIR, BENCH_ALT2_LIB_DIR, to compare a change in one run), BENCH_OUT (default bench/results/bench.json), BENCH_YIELD_EVERY (server, default 4);
 * flags --quick (a few-second smoke: 16 streams, 1 round of 1 s, client in this process) and --dist (lib from a tsc
 * build). The default run takes 3.5–4 minutes (longer on a loaded machine, where process starts slow down).
 */

export interface BenchSettings {
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  concurrencies: number[];
  configs: ServerConfig[];
  out: string;
  quick: boolean;
  /** `--dist`: the servers load lib/ compiled by tsc (what users run) instead of the TypeScript source via tsx. */
  dist: boolean;
}

export interface ConfigSummary {
  config: ServerConfig;
  rounds: number;
  streamsPerSec: number;
  chunksPerSec: number;
  cpuUsPerChunk: number;
  userUsPerChunk: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  serverCpuUtilisation: number;
  errors: number;
  /** Medians over rounds of this configuration's figure divided by bare's figure in the same round. */
  ratio: { streamsPerSec: number; chunksPerSec: number; cpuUsPerChunk: number; ttftP50Ms: number; ttftP99Ms: number };
  /** Median over rounds of (this − bare) server CPU per chunk, µs. */
  addedCpuUsPerChunk: number;
  /**
   * The same in user CPU only. The middleware runs in user space; system time is mostly the loopback TCP work
   * of writev, which swings with scheduling on a busy machine and hides a sub-µs difference.
   */
  addedUserUsPerChunk: number;
  /**
   * Median over rounds of bare's CPU per chunk over this one's: the chunks/s ratio a server that owns its core
   * would see. Unlike measured chunks/s it does not move when other processes take the CPU away mid-run.
   */
  cpuBoundRatio: number;
}

/** One load run as recorded: the client's figures plus what the machine was doing. */
export type RunRecord = LoadResult & { round: number; loadAvg1: number };

export interface BenchReport {
  meta: {
    date: string;
    node: string;
    nproc: number;
    cpuModel: string;
    settings: BenchSettings;
    yieldEvery: number;
    tokensPerResponse: number;
    eventsPerResponse: number;
    /** The commit lib/ was measured at, and whether lib/ had uncommitted changes then. */
    lib: { commit: string; dirty: boolean };
  };
  concurrency: Record<string, { summary: ConfigSummary[]; runs: Record<string, RunRecord[]> }>;
}

export function libVersion(): { commit: string; dirty: boolean } {
  const git = (...args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: join(__dirname, '..'), encoding: 'utf8', timeout: 10_000 }).trim();
    } catch {
      return '';
    }
  };
  return { commit: git('log', '-1', '--format=%h', '--', 'lib') || 'unknown', dirty: git('status', '--porcelain', '--', 'lib') !== '' };
}

function numberEnv(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return process.env[name] !== undefined && Number.isFinite(value) && value > 0 ? value : fallback;
}

export function settingsFrom(argv: readonly string[], env: NodeJS.ProcessEnv): BenchSettings {
  const quick = argv.includes('--quick');
  const concurrencies = (env.BENCH_CONCURRENCY ?? (quick ? '16' : '64,512'))
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n <= 10_000);
  const configs = (env.BENCH_CONFIGS ?? 'bare,dynamo,promBundle,both').split(',').filter(isServerConfig);
  // bare is the reference of every ratio, so it always runs.
  if (!configs.includes('bare')) configs.unshift('bare');
  return {
    quick,
    dist: argv.includes('--dist'),
    seconds: numberEnv('BENCH_SECONDS', quick ? 1 : 2.5),
    warmupSeconds: numberEnv('BENCH_WARMUP', quick ? 0.4 : 1),
    rounds: Math.min(50, Math.round(numberEnv('BENCH_ROUNDS', quick ? 1 : 4))),
    concurrencies: concurrencies.length > 0 ? concurrencies : [64],
    configs: [...new Set(configs)],
    out: env.BENCH_OUT ?? join(RESULTS_DIR, 'bench.json'),
  };
}

function failedRun(concurrency: number): LoadResult {
  const nan = Number.NaN;
  return {
    concurrency,
    seconds: nan,
    streams: 0,
    chunks: 0,
    streamsPerSec: nan,
    chunksPerSec: nan,
    ttftP50Ms: nan,
    ttftP99Ms: nan,
    ttftSamples: 0,
    errors: 1,
    serverUserUs: nan,
    serverCpuUs: nan,
    serverChunks: 0,
    cpuUsPerChunk: nan,
    serverCpuUtilisation: nan,
    clientCpuUtilisation: nan,
  };
}

export function summarise(configs: readonly ServerConfig[], runs: Record<string, LoadResult[]>): ConfigSummary[] {
  const bare = runs.bare ?? [];
  // Within-round ratios where both figures exist; else the ratio of the medians (e.g. a round without TTFT samples).
  const ratioOf = (mine: LoadResult[], pick: (r: LoadResult) => number): number => {
    const paired = mine
      .map((r, i) => (bare[i] === undefined ? Number.NaN : pick(r) / pick(bare[i] as LoadResult)))
      .filter((v) => Number.isFinite(v));
    return paired.length > 0 ? median(paired) : median(mine.map(pick)) / median(bare.map(pick));
  };
  return configs.map((config) => {
    const mine = runs[config] ?? [];
    const userPerChunk = (r: LoadResult): number => r.serverUserUs / r.serverChunks;
    return {
      config,
      rounds: mine.length,
      streamsPerSec: median(mine.map((r) => r.streamsPerSec)),
      chunksPerSec: median(mine.map((r) => r.chunksPerSec)),
      cpuUsPerChunk: median(mine.map((r) => r.cpuUsPerChunk)),
      userUsPerChunk: median(mine.map(userPerChunk)),
      ttftP50Ms: median(mine.map((r) => r.ttftP50Ms)),
      ttftP99Ms: median(mine.map((r) => r.ttftP99Ms)),
      serverCpuUtilisation: median(mine.map((r) => r.serverCpuUtilisation)),
      errors: mine.reduce((sum, r) => sum + r.errors, 0),
      ratio: {
        streamsPerSec: ratioOf(mine, (r) => r.streamsPerSec),
        chunksPerSec: ratioOf(mine, (r) => r.chunksPerSec),
        cpuUsPerChunk: ratioOf(mine, (r) => r.cpuUsPerChunk),
        ttftP50Ms: ratioOf(mine, (r) => r.ttftP50Ms),
        ttftP99Ms: ratioOf(mine, (r) => r.ttftP99Ms),
      },
      addedCpuUsPerChunk: median(mine.map((r, i) => r.cpuUsPerChunk - (bare[i]?.cpuUsPerChunk ?? Number.NaN))),
      addedUserUsPerChunk: median(
        mine.map((r, i) => userPerChunk(r) - (bare[i] === undefined ? Number.NaN : userPerChunk(bare[i] as LoadResult))),
      ),
      cpuBoundRatio: median(mine.map((r, i) => (bare[i]?.cpuUsPerChunk ?? Number.NaN) / r.cpuUsPerChunk)),
    };
  });
}

const f = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

export function renderSummary(concurrency: number, summary: readonly ConfigSummary[]): string {
  const rows = summary.map((s) => [
    s.config,
    `${f(s.streamsPerSec, 0)} (${f(s.ratio.streamsPerSec, 2)})`,
    `${f(s.chunksPerSec, 0)} (${f(s.ratio.chunksPerSec, 2)})`,
    `${f(s.cpuUsPerChunk, 2)}`,
    f(s.cpuBoundRatio, 2),
    s.config === 'bare' ? '–' : `${s.addedCpuUsPerChunk >= 0 ? '+' : ''}${f(s.addedCpuUsPerChunk, 2)}`,
    s.config === 'bare' ? '–' : `${s.addedUserUsPerChunk >= 0 ? '+' : ''}${f(s.addedUserUsPerChunk, 2)}`,
    `${f(s.ttftP50Ms, 1)} (${f(s.ratio.ttftP50Ms, 2)})`,
    `${f(s.ttftP99Ms, 1)} (${f(s.ratio.ttftP99Ms, 2)})`,
    f(s.serverCpuUtilisation, 2),
  ]);
  return formatTable(
    [
      'config',
      'streams/s (×bare)',
      'chunks/s (×bare)',
      'server CPU µs/chunk',
      'CPU-bound ×bare',
      'added µs/chunk',
      'added user µs/chunk',
      'TTFT p50 ms (×bare)',
      'TTFT p99 ms (×bare)',
      'server CPU',
    ],
    rows,
    `${concurrency} concurrent streams`,
  );
}

export async function runBench(settings: BenchSettings, log: (line: string) => void = console.log): Promise<BenchReport> {
  const tokens = await loadTokens();
  if (settings.dist) process.env.BENCH_LIB_DIR = buildLibForBench();
  const report: BenchReport = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      nproc: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      settings,
      yieldEvery: Math.max(1, Number(process.env.BENCH_YIELD_EVERY) || 4),
      tokensPerResponse: tokens.length,
      eventsPerResponse: tokens.length + 4,
      lib: libVersion(),
    },
    concurrency: {},
  };
  // The client always runs outside the servers' processes; --quick keeps it in this one (still a separate process
  // from every server) to spare a process start per run, which is most of a smoke run's time.
  const load = (options: LoadOptions): Promise<LoadResult> => (settings.quick ? runLoad(options) : runLoadProcess(options));
  const servers = new Map<ServerConfig, ServerProcess>();
  try {
    // Servers start together and stay up for the whole run; each waits idle while another one is loaded.
    const started = await Promise.all(settings.configs.map((config) => startServerProcess(config)));
    for (const server of started) servers.set(server.config, server);
    for (const concurrency of settings.concurrencies) {
      const runs: Record<string, RunRecord[]> = {};
      if (!settings.quick) {
        // One unrecorded pass per server at this concurrency: JIT tiers, pools and socket buffers settle first.
        for (const config of settings.configs) {
          await load({
            port: (servers.get(config) as ServerProcess).port,
            concurrency,
            warmupMs: 0,
            durationMs: settings.warmupSeconds * 1000,
            drainMs: 1000,
          }).catch((error: unknown) => log(`  warm-up of ${config} failed (${String(error)})`));
        }
      }
      for (let round = 0; round < settings.rounds; round++) {
        // Rotating the order stops one configuration from always running first (cold machine) or last.
        const order = settings.configs.map((_, i) => settings.configs[(i + round) % settings.configs.length] as ServerConfig);
        for (const config of order) {
          const server = servers.get(config) as ServerProcess;
          let result: LoadResult;
          try {
            result = await load({
              port: server.port,
              concurrency,
              warmupMs: settings.warmupSeconds * 1000,
              durationMs: settings.seconds * 1000,
              drainMs: settings.quick ? 500 : 2000,
            });
          } catch (error) {
            // One failed run must not lose the others: it becomes a hole (NaN) that the medians skip.
            log(`  c=${concurrency} round ${round + 1} ${config}: run failed (${String(error)})`);
            result = failedRun(concurrency);
          }
          const loadAvg1 = loadavg()[0] ?? Number.NaN;
          (runs[config] ??= []).push({ ...result, round, loadAvg1 });
          log(
            `  c=${concurrency} round ${round + 1}/${settings.rounds} ${config.padEnd(11)} ` +
              `${f(result.chunksPerSec, 0).padStart(7)} chunks/s  ${f(result.cpuUsPerChunk, 2)} µs/chunk  ` +
              `TTFT p50 ${f(result.ttftP50Ms, 1)} ms  server CPU ${f(result.serverCpuUtilisation, 2)}  ` +
              `client CPU ${f(result.clientCpuUtilisation, 2)}  load ${f(loadAvg1, 1)}` +
              `${result.errors > 0 ? `  errors ${result.errors}` : ''}`,
          );
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      const summary = summarise(settings.configs, runs);
      report.concurrency[String(concurrency)] = { summary, runs };
      log('');
      log(renderSummary(concurrency, summary));
      log('');
    }
  } finally {
    await Promise.all([...servers.values()].map((server) => server.stop()));
  }
  mkdirSync(dirname(settings.out), { recursive: true });
  writeFileSync(settings.out, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${settings.out}`);
  return report;
}

if (require.main === module) {
  const settings = settingsFrom(process.argv.slice(2), process.env);
  const budget =
    settings.concurrencies.length *
    settings.rounds *
    settings.configs.length *
    (settings.seconds + settings.warmupSeconds + 2) +
    settings.concurrencies.length * settings.configs.length * (settings.warmupSeconds + 1.5);
  console.log(
    `bench: configs ${settings.configs.join(', ')}; concurrency ${settings.concurrencies.join(', ')}; ` +
      `${settings.rounds} round(s) of ${settings.seconds} s after ${settings.warmupSeconds} s warm-up ` +
      `(about ${Math.ceil(budget)} s); lib ${libVersion().commit}${libVersion().dirty ? ' + uncommitted changes' : ''} ` +
      `from ${settings.dist ? 'a tsc build' : 'TypeScript source via tsx'}; ` +
      `node ${process.version}, ${cpus().length} CPUs`,
  );
  const startedAt = Date.now();
  runBench(settings)
    .then(() => console.log(`done in ${Math.round((Date.now() - startedAt) / 1000)} s`))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(killAll);
}
