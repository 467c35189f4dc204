import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadFixture, proxyShaped } from './lib/fixture';
import { pipelineReader } from './lib/pipeline';
import { buildLibForBench } from './lib/procs';
import { formatTable } from './lib/stats';

/**
 * `npx tsx bench/instructions.ts [--dist] [responses] [strings|buffers|proxy…]`: CPU instructions per event of the response
 * reader's whole path (decode, SSE, chunk shape, reader, request state, metric cells), counted by
 * `valgrind --tool=callgrind`. Unlike time, an instruction count does not move when other processes share the CPU,
 * so a change to the hot path can be judged on a busy machine. Each write shape runs twice in its own process, with
 * no responses and with `responses` (default 300) of 304 events; the difference divided by the events is the
 * figure, so start-up and compilation cancel out (V8 runs single-threaded there: its background compiler and GC
 * threads would add noise). Needs valgrind on PATH; takes several minutes per shape.
 */

export const SHAPES = ['strings', 'buffers', 'proxy'] as const;
type Shape = (typeof SHAPES)[number];

const DESCRIPTION: Record<Shape, string> = {
  strings: 'one string write per event (a handler)',
  buffers: 'one Buffer write per event (a proxy that keeps up)',
  proxy: 'Buffer writes of events merged and cut (a proxy that lags)',
};

async function worker(shape: Shape, responses: number): Promise<void> {
  const fixture = await loadFixture();
  const writes = shape === 'strings' ? fixture.events : shape === 'buffers' ? fixture.events.map((e) => Buffer.from(e)) : proxyShaped(fixture.events);
  const dir = process.env.BENCH_LIB_DIR;
  const read = pipelineReader(fixture.model, dir === undefined || dir === '' ? undefined : dir);
  // JIT warm-up happens in both runs, so that only the counted responses differ between them.
  read(writes, 50);
  read(writes, responses);
}

function instructions(shape: Shape, responses: number): number {
  const run = spawnSync(
    'valgrind',
    ['--tool=callgrind', '--callgrind-out-file=/dev/null', process.execPath, '--single-threaded', '--import', pathToFileURL(require.resolve('tsx')).href, __filename, '--worker', shape, String(responses)],
    // tsx's on-disk compile cache would let the second run skip compiling what the first one compiled.
    { cwd: join(__dirname, '..'), encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TSX_DISABLE_CACHE: '1' } },
  );
  const match = /Collected : (\d+)/.exec(run.stderr ?? '');
  if (run.status !== 0 || match === null) throw new Error(`callgrind run failed (status ${String(run.status)}): ${(run.stderr ?? String(run.error)).slice(-2000)}`);
  return Number(match[1]);
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--worker');
  if (at !== -1) {
    await worker(process.argv[at + 1] as Shape, Number(process.argv[at + 2]));
    return;
  }
  const args = process.argv.slice(2).filter((arg) => arg !== '--dist');
  // --dist: the reading path as shipped, a tsc build (through tsx every imported binding is a getter).
  if (process.argv.includes('--dist')) process.env.BENCH_LIB_DIR = buildLibForBench();
  const responses = Number(args[0]) || 300;
  const shapes = SHAPES.filter((shape) => args.length <= 1 || args.slice(1).includes(shape));
  const events = (await loadFixture()).events.length;
  const rows: string[][] = [];
  for (const shape of shapes) {
    const idle = instructions(shape, 0);
    const loaded = instructions(shape, responses);
    const perEvent = (loaded - idle) / (responses * events);
    console.log(`  ${shape}: ${perEvent.toFixed(0)} instructions per event`);
    rows.push([DESCRIPTION[shape], perEvent.toFixed(0)]);
  }
  console.log('');
  console.log(formatTable(['writes', 'instructions per event'], rows, `Response reader, ${responses} responses of ${events} events (callgrind)`));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
