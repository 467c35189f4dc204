import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { RESULTS_DIR, loadTokens } from './lib/fixture';
import { isGatewayConfig } from './lib/gateway';
import type { GatewayConfig } from './lib/gateway';
import { runLoad } from './lib/load';
import type { LoadOptions, LoadResult } from './lib/load';
import { buildLibForBench, killAll, runLoadProcess, startGatewayProcess, startServerProcess } from './lib/procs';
import { runMain } from './lib/entry';
import type { ServerProcess } from './lib/procs';
import { isServerConfig } from './lib/server';
import type { ServerConfig } from './lib/server';
import { f, failedRun, renderSummary, summarise } from './lib/summary';
import type { ConfigSummary } from './lib/summary';

/**
 * `npm run bench`: the middleware against the same setup without it, in two setups.
 *
 * - Served directly: the streaming server (mock model, one `res.write` per event) in each configuration, each in
 *   its own process, at 64 and 512 streams.
 * - Through a proxy gateway: an upstream process streams the same events; a gateway process (Express 5 +
 *   http-proxy-middleware 3) forwards them, bare or with `dynamoMetrics()`, at 64 and 256 streams. CPU is the
 *   gateway's, per event the upstream wrote.
 *
 * Each run is loaded by a fresh client process; configurations alternate over rounds so that drift on a noisy
 * machine hits all of them; ratios are taken within a round, and the median over rounds is reported.
 *
 * Options: BENCH_SECONDS (window, default 2.5), BENCH_WARMUP (default 1), BENCH_ROUNDS (default 4),
 * BENCH_SETUPS (default direct,gateway), BENCH_CONCURRENCY (served directly, default 64,512),
 * BENCH_GATEWAY_CONCURRENCY (default 64,256), BENCH_CONFIGS (served directly, default bare,dynamo,promBundle,both;
 * also dynamoOtel: dynamo with a real OpenTelemetry SDK `meter`, passthrough, hook, and spin: a write wrapper that spends BENCH_SPIN_NS of CPU per write, default 300), BENCH_OUT (default
 * bench/results/bench.json), BENCH_YIELD_EVERY (server, default 4), BENCH_PIN=0 (do not pin the measured process to
 * a CPU of its own; see `pin` in lib/procs.ts), BENCH_SOCKET_WRITES=1 (each server prints how many `res.write`
 * calls its socket writes carry; see lib/socket-writes.ts).
 * Flags: --quick (a few-second smoke: 16 streams, 1 round of 1 s, client in this process), --dist (lib from a tsc
 * build), --baseline <git ref> (adds `dynamoBaseline`, lib/ as it is at that ref, to both setups: a change and its
 * baseline in one run; BENCH_BASELINE_LIB_DIR names an already built one instead). The default run takes about
 * 6 minutes, longer on a loaded machine.
 */

export const SETUPS = ['direct', 'gateway'] as const;
export type Setup = (typeof SETUPS)[number];

export interface BenchSettings {
  seconds: number;
  warmupSeconds: number;
  rounds: number;
  setups: Setup[];
  concurrencies: number[];
  gatewayConcurrencies: number[];
  configs: ServerConfig[];
  gatewayConfigs: GatewayConfig[];
  out: string;
  quick: boolean;
  /** `--dist`: the servers load lib/ compiled by tsc (what users run) instead of the TypeScript source via tsx. */
  dist: boolean;
  /** `--baseline <ref>`: the git ref whose lib/ `dynamoBaseline` runs. */
  baseline: string | undefined;
}

/** One load run as recorded: the client's figures plus what the machine was doing. */
export type RunRecord = LoadResult & { round: number; loadAvg1: number };

export type SetupResults = Record<string, { summary: ConfigSummary[]; runs: Record<string, RunRecord[]> }>;

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
    /** Every server, gateway and upstream process the run started (all stopped when it ends). */
    processes: { config: string; pid: number | undefined }[];
  };
  /** Served directly, by concurrency. */
  concurrency: SetupResults;
  /** Through a proxy gateway, by concurrency; `chunks` there are events, CPU is the gateway's. */
  gateway: SetupResults;
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

function concurrencyList(value: string, fallback: number): number[] {
  const list = value
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0 && n <= 10_000);
  return list.length > 0 ? list : [fallback];
}

function flagValue(argv: readonly string[], name: string): string | undefined {
  const at = argv.indexOf(name);
  return at === -1 ? undefined : argv[at + 1];
}

