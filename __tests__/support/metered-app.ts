/**
 * Express apps with the middleware on a fresh registry and `/metrics`, for the suites that drive it over real
 * sockets. `meteredApp` also serves the app, reads counts back from its registry, and closes it after the test.
 */
import express from 'express';
import type { Express, Request, Response } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import type { DynamoMetricsOptions } from '../../lib';
import { eventually, listen, scrape } from './http';
import type { RunningServer } from './http';
import { m, value } from './registry-values';
import type { Labels } from './registry-values';
import { codePoints } from './streams';

export interface MetricsApp {
  app: Express;
  registry: Registry;
}

/** An app with `dynamoMetrics()` mounted first on a fresh registry; routes are added by the test. */
export function metricsApp(options: Omit<DynamoMetricsOptions, 'registry'> = {}): MetricsApp {
  const registry = new Registry();
  const app = express();
  app.use(dynamoMetrics({ ...options, registry }));
  app.use(metricsRouter({ registry }));
  return { app, registry };
}

export type Route = (req: Request, res: Response) => void | Promise<void>;

export interface MeteredOptions extends Omit<DynamoMetricsOptions, 'registry'> {
  /** `express.json()` before the middleware (the default), or no body parser at all. */
  json?: boolean;
}

export interface MeteredApp {
  port: number;
  registry: Registry;
  /** A counter/gauge value (or histogram part) read back from the registry. */
  get(suffix: string, labels?: Labels, part?: 'count' | 'sum'): Promise<number>;
  /** The /metrics text served by metricsRouter. */
  scrape(): Promise<string>;
  /** Waits until `n` requests have ended. */
  ended(n?: number): Promise<void>;
}

const running: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

/**
 * A served app counting one token per code point (so every count is exact) unless `options` says otherwise. Each
 * route takes the POSTs to its path; a lone route takes every POST.
 */
export async function meteredApp(routes: Route | Record<string, Route>, options: MeteredOptions = {}): Promise<MeteredApp> {
  const { json = true, ...middleware } = options;
  const registry = new Registry();
  const app = express();
  if (json) app.use(express.json());
  app.use(dynamoMetrics({ registry, countTokens: codePoints, ...middleware }));
  app.use(metricsRouter({ registry }));
  const table: [string | RegExp, Route][] = typeof routes === 'function' ? [[/.*/, routes]] : Object.entries(routes);
  for (const [path, route] of table) {
    app.post(path, (req, res, next) => {
      Promise.resolve(route(req, res)).catch(next);
    });
  }
  const server = await listen(app);
  running.push(server);
  const get = (suffix: string, labels: Labels = {}, part?: 'count' | 'sum'): Promise<number> => value(registry, m(suffix), labels, part);
  return {
    port: server.port,
    registry,
    get,
    scrape: () => scrape(server.port),
    ended: (n = 1) => eventually(async () => (await get('requests_total')) >= n),
  };
}
