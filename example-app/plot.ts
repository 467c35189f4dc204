import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderTokensPerSecondPng } from './chart';
import { rangeQuery } from './prom-api';

export interface PlotOptions {
  start: number;
  end: number;
  out: string;
  /** Range of the rate() window, e.g. `5s`. */
  window: string;
}

export const DEFAULT_PNG = resolve(__dirname, '..', 'docs', 'tokens-per-second.png');

/** Queries tokens/s per model over [start, end] and writes the chart as a PNG. */
export async function plotTokensPerSecond(prometheusUrl: string, options: PlotOptions): Promise<void> {
  const query = `sum by (model) (rate(dynamo_frontend_output_tokens_total[${options.window}]))`;
  const series = await rangeQuery(prometheusUrl, query, { start: options.start, end: options.end, stepSeconds: 1 });
  if (series.length === 0) {
    throw new Error(`${prometheusUrl} has no dynamo_frontend_output_tokens_total in that time range: is it scraping the example?`);
  }
  const png = await renderTokensPerSecondPng(series, {
    title: 'Live output tokens/s per model',
    subtitle: query,
  });
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(options.out, png);
  console.log(`wrote ${options.out} (${series.length} models, ${Math.round(options.end - options.start)} s)`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      prometheus: { type: 'string' },
      since: { type: 'string' },
      out: { type: 'string' },
      window: { type: 'string' },
      demo: { type: 'boolean' },
      duration: { type: 'string' },
    },
  });
  const out = resolve(values.out ?? DEFAULT_PNG);
  if (values.demo) {
    const { runDemo } = await import('./demo');
    await runDemo({ out, durationSeconds: Number(values.duration ?? 40) });
    return;
  }
  const end = Date.now() / 1000;
  await plotTokensPerSecond(values.prometheus ?? process.env.PROMETHEUS_URL ?? 'http://127.0.0.1:9090', {
    start: end - Number(values.since ?? 120),
    end,
    out,
    window: values.window ?? '5s',
  });
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
