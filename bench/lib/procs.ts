import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import type { LoadOptions, LoadResult } from './load';
import type { GatewayConfig } from './gateway';
import type { CpuSnapshot, MemSnapshot, ServerConfig } from './server';

/**
 * Child-process plumbing shared by the bench commands: fork a TypeScript entry under tsx with IPC, wait for a reply
 * with a deadline, and kill every child on the way out, whatever the way out is.
 */

const children = new Set<ChildProcess>();
const TSX_LOADER = pathToFileURL(require.resolve('tsx')).href;

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

let exitHooksInstalled = false;
function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

export function forkTs(file: string, args: string[], extraExecArgv: string[] = []): ChildProcess {
  installExitHooks();
  const child = fork(join(__dirname, file), args, {
    cwd: join(__dirname, '..', '..'),
    execArgv: [...extraExecArgv, '--import', TSX_LOADER],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * On a machine with at least two CPUs the process under measurement (a server or gateway) runs alone on the last
 * CPU, and the others (client, upstream) share the rest: the scheduler never moves it between cores or puts the
 * client on its core, which is most of what moves a run's figures from one round to the next. BENCH_PIN=0 turns it
 * off; without `taskset` (util-linux) the processes run unpinned.
 */
export type CpuRole = 'measured' | 'load';

let pinningFailed = false;

function pin(child: ChildProcess, role: CpuRole): void {
  const count = cpus().length;
  if (process.env.BENCH_PIN === '0' || pinningFailed || count < 2 || child.pid === undefined) return;
  const list = role === 'measured' ? String(count - 1) : `0-${count - 2}`;
  try {
    execFileSync('taskset', ['-a', '-c', '-p', list, String(child.pid)], { stdio: 'ignore', timeout: 10_000 });
  } catch (error) {
    pinningFailed = true;
    console.warn(`bench: processes run unpinned (taskset: ${(error as Error).message})`);
  }
}

export function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Waits for the first IPC message matching `accept`, or rejects at the deadline or when the child dies. */
function awaitMessage<T>(child: ChildProcess, accept: (m: unknown) => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: unknown): void => {
      let value: T | undefined;
      try {
        value = accept(message);
      } catch (error) {
        cleanup();
        reject(error as Error);
        return;
      }
      if (value === undefined) return;
      cleanup();
      resolve(value);
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what}: child exited (code ${String(code)}, signal ${String(signal)})`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export interface ServerProcess {
  /** What runs there: a server config, or `gateway <config>`. */
  config: string;
  port: number;
  child: ChildProcess;
  mem(): Promise<MemSnapshot>;
  cpu(): Promise<CpuSnapshot>;
  release(): void;
  /** Starts the V8 profiler in the server; `profileStop` writes the window's `.cpuprofile` to `file`. */
  profileStart(): Promise<void>;
  profileStop(file: string): Promise<void>;
  /** Writes a V8 heap snapshot of the server (which collects garbage first) to `file`. */
  heapSnapshot(file: string): Promise<void>;
  stop(): Promise<void>;
}

export function startServerProcess(
  config: ServerConfig,
  options: { exposeGc?: boolean; execArgv?: string[]; role?: CpuRole } = {},
): Promise<ServerProcess> {
  return startProcess('server.ts', [config], config, [...(options.exposeGc ? ['--expose-gc'] : []), ...(options.execArgv ?? [])], options.role);
}

/** A proxy gateway in front of the server listening on `upstreamPort`. */
export function startGatewayProcess(config: GatewayConfig, upstreamPort: number): Promise<ServerProcess> {
  return startProcess('gateway.ts', [config, String(upstreamPort)], `gateway ${config}`, [], 'measured');
}

async function startProcess(file: string, args: string[], config: string, execArgv: string[] = [], role: CpuRole = 'measured'): Promise<ServerProcess> {
  const child = forkTs(file, args, execArgv);
  let nextId = 1;
  const ask = <T>(type: 'mem' | 'cpu' | 'profile-start' | 'profile-stop' | 'heap-snapshot', extra: object = {}): Promise<T> => {
    const id = nextId++;
    child.send({ type, id, ...extra });
    return awaitMessage(
      child,
      (m) => {
        const msg = m as { type?: string; id?: number; error?: string } & Record<string, unknown>;
        if (msg.type !== type || msg.id !== id) return undefined;
        if (msg.error !== undefined) throw new Error(`${config} ${type}: ${msg.error}`);
        return (msg[type] ?? msg) as T;
      },
      30_000,
      `${config} ${type}`,
    );
  };
  let port: number;
  try {
    port = await awaitMessage(
      child,
      (m) => {
        const msg = m as { type?: string; port?: number };
        return msg.type === 'ready' && typeof msg.port === 'number' ? msg.port : undefined;
      },
      60_000,
      `server ${config} start`,
    );
    pin(child, role);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return {
    config,
    port,
    child,
    mem: () => ask<MemSnapshot>('mem'),
    cpu: () => ask<CpuSnapshot>('cpu'),
    release: () => child.send({ type: 'release' }),
    profileStart: async () => {
      await ask('profile-start');
    },
    profileStop: async (file) => {
      await ask('profile-stop', { file });
    },
    heapSnapshot: async (file) => {
      await ask('heap-snapshot', { file });
    },
    stop: () => stopChild(child),
  };
}

/** IPC carries JSON, where NaN (a percentile of no samples) arrives as null; turn it back so it never counts as 0. */
function revive(result: LoadResult): LoadResult {
  const copy = { ...result } as unknown as Record<string, unknown>;
  for (const key of Object.keys(copy)) if (copy[key] === null) copy[key] = Number.NaN;
  return copy as unknown as LoadResult;
}

/** One load run in a fresh client process; the deadline covers warm-up, window and drain with room to spare. */
export async function runLoadProcess(options: LoadOptions): Promise<LoadResult> {
  const child = forkTs('load.ts', []);
  try {
    pin(child, 'load');
    child.send(options);
    const deadline = options.warmupMs + options.durationMs + (options.drainMs ?? 3000) + 30_000;
    return await awaitMessage(
      child,
      (m) => {
        const msg = m as { type?: string; result?: LoadResult; message?: string };
        if (msg.type === 'error') throw new Error(`load generator: ${String(msg.message)}`);
        return msg.type === 'result' && msg.result !== undefined ? revive(msg.result) : undefined;
      },
      deadline,
      'load generator',
    );
  } finally {
    await stopChild(child);
  }
}

/**
 * Compiles lib/ with the package's own build settings into node_modules/.cache (never the shared dist/, and
 * outside what `tsc -p .` and eslint look at), so that a bench can load what `npm run build` ships; returns the
 * directory for BENCH_LIB_DIR. prom-client and express still resolve from the project's node_modules.
 *
 * With a git ref, compiles lib/ as it is at that ref instead (extracted with `git archive`, the working tree
 * untouched): the `dynamoBaseline` build that `--baseline <ref>` compares against.
 */
export function buildLibForBench(ref?: string): string {
  const root = join(__dirname, '..', '..');
  const cache = join(root, 'node_modules', '.cache', 'express-dynamo-metrics-bench');
  let project = join(root, 'tsconfig.build.json');
  let outDir = join(cache, 'dist');
  if (ref !== undefined) {
    const source = join(cache, 'baseline-src');
    outDir = join(cache, 'baseline-dist');
    rmSync(source, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
    mkdirSync(source, { recursive: true });
    const archive = execFileSync('git', ['archive', '--format=tar', ref, 'lib', 'tsconfig.json', 'tsconfig.build.json'], {
      cwd: root,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    execFileSync('tar', ['-x', '-C', source], { input: archive, timeout: 60_000 });
    project = join(source, 'tsconfig.build.json');
  }
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', project, '--outDir', outDir], {
    cwd: root,
    stdio: 'inherit',
    timeout: 120_000,
  });
  return outDir;
}

export { killAll };
