import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface PrometheusServer {
  url: string;
  /** Stops the server (SIGTERM, then SIGKILL) and deletes its data directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** `host:port` of the app to scrape. */
  target: string;
  scrapeIntervalSeconds?: number;
  /** Port for Prometheus' own API; a free one by default. */
  port?: number;
}

/** Path of an executable on PATH, or undefined. */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Throws a message that says how to install Prometheus when `prometheus` or `promtool` is missing. */
export function requirePrometheus(): { prometheus: string; promtool: string } {
  const prometheus = findExecutable('prometheus');
  const promtool = findExecutable('promtool');
  if (prometheus === undefined || promtool === undefined) {
    throw new Error(
      `${prometheus === undefined ? 'prometheus' : 'promtool'} is not on PATH. Install Prometheus ` +
        '(Debian/Ubuntu: `apt-get install -y prometheus`; else unpack the release from prometheus.io/download and ' +
        'add it to PATH), then run again.',
    );
  }
  return { prometheus, promtool };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function scrapeConfig(target: string, scrapeIntervalSeconds: number): string {
  return [
    'global:',
    `  scrape_interval: ${scrapeIntervalSeconds}s`,
    `  evaluation_interval: ${scrapeIntervalSeconds}s`,
    'scrape_configs:',
    '  - job_name: express-dynamo-metrics-example',
    `    scrape_timeout: ${scrapeIntervalSeconds}s`,
    '    static_configs:',
    `      - targets: ['${target}']`,
    '',
  ].join('\n');
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with code ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/-/ready`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`prometheus was not ready after ${timeoutMs} ms:\n${output()}`);
}

/** A throwaway Prometheus on 127.0.0.1 with its own data directory, scraping one target. */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const { prometheus } = requirePrometheus();
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'edm-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, scrapeConfig(options.target, options.scrapeIntervalSeconds ?? 1));
  const child = spawn(
    prometheus,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const keep = (piece: Buffer) => {
    log = (log + piece.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // If the caller crashes before stop(), the child must not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited(child);
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    })());

  const url = `http://127.0.0.1:${port}`;
  try {
    await waitReady(url, child, () => log, 20_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}