export function settingsFrom(argv: readonly string[], env: NodeJS.ProcessEnv): BenchSettings {
  const quick = argv.includes('--quick');
  const baseline = flagValue(argv, '--baseline');
  const withBaseline = baseline !== undefined || (env.BENCH_BASELINE_LIB_DIR ?? '') !== '';
  const configs = (env.BENCH_CONFIGS ?? 'bare,dynamo,promBundle,both').split(',').filter(isServerConfig);
  // bare is the reference of every ratio, so it always runs.
  if (!configs.includes('bare')) configs.unshift('bare');
  if (withBaseline) configs.push('dynamoBaseline');
  const gatewayConfigs: GatewayConfig[] = ['bare', 'dynamo', ...(withBaseline ? (['dynamoBaseline'] as const) : [])];
  const setups = (env.BENCH_SETUPS ?? SETUPS.join(',')).split(',').filter((s): s is Setup => (SETUPS as readonly string[]).includes(s));
  return {
    quick,
    dist: argv.includes('--dist'),
    baseline,
    seconds: numberEnv('BENCH_SECONDS', quick ? 1 : 2.5),
    warmupSeconds: numberEnv('BENCH_WARMUP', quick ? 0.4 : 1),
    rounds: Math.min(50, Math.round(numberEnv('BENCH_ROUNDS', quick ? 1 : 4))),
    setups: setups.length > 0 ? setups : [...SETUPS],
    concurrencies: concurrencyList(env.BENCH_CONCURRENCY ?? (quick ? '16' : '64,512'), 64),
    gatewayConcurrencies: concurrencyList(env.BENCH_GATEWAY_CONCURRENCY ?? (quick ? '16' : '64,256'), 64),
    configs: [...new Set(configs)],
    gatewayConfigs: gatewayConfigs.filter(isGatewayConfig),
    out: env.BENCH_OUT ?? join(RESULTS_DIR, 'bench.json'),
  };
}

/** One setup's servers, already started, under the names its table uses. */
interface SetupRun {
  title: (concurrency: number) => string;
  unit: string;
  concurrencies: number[];
  servers: Map<string, ServerProcess>;
  /** Where events are counted, when the loaded server writes none itself. */
  chunksPort?: number;
}

