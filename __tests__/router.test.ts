import express from 'express';
import express4 from 'express4';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Registry } from 'prom-client';
import { dynamoMetrics } from '../lib/middleware';
import { metricsRouter } from '../lib/router';
import { listen, request } from './support/http';
import type { RunningServer } from './support/http';

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** A metric whose collection throws, so rendering the registry fails with "collector failed". */
function addFailingCollector(registry: Registry): void {
  new Counter({
    name: 'broken_total',
    help: 'broken',
    registers: [registry],
    collect() {
      throw new Error('collector failed');
    },
  });
}

const variants = [
  ['Express 5', express],
  ['Express 4', express4],
] as const;

describe.each(variants)('metricsRouter on %s', (_name, expressLib) => {
  const savedPath = process.env.DYN_HTTP_SVC_METRICS_PATH;
  afterEach(() => {
    if (savedPath === undefined) delete process.env.DYN_HTTP_SVC_METRICS_PATH;
    else process.env.DYN_HTTP_SVC_METRICS_PATH = savedPath;
  });

  async function serve(router: ReturnType<typeof metricsRouter>): Promise<number> {
    const app = expressLib();
    app.use(router);
    app.use((_req, res) => {
      res.status(404).send('not here');
    });
    server = await listen(app);
    return server.port;
  }

  it('serves GET /metrics from the given registry in its content type', async () => {
    const registry = new Registry();
    new Counter({ name: 'probe_total', help: 'probe', registers: [registry] }).inc(3);
    const port = await serve(metricsRouter({ registry }));
    const response = await request(port, 'GET', '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(registry.contentType);
    expect(response.body.toString()).toContain('probe_total 3');
  });

  it('uses the OpenMetrics content type of an OpenMetrics registry', async () => {
    const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    new Counter({ name: 'probe_total', help: 'probe', registers: [registry] }).inc();
    const port = await serve(metricsRouter({ registry }));
    const response = await request(port, 'GET', '/metrics');
    expect(response.headers['content-type']).toBe(Registry.OPENMETRICS_CONTENT_TYPE);
    expect(response.body.toString()).toContain('# EOF');
  });

  it('serves another path when asked, and DYN_HTTP_SVC_METRICS_PATH when the option is absent', async () => {
    const registry = new Registry();
    new Counter({ name: 'probe_total', help: 'probe', registers: [registry] }).inc();
    process.env.DYN_HTTP_SVC_METRICS_PATH = '/from-env';
    const app = expressLib();
    app.use(metricsRouter({ registry, path: '/custom' }));
    app.use(metricsRouter({ registry }));
    server = await listen(app);
    expect((await request(server.port, 'GET', '/custom')).body.toString()).toContain('probe_total 1');
    expect((await request(server.port, 'GET', '/from-env')).body.toString()).toContain('probe_total 1');
    expect((await request(server.port, 'GET', '/metrics')).status).toBe(404);
  });

  it('answers only GET and leaves other paths to the next handler', async () => {
    const port = await serve(metricsRouter({ registry: new Registry() }));
    expect((await request(port, 'POST', '/metrics', {})).status).toBe(404);
    expect((await request(port, 'GET', '/other')).body.toString()).toBe('not here');
  });

  it('answers 500 when collection fails, with the error visible (in the body or passed to the error handler)', async () => {
    const registry = new Registry();
    addFailingCollector(registry);
    const seen: string[] = [];
    const app = expressLib();
    app.use(metricsRouter({ registry }));
    app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
      seen.push(error.message);
      res.status(500).end('error handler');
    });
    server = await listen(app);
    const response = await request(server.port, 'GET', '/metrics');
    expect(response.status).toBe(500);
    expect([...seen, response.body.toString()].join(' ')).toContain('collector failed');
  });
  it('matches as an Express route did: HEAD, a query string, a trailing slash, any case, relative to a mount point', async () => {
    const registry = new Registry();
    new Counter({ name: 'probe_total', help: 'probe', registers: [registry] }).inc(3);
    const app = expressLib();
    app.use('/internal', metricsRouter({ registry }));
    app.use((_req, res) => {
      res.status(404).send('not here');
    });
    server = await listen(app);
    for (const target of ['/internal/metrics', '/internal/metrics?x=1', '/internal/metrics/', '/internal/METRICS']) {
      const response = await request(server.port, 'GET', target);
      expect({ target, status: response.status, probe: response.body.toString().includes('probe_total 3') }).toEqual({ target, status: 200, probe: true });
    }
    const head = await request(server.port, 'HEAD', '/internal/metrics');
    expect({ status: head.status, contentType: head.headers['content-type'], body: head.body.length }).toEqual({ status: 200, contentType: registry.contentType, body: 0 });
    expect((await request(server.port, 'GET', '/metrics')).body.toString()).toBe('not here');
    expect((await request(server.port, 'GET', '/internal/metrics/more')).body.toString()).toBe('not here');
  });
});

