import type { LoadResult } from './load';
import { formatTable, median } from './stats';

/**
 * Turns the rounds of a side-by-side run into its table: every ratio is taken within a round (against that round's
 * bare run), then the median over rounds is reported, so that drift on a noisy machine cancels out.
 */

export interface ConfigSummary {
  config: string;
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

export function failedRun(concurrency: number): LoadResult {
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

export function summarise(configs: readonly string[], runs: Record<string, LoadResult[]>): ConfigSummary[] {
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

export const f = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');

/** `unit` is what CPU is divided by: a chunk (one write of one event) when served directly, an event through a gateway. */
export function renderSummary(caption: string, summary: readonly ConfigSummary[], unit = 'chunk'): string {
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
      `${unit}s/s (×bare)`,
      `server CPU µs/${unit}`,
      'CPU-bound ×bare',
      `added µs/${unit}`,
      `added user µs/${unit}`,
      'TTFT p50 ms (×bare)',
      'TTFT p99 ms (×bare)',
      'server CPU',
    ],
    rows,
    caption,
  );
}

