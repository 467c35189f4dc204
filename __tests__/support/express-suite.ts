/**
 * The HTTP suites run on both Express majors. Each test gets a fresh registry and an app built with that major:
 * `express.json()`, the middleware counting one token per code point, and `/metrics`; its servers close after it.
 */
import type { Application, Request, Response } from 'express';
import express from 'express';
import express4 from 'express4';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib/index';
import type { DynamoMetricsOptions } from '../../lib/index';
import { eventually, listen } from './http';
import type { RunningServer } from './http';
import { m, value } from './registry-values';
import type { Labels } from './registry-values';
import { codePoints } from './streams';

export const CHAT = '/v1/chat/completions';

/** Each major with the package that provides it, so a suite can check it really runs on both. */
export const EXPRESS_MAJORS = [
  ['Express 5', express, 'express'],
  ['Express 4', express4, 'express4'],
] as const;

export type ExpressLib = (typeof EXPRESS_MAJORS)[number][1];

export type Handler = (req: Request, res: Response) => void | Promise<void>;

export interface Setup {
  /** Options for dynamoMetrics besides the registry (countTokens defaults to one token per code point). */
  metrics?: DynamoMetricsOptions;
  /** Mount dynamoMetrics at all (false: the same app without the middleware). */
  withMiddleware?: boolean;
  /** Mount express.json() before the middleware (false: a proxy-like app with no parsed body). */
  bodyParser?: boolean;
}

export interface ExpressSuite {
  expressLib: ExpressLib;
  /** This test's registry. */
  readonly registry: Registry;
  buildApp(routes: (app: Application) => void, setup?: Setup, registry?: Registry): Application;
  /** Serves `app` on a free port until the test ends. */
  serve(app: Application): Promise<RunningServer>;
  /** Serves the app built from `routes`; resolves with its port. */
  start(routes: (app: Application) => void, setup?: Setup, registry?: Registry): Promise<number>;
  /** Routes POSTs to the chat path to `handler`; a handler that throws destroys its response. */
  chatRoute(handler: Handler): (app: Application) => void;
  get(name: string, labels?: Labels, part?: 'count' | 'sum'): Promise<number>;
  /** inflight, active and queued requests of `model`. */
  gauges(model: string): Promise<number[]>;
  /** Waits until `count` requests have ended (reported on the server's side, after the client saw the end). */
  ended(count?: number): Promise<void>;
}

/** The same tests on Express 5 and Express 4, under one name: `HTTP suite on <major>`. */
export function describeOnEachExpress(body: (suite: ExpressSuite, variant: string, packageName: string) => void): void {
  describe.each(EXPRESS_MAJORS)('HTTP suite on %s', (variant, expressLib, packageName) => {
    let registry: Registry;
    let servers: RunningServer[] = [];

    beforeEach(() => {
      registry = new Registry();
    });
    afterEach(async () => {
      await Promise.all(servers.map((s) => s.close()));
      servers = [];
    });

    function buildApp(routes: (app: Application) => void, setup: Setup = {}, reg: Registry = registry): Application {
      const app = expressLib() as unknown as Application;
      if (setup.bodyParser !== false) app.use(expressLib.json({ limit: '10mb' }));
      if (setup.withMiddleware !== false) {
        app.use(dynamoMetrics({ registry: reg, countTokens: codePoints, ...setup.metrics }));
        app.use(metricsRouter({ registry: reg }));
      }
      routes(app);
      return app;
    }

    async function serve(app: Application): Promise<RunningServer> {
      const server = await listen(app);
      servers.push(server);
      return server;
    }

    const get = (name: string, labels?: Labels, part?: 'count' | 'sum'): Promise<number> => value(registry, m(name), labels, part);

    body(
      {
        expressLib,
        get registry() {
          return registry;
        },
        buildApp,
        serve,
        start: async (routes, setup = {}, reg) => (await serve(buildApp(routes, setup, reg))).port,
        chatRoute: (handler) => (app) => {
          app.post(CHAT, (req, res) => {
            void Promise.resolve(handler(req, res)).catch(() => res.destroy());
          });
        },
        get,
        gauges: async (model) => [await get('inflight_requests', { model }), await get('active_requests', { model }), await get('queued_requests', { model })],
        ended: (count = 1) => eventually(async () => (await get('requests_total')) >= count),
      },
      variant,
      packageName,
    );
  });
}

/**
 * A stream held open half-way: writes `before`, waits for `gate`, then writes `after`, its last event with `end`.
 * A test scrapes in between.
 */
export function heldStream(before: readonly string[], gate: Promise<void>, after: readonly string[]): Handler {
  return async (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    for (const event of before) res.write(event);
    await gate;
    for (const event of after.slice(0, -1)) res.write(event);
    res.end(after[after.length - 1]);
  };
}

/** Writes an event stream in the given pieces, one `res.write` each. */
export function writeSse(res: Response, pieces: readonly (string | Buffer)[]): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  for (const piece of pieces) res.write(piece);
  res.end();
}
