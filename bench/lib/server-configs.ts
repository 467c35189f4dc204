import type { ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import express from 'express';
import type { Express, RequestHandler } from 'express';
import { Registry } from 'prom-client';
import type * as Lib from '../../lib';
import type * as HookModule from '../../lib/http/hook';
import type { ResponseListener } from '../../lib/http/hook';

/**
 * The configurations a bench server runs: bare Express, the lib (as source or a tsc build, or another build as
 * `dynamoBaseline`), express-prom-bundle, and controls (a write wrapper alone, the lib's hook alone, a wrapper of
 * known cost).
 */

export const CONFIGS = ['bare', 'dynamo', 'dynamoOtel', 'promBundle', 'both', 'passthrough', 'spin', 'hook', 'dynamoBaseline'] as const;
export type ServerConfig = (typeof CONFIGS)[number];

export function isServerConfig(value: unknown): value is ServerConfig {
  return typeof value === 'string' && (CONFIGS as readonly string[]).includes(value);
}

/**
 * Mounts the middleware under test. Every configuration parses the JSON body first, as an LLM server does, so the
 * differences between configurations are only the metrics middleware.
 */
export async function mountMiddleware(app: Express, config: ServerConfig): Promise<void> {
  app.use(express.json({ limit: '1mb' }));
  if (config === 'promBundle' || config === 'both') {
    const { default: promBundle } = await import('express-prom-bundle');
    app.use(
      promBundle({
        promRegistry: new Registry(),
        includeMethod: true,
        includePath: true,
        includeStatusCode: true,
        // Both middlewares serve /metrics by default; keep the bundle's out of the way in the combined setup.
        metricsPath: config === 'both' ? '/metrics-http' : '/metrics',
      }),
    );
  }
  if (config === 'dynamo' || config === 'dynamoOtel' || config === 'both' || config === 'dynamoBaseline') {
    // dynamoBaseline: another build of the lib (BENCH_BASELINE_LIB_DIR, set by `npm run bench -- --baseline <ref>`),
    // so that a change and its baseline are measured in the same run, against the same bare rounds.
    const dir = config === 'dynamoBaseline' ? baselineLibDir() : process.env.BENCH_LIB_DIR;
    const { dynamoMetrics, metricsRouter } = await loadLibModule<typeof Lib>('index', dir);
    const registry = new Registry();
    // dynamoOtel: the same with `meter`, a real OpenTelemetry SDK MeterProvider (nothing exported during the run).
    const meter = config === 'dynamoOtel' ? new (await import('@opentelemetry/sdk-metrics')).MeterProvider().getMeter('bench') : undefined;
    app.use(dynamoMetrics(meter === undefined ? { registry } : { registry, meter }));
    app.use(metricsRouter({ registry }));
  }
  if (config === 'hook') {
    // The lib's response hook alone, with a listener that does nothing: the cost of hooking before any reading.
    const { hookResponse } = await loadLibModule<typeof HookModule>('http/hook');
    const listener: ResponseListener = {
      onHead: () => undefined,
      onBody: () => undefined,
      onBodyEnd: () => undefined,
      onDone: () => undefined,
      onListenerError: () => undefined,
    };
    app.use((_req, res, next) => {
      hookResponse(res, listener);
      next();
    });
  }
  if (config === 'passthrough') {
    // The floor for any write hook: a wrapper that forwards every argument and does nothing else.
    const passthrough: RequestHandler = (_req, res, next) => {
      const write = res.write;
      res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
        return (write as (c: unknown, e?: unknown, cb?: unknown) => boolean).call(this, chunk, encoding, cb);
      } as typeof res.write;
      next();
    };
    app.use(passthrough);
  }
  if (config === 'spin') {
    // A control: a write wrapper that spends a known amount of user CPU per write (BENCH_SPIN_NS, default 300) and
    // allocates nothing. What the bench reads for it is what any middleware of that cost would read here.
    const spin = spinner(Number(process.env.BENCH_SPIN_NS ?? 300));
    app.use((_req, res, next) => {
      const write = res.write;
      res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
        spin();
        return (write as (c: unknown, e?: unknown, cb?: unknown) => boolean).call(this, chunk, encoding, cb);
      } as typeof res.write;
      next();
    });
  }
}

/** A function that keeps the CPU busy for about `ns` nanoseconds, calibrated once against the clock. */
function spinner(ns: number): () => void {
  if (!(ns >= 0)) throw new Error(`BENCH_SPIN_NS must be a number of nanoseconds, got ${String(ns)}`);
  let sink = 0;
  const loop = (iterations: number): void => {
    let x = sink;
    for (let i = 0; i < iterations; i++) x = (x * 31 + i) | 0;
    sink = x;
  };
  const calibration = 20_000_000;
  loop(calibration);
  const started = process.hrtime.bigint();
  loop(calibration);
  const perIteration = Number(process.hrtime.bigint() - started) / calibration;
  const iterations = Math.round(ns / perIteration);
  return () => loop(iterations);
}

/**
 * A module of the lib from its TypeScript source (through tsx, the default) or, with a directory (BENCH_LIB_DIR),
 * from a tsc build: what users run. tsx's esbuild transform keeps function names with a `__name()` call per
 * function created, which a per-request closure pays and shipped code does not.
 */
export async function loadLibModule<T>(name: string, dir = process.env.BENCH_LIB_DIR): Promise<T> {
  const file = dir === undefined || dir === '' ? join(__dirname, '..', '..', 'lib', name) : join(resolve(dir), `${name}.js`);
  return (await import(file)) as T;
}

export function baselineLibDir(): string {
  const dir = process.env.BENCH_BASELINE_LIB_DIR;
  if (dir === undefined || dir === '') throw new Error('dynamoBaseline needs BENCH_BASELINE_LIB_DIR (or run with --baseline <git ref>)');
  return dir;
}

