import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../lib';
import { RESULTS_DIR, loadTokens } from './lib/fixture';
import { registerWithPublicTextOnly } from './lib/internals';
import { chatCompletionsRoute, newCounters } from './lib/server';
import { formatTable, median } from './lib/stats';
import { percentile } from './lib/load';
import { runMain } from './lib/entry';

/**
 * `npm run bench:scrape`: how long `/metrics` takes to render with 1, 10 and 100 models once every metric has
 * series for every model. The registry is filled by real streams through the middleware (completed, aborted and
 * failed ones, so the error and cancellation series exist too), then `registry.metrics()` is timed in-process and
 * `GET /metrics` over loopback. `SCRAPE_PUBLIC_TEXT=1` renders through prom-client's own formatter instead of the
 * pre-rendered text (what a prom-client other than the tested 15.1 releases gets).
 */

const HOST = '127.0.0.1';
const MODEL_COUNTS = (process.env.SCRAPE_MODELS ?? '1,10,100').split(',').map(Number).filter((n) => n > 0 && n <= 1000);
const STREAMS_PER_MODEL = 4;
const RENDERS = Number(process.env.SCRAPE_RENDERS) || 300;
const RENDER_BUDGET_MS = 10_000;
const PUBLIC_TEXT = process.env.SCRAPE_PUBLIC_TEXT === '1';

function request(port: number, method: string, path: string, body?: string, abortAfterBytes?: number): Promise<string> {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host: HOST,
        port,
        method,
        path,
        agent: false,
        headers: payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {},
      },
      (res) => {
        const parts: Buffer[] = [];
        let size = 0;
        res.on('data', (b: Buffer) => {
          parts.push(b);
          size += b.length;
          if (abortAfterBytes !== undefined && size >= abortAfterBytes) req.destroy();
        });
        res.on('close', () => resolve(Buffer.concat(parts).toString('utf8')));
      },
    );
    req.on('error', () => resolve(''));
    req.end(payload);
  });
}

interface ScrapeResult {
  models: number;
  series: number;
  bytes: number;
  renderMsP50: number;
  renderMsP99: number;
  /** CPU time of one render (this process's user + system), less sensitive to neighbours than wall time. */
  renderCpuMsP50: number;
  /** Where one render's time goes: each metric's text (`registry.getSingleMetricAsString`), median ms, largest first. */
  perMetricMs: { name: string; ms: number; lines: number }[];
  httpMsP50: number;
  renders: number;
}

async function measure(models: number, tokens: readonly string[]): Promise<ScrapeResult> {
  const registry = new Registry();
  const app = express();
  app.use(express.json());
  if (PUBLIC_TEXT) registerWithPublicTextOnly(registry, Math.max(100, models));
  app.use(dynamoMetrics({ registry, maxModels: Math.max(100, models) }));
  app.use(metricsRouter({ registry }));
  const counters = newCounters();
  app.post('/v1/chat/completions', chatCompletionsRoute(tokens, counters, new Set()));
  // An upstream failure for every model, so requests_total also carries error series.
  app.post('/v1/fail/chat/completions', (_req, res) => {
    res.status(503).json({ error: { message: 'overloaded', type: 'server_error' } });
  });
  const server = app.listen(0, HOST);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const port = (server.address() as { port: number }).port;
  try {
    for (let m = 0; m < models; m++) {
      const body = JSON.stringify({ model: `model-${String(m).padStart(3, '0')}`, stream: true, messages: [] });
      const work: Promise<string>[] = [];
      for (let s = 0; s < STREAMS_PER_MODEL; s++) work.push(request(port, 'POST', '/v1/chat/completions', body));
      work.push(request(port, 'POST', '/v1/chat/completions?hold=20', body, 2000));
      work.push(request(port, 'POST', '/v1/fail/chat/completions', body));
      await Promise.all(work);
    }
    const text = await registry.metrics();
    const series = text.split('\n').filter((line) => line.length > 0 && !line.startsWith('#')).length;
    const renders: number[] = [];
    const renderCpu: number[] = [];
    const startedAt = performance.now();
    for (let i = 0; i < 10; i++) await registry.metrics();
    for (let i = 0; i < RENDERS && performance.now() - startedAt < RENDER_BUDGET_MS; i++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await registry.metrics();
      renders.push(performance.now() - t0);
      const cpu = process.cpuUsage(cpu0);
      renderCpu.push((cpu.user + cpu.system) / 1000);
    }
    const perMetric = new Map<string, { samples: number[]; lines: number }>();
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name);
    for (let i = 0; i < 20; i++) {
      for (const name of names) {
        const t0 = performance.now();
        const part = await registry.getSingleMetricAsString(name);
        const entry = perMetric.get(name) ?? { samples: [], lines: part.split('\n').length - 2 };
        entry.samples.push(performance.now() - t0);
        perMetric.set(name, entry);
      }
    }
    const http: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      await request(port, 'GET', '/metrics');
      http.push(performance.now() - t0);
    }
    renders.sort((a, b) => a - b);
    return {
      models,
      series,
      bytes: Buffer.byteLength(text),
      renderMsP50: median(renders),
      renderMsP99: percentile(renders, 99),
      renderCpuMsP50: median(renderCpu),
      perMetricMs: [...perMetric]
        .map(([name, e]) => ({ name, ms: median(e.samples), lines: e.lines }))
        .sort((a, b) => b.ms - a.ms),
      httpMsP50: median(http),
      renders: renders.length,
    };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function main(): Promise<void> {
  const tokens = await loadTokens();
  const results: ScrapeResult[] = [];
  for (const models of MODEL_COUNTS) {
    const result = await measure(models, tokens);
    results.push(result);
    console.log(`  ${models} model(s): ${result.series} series, render p50 ${result.renderMsP50.toFixed(3)} ms${PUBLIC_TEXT ? " (prom-client's formatter)" : ""}`);
  }
  console.log(
    `\n${formatTable(
      ['models', 'series', 'text KiB', 'registry.metrics() p50 ms', 'p99 ms', 'CPU ms p50', 'GET /metrics p50 ms'],
      results.map((r) => [
        String(r.models),
        String(r.series),
        (r.bytes / 1024).toFixed(1),
        r.renderMsP50.toFixed(3),
        r.renderMsP99.toFixed(3),
        r.renderCpuMsP50.toFixed(3),
        r.httpMsP50.toFixed(3),
      ]),
      `/metrics render time, every histogram populated (${STREAMS_PER_MODEL} completed + 1 aborted + 1 failed request per model)`,
    )}\n`,
  );
  const largest = results[results.length - 1];
  if (largest !== undefined) {
    console.log(`Largest metrics at ${largest.models} models (median ms of registry.getSingleMetricAsString(), lines):`);
    for (const m of largest.perMetricMs.slice(0, 8)) console.log(`  ${m.ms.toFixed(3).padStart(8)}  ${String(m.lines).padStart(6)}  ${m.name}`);
    console.log('');
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const out = join(RESULTS_DIR, 'scrape.json');
  writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results }, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

if (require.main === module) {
  runMain(main);
}
