import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BenchReport } from '../bench/run';

// A few seconds of the real side-by-side bench (`npm run bench -- --quick`), as a child process with its own
// servers and load generator: proves the harness runs and yields a complete, finite table. Figures are not judged.
const ROOT = join(__dirname, '..');
const CHILD_TIMEOUT_MS = 40_000;

function runQuickBench(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', pathToFileURL(require.resolve('tsx')).href, join(ROOT, 'bench', 'run.ts'), '--quick'],
      {
        cwd: ROOT,
        env: { ...process.env, BENCH_OUT: out, BENCH_CONCURRENCY: '8', BENCH_SECONDS: '0.8', BENCH_WARMUP: '0.2', BENCH_ROUNDS: '1' },
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

describe('bench harness (smoke)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every configuration and reports finite ratios to bare', async () => {
    const out = join(dir, 'bench.json');
    const { code, output } = await runQuickBench(out);
    expect({ code, output: code === 0 ? '' : output }).toEqual({ code: 0, output: '' });

    const report = JSON.parse(readFileSync(out, 'utf8')) as BenchReport;
    const table = report.concurrency['8'];
    expect(table).toBeDefined();
    const summary = table?.summary ?? [];
    expect(summary.map((s) => s.config).sort()).toEqual(['bare', 'both', 'dynamo', 'promBundle']);
    for (const row of summary) {
      expect(row.chunksPerSec).toBeGreaterThan(0);
      expect(row.streamsPerSec).toBeGreaterThan(0);
      expect(row.errors).toBe(0);
      for (const value of [row.cpuUsPerChunk, row.addedCpuUsPerChunk, row.addedUserUsPerChunk, row.cpuBoundRatio, ...Object.values(row.ratio)]) {
        expect(Number.isFinite(value)).toBe(true);
      }
      if (row.config === 'bare') expect(row.ratio.chunksPerSec).toBe(1);
    }
    expect(output).toContain('8 concurrent streams');
  }, 60_000);
});
