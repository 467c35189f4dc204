import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchReport } from '../../bench/run';
import type { ConfigSummary } from '../../bench/lib/summary';

// A few seconds of the real side-by-side bench (`npm run bench -- --quick`), as a child process with its own
// servers, gateways, upstream and load generator: proves the harness runs both setups (served directly, and through
// a proxy gateway in front of an upstream process), yields complete, finite tables, and stops every process it
// started. Figures are not judged.
const ROOT = join(__dirname, '..', '..');
const CHILD_TIMEOUT_MS = 70_000;

function runQuickBench(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', pathToFileURL(require.resolve('tsx')).href, join(ROOT, 'bench', 'run.ts'), '--quick'],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          BENCH_OUT: out,
          BENCH_CONCURRENCY: '8',
          BENCH_GATEWAY_CONCURRENCY: '8',
          BENCH_SECONDS: '0.8',
          BENCH_WARMUP: '0.2',
          BENCH_ROUNDS: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    // The harness kills its own servers on SIGTERM; SIGKILL is the last resort if it hangs.
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    }, CHILD_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function expectFiniteTable(summary: readonly ConfigSummary[], configs: string[]): void {
  expect(summary.map((s) => s.config).sort()).toEqual(configs);
  for (const row of summary) {
    expect(row.chunksPerSec).toBeGreaterThan(0);
    expect(row.streamsPerSec).toBeGreaterThan(0);
    expect(row.errors).toBe(0);
    for (const value of [row.cpuUsPerChunk, row.addedCpuUsPerChunk, row.addedUserUsPerChunk, row.cpuBoundRatio, ...Object.values(row.ratio)]) {
      expect(Number.isFinite(value)).toBe(true);
    }
    if (row.config === 'bare') expect(row.ratio.chunksPerSec).toBe(1);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('bench harness (smoke)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs both setups, reports finite ratios to bare, and stops every process it started', async () => {
    const out = join(dir, 'bench.json');
    const { code, output } = await runQuickBench(out);
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });

    const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
    expect(report.concurrency['8']).toBeDefined();
    expectFiniteTable(report.concurrency['8']?.summary ?? [], ['bare', 'both', 'dynamo', 'promBundle']);
    expect(output).toContain('8 concurrent streams');

    // Through the gateway: events are counted at the upstream, CPU is the gateway's; every stream got through.
    const gateway = report.gateway['8'];
    expect(gateway).toBeDefined();
    expectFiniteTable(gateway?.summary ?? [], ['bare', 'dynamo']);
    for (const runs of Object.values(gateway?.runs ?? {})) for (const run of runs) expect(run.serverChunks).toBeGreaterThan(0);
    expect(output).toContain('8 concurrent streams through a proxy gateway');

    const started = report.meta.processes;
    expect(started.map((p) => p.config).sort()).toEqual(['bare', 'both', 'dynamo', 'gateway bare', 'gateway dynamo', 'promBundle', 'upstream']);
    expect(started.filter((p) => p.pid !== undefined && isRunning(p.pid))).toEqual([]);
  }, 90_000);
});
