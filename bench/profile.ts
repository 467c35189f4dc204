import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULTS_DIR, loadTokens } from './lib/fixture';
import { buildLibForBench, killAll, runLoadProcess, startServerProcess } from './lib/procs';
import { runMain } from './lib/entry';
import { isServerConfig } from './lib/server';
import type { ServerConfig } from './lib/server';
import { formatTable, median } from './lib/stats';

/**
 * `npx tsx bench/profile.ts [--c 64] [--t 5] [--dist] [--no-inline] [config…]`: where the server's CPU goes per streamed chunk, in situ.
 * Each configuration's server is loaded as in `npm run bench` while the V8 sampling profiler runs in it for the
 * measurement window only; self time is grouped (lib file and function, Node's HTTP stack, Express, GC, syscalls)
 * and divided by the chunks written in the window. Comparing with bare shows what the middleware adds, and where.
 */

const ROOT = join(__dirname, '..');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time in µs per group and per function, idle excluded. */
export interface ProfileSummary {
  totalUs: number;
  groups: Map<string, number>;
  functions: Map<string, number>;
}

function groupOf(frame: ProfileNode['callFrame']): { group: string; fn: string } {
  const name = frame.functionName || '(anonymous)';
  const url = frame.url;
  if (url === '') {
    if (name === '(garbage collector)') return { group: 'GC', fn: name };
    if (name === '(program)' || name === '(root)') return { group: 'V8/native (program)', fn: name };
    return { group: `native: ${name}`, fn: name };
  }
  if (url.startsWith('node:')) {
    const module = url.slice('node:'.length);
    const group = /_http|http_parser|internal\/http/.test(module)
      ? 'node http'
      : /stream/.test(module)
        ? 'node streams'
        : /net|tcp|stream_base/.test(module)
          ? 'node net'
          : /timers|task_queues|process/.test(module)
            ? 'node event loop (timers, ticks)'
            : /events/.test(module)
              ? 'node events'
              : 'node other';
    return { group, fn: `${name} ${url}:${frame.lineNumber + 1}` };
  }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const rel = relative(ROOT, path).split(sep).join('/');
  // A tsc build of lib/ made by --dist (see buildLibForBench): the same files, as JavaScript.
  const distDir = 'node_modules/.cache/express-dynamo-metrics-bench/dist/';
  const libFile = rel.startsWith('lib/') ? rel.slice(4) : rel.startsWith(distDir) ? rel.slice(distDir.length) : undefined;
  if (libFile !== undefined) {
    return { group: `lib/${libFile.replace(/\.(ts|js)$/, '')}`, fn: `${name} (lib/${libFile}:${frame.lineNumber + 1})` };
  }
  if (rel.startsWith('lib/')) return { group: `lib/${rel.slice(4).replace(/\.ts$/, '')}`, fn: `${name} (${rel}:${frame.lineNumber + 1})` };
  if (rel.startsWith('bench/')) return { group: 'mock model (bench/server.ts)', fn: `${name} (${rel})` };
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel);
  if (pkg) {
    const id = pkg[1] as string;
    const group = /^(express|router|body-parser|raw-body|on-finished|finalhandler|type-is|content-type|iconv-lite|qs|send|serve-static|depd|statuses|debug|ms|http-errors|parseurl|media-typer|mime-types|accepts|negotiator|vary|encodeurl|escape-html|etag|fresh|range-parser|path-to-regexp|merge-descriptors|cookie|cookie-signature|proxy-addr|forwarded|ipaddr\.js|utils-merge|content-disposition|bytes|unpipe|ee-first|setprototypeof|inherits|toidentifier|safe-buffer|safer-buffer|destroy|once|wrappy|is-promise|side-channel.*|object-inspect|call-bind.*|get-intrinsic|es-.*|has-.*|hasown|function-bind|gopd|math-intrinsics|dunder-proto|get-proto)$/.test(id)
      ? 'express (+ its deps)'
      : id;
    return { group, fn: `${name} (${id})` };
  }
  return { group: 'other', fn: `${name} ${rel}` };
}