describe('metricsRouter on plain node:http, without a next()', () => {
  it('serves the metrics, answers 404 elsewhere and 500 with the reason when collection fails', async () => {
    const registry = new Registry();
    new Counter({ name: 'probe_total', help: 'probe', registers: [registry] }).inc();
    const handler = metricsRouter({ registry });
    server = await listen((req, res) => handler(req, res));
    const ok = await request(server.port, 'GET', '/metrics');
    expect({ status: ok.status, probe: ok.body.toString().includes('probe_total 1') }).toEqual({ status: 200, probe: true });
    expect((await request(server.port, 'GET', '/elsewhere')).status).toBe(404);
    expect((await request(server.port, 'POST', '/metrics', {})).status).toBe(404);

    addFailingCollector(registry);
    const failed = await request(server.port, 'GET', '/metrics');
    expect({ status: failed.status, body: failed.body.toString() }).toEqual({ status: 500, body: 'could not collect the metrics: collector failed\n' });
  });

  it('answers 500, and the server lives on, when a registry-like object throws or returns no promise', async () => {
    const throwing = { metrics: () => { throw new Error('broken registry'); }, contentType: 'text/plain' };
    const synchronous = { metrics: () => 'not a promise', contentType: 'text/plain' };
    const handlers = { '/throwing': metricsRouter({ registry: throwing as never, path: '/throwing' }), '/sync': metricsRouter({ registry: synchronous as never, path: '/sync' }) };
    server = await listen((req, res) => (handlers[req.url as keyof typeof handlers] ?? handlers['/sync'])(req, res));
    const failed = await request(server.port, 'GET', '/throwing');
    expect({ status: failed.status, body: failed.body.toString() }).toEqual({ status: 500, body: 'could not collect the metrics: broken registry\n' });
    const served = await request(server.port, 'GET', '/sync');
    expect({ status: served.status, body: served.body.toString() }).toEqual({ status: 200, body: 'not a promise' });
  });
});

describe("prom-client's default metrics on the same registry", () => {
  it('are served beside ours in one scrape', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const app = express();
    app.use(dynamoMetrics({ registry }));
    app.use(metricsRouter({ registry }));
    server = await listen(app);
    const text = (await request(server.port, 'GET', '/metrics')).body.toString();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(text).toContain('# TYPE dynamo_frontend_output_tokens_total counter');
  });
});

describe('metricsRouter options', () => {
  it('throws a TypeError with the fix when passed itself', () => {
    expect(() => metricsRouter(metricsRouter as never)).toThrow(/metricsRouter\(\)/);
  });

  it('throws a TypeError naming a misspelt option, and for a cluster flag that is not a boolean', () => {
    expect(() => metricsRouter({ pth: '/m' } as never)).toThrow(/unknown metricsRouter option "pth"; known options are registry, path, auth, cluster/);
    expect(() => metricsRouter({ cluster: 'yes' } as never)).toThrow(/"cluster" must be true or false \(got "yes"\)/);
  });

  it('throws a TypeError for a path without a leading slash or a registry that is not one', () => {
    expect(() => metricsRouter({ path: 'metrics' })).toThrow(TypeError);
    expect(() => metricsRouter({ path: '/metrics?x=1' })).toThrow(/without a query string or fragment/);
    expect(() => metricsRouter({ path: '/metrics#x' })).toThrow(/without a query string or fragment/);
    process.env.DYN_HTTP_SVC_METRICS_PATH = 'nope';
    expect(() => metricsRouter()).toThrow(/: DYN_HTTP_SVC_METRICS_PATH must start with "\/"/);
    expect(() => metricsRouter({ registry: {} as Registry })).toThrow(TypeError);
  });
});
