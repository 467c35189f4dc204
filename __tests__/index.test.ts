import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import * as api from '../lib/index';
import { dynamoMetrics, dynamoBuckets, METRIC_SUFFIXES, metricsRouter } from '../lib/index';
import { listen } from './support/http';
import type { RunningServer } from './support/http';
import http from 'node:http';

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('public surface (lib/index.ts)', () => {
  it('exports the two factories and the documented helpers', () => {
    expect(typeof dynamoMetrics).toBe('function');
    expect(typeof metricsRouter).toBe('function');
    expect(typeof dynamoBuckets).toBe('function');
    expect(Object.keys(api)).toEqual(expect.arrayContaining(['DEFAULTS', 'METRIC_SUFFIXES', 'dynamoBuckets', 'dynamoMetrics', 'metricsRouter']));
    for (const [name, value] of Object.entries(api)) expect({ name, defined: value !== undefined }).toEqual({ name, defined: true });
  });

  it('names every metric of the contract (Dynamo family plus our own)', () => {
    expect(Object.values(METRIC_SUFFIXES).sort()).toEqual(
      [
        'output_tokens_total',
        'requests_total',
        'requests_started_total',
        'inflight_requests',
        'active_requests',
        'queued_requests',
        'disconnected_clients',
        'model_cancellation_total',
        'request_duration_seconds',
        'time_to_first_token_seconds',
        'inter_token_latency_seconds',
        'input_sequence_tokens',
        'output_sequence_tokens',
        'cached_tokens',
        'input_tokens_total',
        'reasoning_tokens_total',
        'requests_finished_total',
        'output_tokens_overcount_total',
        'output_tokens_estimated_total',
        'parse_errors_total',
      ].sort(),
    );
  });
});

/** Mounts a factory itself instead of its result, as `app.use(dynamoMetrics)`, and reports what a request gets. */
async function misuse(factory: unknown): Promise<{ status: number | undefined; error: string | undefined }> {
  const app = express();
  let error: string | undefined;
  app.use(factory as express.RequestHandler);
  app.get('/v1/models', (_req, res) => {
    res.send('ok');
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    error = err.message;
    res.status(500).end();
  });
  server = await listen(app);
  const port = server.port;
  const status = await new Promise<number | undefined>((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/v1/models', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.setTimeout(2000, () => {
      req.destroy();
      resolve(undefined);
    });
    req.on('error', () => resolve(undefined));
  });
  return { status, error };
}

describe('mounting a factory instead of its result', () => {
  it('app.use(dynamoMetrics) fails with a TypeError that says app.use(dynamoMetrics())', async () => {
    const { status, error } = await misuse(dynamoMetrics);
    expect(status).toBe(500);
    expect(error).toMatch(/dynamoMetrics\(\)/);
  });

  it('app.use(metricsRouter) fails with a TypeError that says app.use(metricsRouter()) instead of hanging the request', async () => {
    const { status, error } = await misuse(metricsRouter);
    expect(status).toBe(500);
    expect(error).toMatch(/metricsRouter\(\)/);
  });
});