export function summariseProfile(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  // Samples are counted rather than weighted by their time deltas: a delta also spans the time the process was
  // waiting for a core and would all land on whatever ran next, while a missed tick yields one sample, not many.
  const interval = profile.samples.length > 1 ? median(profile.timeDeltas.slice(1)) : 0;
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + interval);
  }
  const groups = new Map<string, number>();
  const functions = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined || node.callFrame.functionName === '(idle)') continue;
    const { group, fn } = groupOf(node.callFrame);
    groups.set(group, (groups.get(group) ?? 0) + us);
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    totalUs += us;
  }
  return { totalUs, groups, functions };
}

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  const value = at === -1 ? Number.NaN : Number(process.argv[at + 1]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

interface Profiled {
  summary: ProfileSummary;
  chunks: number;
  /** Server CPU (user + system) over the window, from process.cpuUsage. */
  cpuUs: number;
  file: string;
}

async function profileConfig(config: ServerConfig, concurrency: number, seconds: number, dir: string): Promise<Profiled> {
  // --no-inline: V8 inlining folds small callees into their callers' self time; without it each function shows up
  // on its own (slower overall, so read the shares, not the sum).
  const server = await startServerProcess(config, { execArgv: process.argv.includes('--no-inline') ? ['--no-turbo-inlining'] : [] });
  try {
    await runLoadProcess({ port: server.port, concurrency, warmupMs: 0, durationMs: 2000, drainMs: 1000 });
    await server.profileStart();
    const before = await server.cpu();
    await runLoadProcess({ port: server.port, concurrency, warmupMs: 300, durationMs: seconds * 1000, drainMs: 1000 });
    const after = await server.cpu();
    const file = join(dir, `${config}-c${concurrency}.cpuprofile`);
    await server.profileStop(file);
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const cpuUs = after.userUs + after.systemUs - (before.userUs + before.systemUs);
    return { summary: summariseProfile(profile), chunks: after.chunks - before.chunks, cpuUs, file };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  await loadTokens();
  if (process.argv.includes('--dist')) process.env.BENCH_LIB_DIR = buildLibForBench();
  const concurrency = flag('c', 64);
  const seconds = flag('t', 5);
  const named = process.argv.slice(2).filter(isServerConfig);
  const configs: ServerConfig[] = named.length > 0 ? named : ['bare', 'dynamo'];
  if (!configs.includes('bare')) configs.unshift('bare');
  const dir = join(RESULTS_DIR, 'profiles');
  mkdirSync(dir, { recursive: true });
  const results = new Map<ServerConfig, Profiled>();
  for (const config of configs) {
    const result = await profileConfig(config, concurrency, seconds, dir);
    results.set(config, result);
    console.log(
      `  ${config}: ${result.chunks} chunks, ${(result.cpuUs / result.chunks).toFixed(2)} µs CPU per chunk, ` +
        `${(result.summary.totalUs / result.chunks).toFixed(2)} µs sampled (${result.file})`,
    );
  }
  // Sample shares are turned into CPU µs per chunk with the CPU time the server really used in the window.
  const scale = (r: Profiled): number => (r.summary.totalUs > 0 ? r.cpuUs / r.summary.totalUs : 0);
  const perChunk = (config: ServerConfig, group: string): number => {
    const r = results.get(config) as Profiled;
    return ((r.summary.groups.get(group) ?? 0) * scale(r)) / r.chunks;
  };
  const allGroups = new Set<string>();
  for (const r of results.values()) for (const g of r.summary.groups.keys()) allGroups.add(g);
  const others = configs.filter((c) => c !== 'bare');
  const rows = [...allGroups]
    .map((group) => ({ group, values: configs.map((c) => perChunk(c, group)) }))
    .filter((row) => row.values.some((v) => v >= 0.02))
    .sort((a, b) => Math.max(...b.values) - Math.max(...a.values));
  const table = formatTable(
    ['where (self time)', ...configs.map((c) => `${c} µs/chunk`), ...others.map((c) => `${c} − bare`)],
    [
      ...rows.map((row) => [
        row.group,
        ...row.values.map((v) => v.toFixed(2)),
        ...others.map((c) => {
          const d = perChunk(c, row.group) - perChunk('bare', row.group);
          return `${d >= 0 ? '+' : ''}${d.toFixed(2)}`;
        }),
      ]),
      [
        'total server CPU (process.cpuUsage)',
        ...configs.map((c) => {
          const r = results.get(c) as Profiled;
          return (r.cpuUs / r.chunks).toFixed(2);
        }),
        ...others.map((c) => {
          const r = results.get(c) as Profiled;
          const b = results.get('bare') as Profiled;
          const d = r.cpuUs / r.chunks - b.cpuUs / b.chunks;
          return `${d >= 0 ? '+' : ''}${d.toFixed(2)}`;
        }),
      ],
    ],
    `Server CPU µs per chunk by where it is spent (${concurrency} streams, ${seconds} s; V8 sampling profiler, self time scaled to CPU time)`,
  );
  console.log(`\n${table}\n`);
  for (const config of others) {
    const r = results.get(config) as Profiled;
    const top = [...r.summary.functions]
      .filter(([fn]) => fn.includes('lib/'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 15);
    console.log(`Top lib functions in ${config} (self CPU µs per chunk):`);
    for (const [fn, us] of top) console.log(`  ${((us * scale(r)) / r.chunks).toFixed(3).padStart(7)}  ${fn}`);
    console.log('');
  }
  const out = join(RESULTS_DIR, 'profile.json');
  writeFileSync(
    out,
    `${JSON.stringify(
      Object.fromEntries(
        [...results].map(([c, r]) => [
          c,
          { chunks: r.chunks, cpuUs: r.cpuUs, sampledUs: r.summary.totalUs, groups: Object.fromEntries(r.summary.groups), functions: Object.fromEntries(r.summary.functions) },
        ]),
      ),
      null,
      2,
    )}\n`,
  );
  console.log(`wrote ${out}`);
}

if (require.main === module) {
  runMain(main, killAll);
}
