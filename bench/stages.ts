import { performance } from 'node:perf_hooks';
import { loadFixture } from './lib/fixture';
import { buildStages, fixtureFor } from './lib/stage-list';
import type { Stage } from './lib/stage-list';
import { formatTable, median } from './lib/stats';
import { runMain } from './lib/entry';
import { buildLibForBench } from './lib/procs';

/**
 * `npm run bench:stages`: the per-chunk cost of each stage of the hot path, measured in-process over the same
 * 304-event response the side-by-side bench streams (role, 300 one-token chunks, finish, usage, `[DONE]`).
 *
 * Every stage runs over whole responses (fresh per-response objects, as the middleware creates them), so
 * per-request work is amortised over the events exactly as in production; figures are ns per event, the median of
 * several timed repetitions after warm-up. "Standard" rows measure the building blocks the lib could use; "lib"
 * rows call the lib's own modules, so a change there shows up here directly.
 *
 * The pipeline rows read the response in three write shapes: one string per event (a handler), one Buffer per event
 * (a proxy that keeps up) and proxy-shaped Buffers (events merged and cut, as a proxy that lags writes them).
 * `STAGES_ONLY=<text>` keeps the rows whose group or name contains the text. `--dist`: the whole-path rows (the
 * response reader and the public middleware) run lib/ compiled by tsc, what users run; through tsx every imported
 * binding is a getter, which inflates them.
 *
 * Time is the process's CPU time, not wall time: on a shared 2-core machine this process often gets half a core,
 * and wall time then measures the neighbours rather than the stage.
 */

interface Measured {
  group: string;
  name: string;
  nsPerEvent: number;
  minNsPerEvent: number;
}

const REPETITIONS = Number(process.env.STAGES_REPETITIONS) || 9;
const TARGET_MS = Number(process.env.STAGES_TARGET_MS) || 60;
const SECTION_TIMEOUT_MS = 20_000;
const TOTAL_TIMEOUT_MS = 120_000;

let blackhole = 0;

/** How many responses make one repetition last about TARGET_MS. */
function calibrate(stage: Stage): number {
  const startedAt = performance.now();
  for (let i = 0; i < 3; i++) blackhole += stage.run(20);
  let responses = 20;
  for (let i = 0; i < 12; i++) {
    const t0 = process.hrtime.bigint();
    blackhole += stage.run(responses);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= TARGET_MS / 4 || performance.now() - startedAt > SECTION_TIMEOUT_MS) {
      return Math.max(1, Math.round((responses * TARGET_MS) / Math.max(ms, 0.001)));
    }
    responses *= 4;
  }
  return responses;
}

/**
 * Repetitions go round-robin over all stages: on a noisy machine a slow spell then hits every stage a little
 * instead of one stage a lot, so the ranking survives even when absolute figures drift.
 */
function measureAll(stages: readonly Stage[], eventsPerResponse: number, log: (line: string) => void): Measured[] {
  const counts = stages.map((stage) => calibrate(stage));
  const samples: number[][] = stages.map(() => []);
  const startedAt = performance.now();
  for (let rep = 0; rep < REPETITIONS && performance.now() - startedAt < TOTAL_TIMEOUT_MS; rep++) {
    stages.forEach((stage, i) => {
      const responses = counts[i] as number;
      const t0 = process.cpuUsage();
      blackhole += stage.run(responses);
      const cpu = process.cpuUsage(t0);
      (samples[i] as number[]).push(((cpu.user + cpu.system) * 1000) / (responses * eventsPerResponse));
    });
    log(`  repetition ${rep + 1}/${REPETITIONS} done`);
  }
  return stages.map((stage, i) => ({
    group: stage.group,
    name: stage.name,
    nsPerEvent: median(samples[i] as number[]),
    minNsPerEvent: Math.min(...(samples[i] as number[])),
  }));
}

export interface StagesReport {
  date: string;
  node: string;
  eventsPerResponse: number;
  stages: Measured[];
}

export async function runStages(log: (line: string) => void = console.log): Promise<StagesReport> {
  const fixture = await loadFixture();
  const fx = fixtureFor(fixture.events, fixture.model);
  const only = process.env.STAGES_ONLY;
  const stages = (await buildStages(fx)).filter((stage) => only === undefined || `${stage.group} ${stage.name}`.includes(only));
  const results = measureAll(stages, fx.events.length, log);
  return { date: new Date().toISOString(), node: process.version, eventsPerResponse: fx.events.length, stages: results };
}

export function renderStages(report: StagesReport): string {
  const baseline = report.stages.find((s) => s.name.startsWith('loop over events'))?.nsPerEvent ?? 0;
  return formatTable(
    ['group', 'stage', 'ns/event (median)', 'minus loop baseline', 'fastest rep'],
    report.stages.map((s) => [
      s.group,
      s.name,
      s.nsPerEvent.toFixed(0),
      s.name.startsWith('loop over events') ? '–' : (s.nsPerEvent - baseline).toFixed(0),
      s.minNsPerEvent.toFixed(0),
    ]),
    `Per-event cost of each stage (${report.eventsPerResponse} events per response, node ${report.node})`,
  );
}

if (require.main === module) {
  runMain(async () => {
    if (process.argv.includes('--dist')) process.env.BENCH_LIB_DIR = buildLibForBench();
    const report = await runStages();
    console.log('');
    console.log(renderStages(report));
    if (blackhole === 42) console.log('');
  });
}
