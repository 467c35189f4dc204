import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderTokensPerSecondPng } from './chart';
import { rangeQuery } from './prom-api';
import { rootCause } from './root-cause';

export interface PlotOptions {
  start: number;
  end: number;
  out: string;
  /** Range of the rate() window, e.g. `5s`. */
  window: string;
}

/** The picture the README shows; rewritten only when asked for with `--out`. */
export const README_PNG = resolve(__dirname, '..', 'docs', 'tokens-per-second.png');

/** A new file in the working directory, named after the time, so a plot never replaces an earlier one. */
export function defaultOutput(now: Date = new Date(), dir: string = process.cwd()): string {
  const stamp = now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
  return resolve(dir, `tokens-per-second-${stamp}.png`);
}

/** What to do when nothing answers at the Prometheus URL: `example:plot` needs one that scrapes the example. */
export function prometheusUnreachable(prometheusUrl: string, cause: unknown): Error {
  return new Error(
    [
      `could not reach Prometheus at ${prometheusUrl} (${rootCause(cause)}).`,
      'example:plot draws tokens/s from a Prometheus that scrapes the example. Either:',
      '  - run `npm run example:plot -- --demo`: it starts the example, a private Prometheus and the load itself; or',
      '  - start Prometheus on the example (`prometheus --config.file=example-app/prometheus.yml`) and pass',
      '    `--prometheus <url>` if it is not on http://127.0.0.1:9090.',
      'Both need the prometheus binary: `apt-get install -y prometheus` (Debian/Ubuntu), or the release from',
      'prometheus.io/download on PATH.',
    ].join('\n'),
  );
}

/** Queries tokens/s per model over [start, end] and writes the chart as a PNG. */
export async function plotTokensPerSecond(prometheusUrl: string, options: PlotOptions): Promise<void> {
  const query = `sum by (model) (rate(dynamo_frontend_output_tokens_total[${options.window}]))`;
  const series = await rangeQuery(prometheusUrl, query, { start: options.start, end: options.end, stepSeconds: 1 }).catch(
    (error: unknown) => {
      // fetch() rejects with a TypeError when nothing listens; a Prometheus that answers with an error is reported as is.
      throw error instanceof TypeError ? prometheusUnreachable(prometheusUrl, error) : error;
    },
  );
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
  const out = values.out === undefined ? defaultOutput() : resolve(values.out);
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