async function runSetup(setup: SetupRun, settings: BenchSettings, load: (options: LoadOptions) => Promise<LoadResult>, log: (line: string) => void): Promise<SetupResults> {
  const results: SetupResults = {};
  const configs = [...setup.servers.keys()];
  const options = (port: number, concurrency: number): LoadOptions => ({
    port,
    concurrency,
    warmupMs: settings.warmupSeconds * 1000,
    durationMs: settings.seconds * 1000,
    drainMs: settings.quick ? 500 : 2000,
    ...(setup.chunksPort === undefined ? {} : { chunksPort: setup.chunksPort }),
  });
  for (const concurrency of setup.concurrencies) {
    const runs: Record<string, RunRecord[]> = {};
    if (!settings.quick) {
      // One unrecorded pass per server at this concurrency: JIT tiers, pools and socket buffers settle first.
      for (const config of configs) {
        const server = setup.servers.get(config) as ServerProcess;
        await load({ ...options(server.port, concurrency), warmupMs: 0, durationMs: settings.warmupSeconds * 1000, drainMs: 1000 }).catch(
          (error: unknown) => log(`  warm-up of ${server.config} failed (${String(error)})`),
        );
      }
    }
    for (let round = 0; round < settings.rounds; round++) {
      // Rotating the order stops one configuration from always running first (cold machine) or last.
      const order = configs.map((_, i) => configs[(i + round) % configs.length] as string);
      for (const config of order) {
        const server = setup.servers.get(config) as ServerProcess;
        let result: LoadResult;
        try {
          result = await load(options(server.port, concurrency));
        } catch (error) {
          // One failed run must not lose the others: it becomes a hole (NaN) that the medians skip.
          log(`  c=${concurrency} round ${round + 1} ${server.config}: run failed (${String(error)})`);
          result = failedRun(concurrency);
        }
        const loadAvg1 = loadavg()[0] ?? Number.NaN;
        (runs[config] ??= []).push({ ...result, round, loadAvg1 });
        log(
          `  c=${concurrency} round ${round + 1}/${settings.rounds} ${server.config.padEnd(14)} ` +
            `${f(result.chunksPerSec, 0).padStart(7)} ${setup.unit}s/s  ${f(result.cpuUsPerChunk, 2)} µs/${setup.unit}  ` +
            `TTFT p50 ${f(result.ttftP50Ms, 1)} ms  server CPU ${f(result.serverCpuUtilisation, 2)}  ` +
            `client CPU ${f(result.clientCpuUtilisation, 2)}  load ${f(loadAvg1, 1)}` +
            `${result.errors > 0 ? `  errors ${result.errors}` : ''}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    const summary = summarise(configs, runs);
    results[String(concurrency)] = { summary, runs };
    log('');
    log(renderSummary(setup.title(concurrency), summary, setup.unit));
    log('');
  }
  return results;
}

export async function runBench(settings: BenchSettings, log: (line: string) => void = console.log): Promise<BenchReport> {
  const tokens = await loadTokens();
  if (settings.dist) process.env.BENCH_LIB_DIR = buildLibForBench();
  if (settings.baseline !== undefined) process.env.BENCH_BASELINE_LIB_DIR = buildLibForBench(settings.baseline);
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
      processes: [],
    },
    concurrency: {},
    gateway: {},
  };
  // The client always runs outside the servers' processes; --quick keeps it in this one (still a separate process
  // from every server) to spare a process start per run, which is most of a smoke run's time.
  const load = (options: LoadOptions): Promise<LoadResult> => (settings.quick ? runLoad(options) : runLoadProcess(options));
  const started: ServerProcess[] = [];
  const start = async (server: Promise<ServerProcess>): Promise<ServerProcess> => {
    const running = await server;
    started.push(running);
    report.meta.processes.push({ config: running.config, pid: running.child.pid });
    return running;
  };
  try {
    if (settings.setups.includes('direct')) {
      // Servers start together and stay up for the setup's whole run; each waits idle while another one is loaded.
      const servers = new Map<string, ServerProcess>();
      for (const server of await Promise.all(settings.configs.map((config) => start(startServerProcess(config))))) servers.set(server.config, server);
      log('served directly');
      report.concurrency = await runSetup(
        { title: (c) => `${c} concurrent streams`, unit: 'chunk', concurrencies: settings.concurrencies, servers },
        settings,
        load,
        log,
      );
    }
    if (settings.setups.includes('gateway')) {
      const upstream = await start(startServerProcess('bare', { role: 'load' }).then((server) => ({ ...server, config: 'upstream' })));
      const servers = new Map<string, ServerProcess>();
      const gateways = await Promise.all(settings.gatewayConfigs.map((config) => start(startGatewayProcess(config, upstream.port))));
      settings.gatewayConfigs.forEach((config, i) => servers.set(config, gateways[i] as ServerProcess));
      log('through a proxy gateway (Express 5 + http-proxy-middleware 3, upstream in its own process)');
      report.gateway = await runSetup(
        {
          title: (c) => `${c} concurrent streams through a proxy gateway`,
          unit: 'event',
          concurrencies: settings.gatewayConcurrencies,
          servers,
          chunksPort: upstream.port,
        },
        settings,
        load,
        log,
      );
    }
  } finally {
    await Promise.all(started.map((server) => server.stop()));
  }
  mkdirSync(dirname(settings.out), { recursive: true });
  writeFileSync(settings.out, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${settings.out}`);
  return report;
}

if (require.main === module) {
  const settings = settingsFrom(process.argv.slice(2), process.env);
  const runs =
    (settings.setups.includes('direct') ? settings.concurrencies.length * settings.configs.length : 0) +
    (settings.setups.includes('gateway') ? settings.gatewayConcurrencies.length * settings.gatewayConfigs.length : 0);
  const budget = runs * settings.rounds * (settings.seconds + settings.warmupSeconds + 2) + runs * (settings.warmupSeconds + 1.5);
  const { commit, dirty } = libVersion();
  console.log(
    `bench: ${settings.setups.join(' + ')}; served directly: ${settings.configs.join(', ')} at ${settings.concurrencies.join(', ')} streams; ` +
      `gateway: ${settings.gatewayConfigs.join(', ')} at ${settings.gatewayConcurrencies.join(', ')} streams; ` +
      `${settings.rounds} round(s) of ${settings.seconds} s after ${settings.warmupSeconds} s warm-up (about ${Math.ceil(budget)} s); ` +
      `lib ${commit}${dirty ? ' + uncommitted changes' : ''} from ${settings.dist ? 'a tsc build' : 'TypeScript source via tsx'}` +
      `${settings.baseline === undefined ? '' : `, baseline ${settings.baseline}`}; node ${process.version}, ${cpus().length} CPUs`,
  );
  const startedAt = Date.now();
  runMain(async () => {
    await runBench(settings);
    console.log(`done in ${Math.round((Date.now() - startedAt) / 1000)} s`);
  }, killAll);
}
