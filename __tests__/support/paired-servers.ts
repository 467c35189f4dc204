/**
 * Two copies of one Express app on real sockets, one with dynamoMetrics() and one without, whose handler writes
 * whatever body a test queued, following a write plan. A fresh Registry (and middleware) per exchange.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import type { DynamoMetricsError, DynamoMetricsMiddleware, DynamoMetricsOptions } from '../../lib';
import { eventually, listen } from './http';
import type { RunningServer } from './http';
import { fromSnapshot, snapshot } from './registry-values';
import { rawPost } from './sockets';
import { writeByPlan } from './write-plans';
import type { WritePlan, WriteRecord } from './write-plans';

export interface BodyToWrite {
  path: string;
  contentType: string;
  bytes: Buffer;
  /** Byte offsets of event boundaries, for plans aligned on events. */
  boundaries?: number[];
  status?: number;
}

export interface Exchange {
  raw: Buffer;
  record: WriteRecord;
  /** Undefined for the app without the middleware. */
  registry: Registry | undefined;
  errors: DynamoMetricsError[];
}

interface Job {
  body: BodyToWrite;
  plan: WritePlan;
  record?: WriteRecord;
}

const probes = new WeakMap<ServerResponse, unknown[]>();

export type MiddlewareOptions = Omit<DynamoMetricsOptions, 'registry' | 'onError'>;

export class PairedServers {
  private readonly jobs = new Map<string, Job>();
  private nextJob = 0;
  private middleware: DynamoMetricsMiddleware | undefined;
  private bare: RunningServer | undefined;
  private metered: RunningServer | undefined;

  async start(): Promise<void> {
    this.bare = await listen(this.app(false));
    this.metered = await listen(this.app(true));
  }

  /** The app without the middleware, as an upstream for a proxy under test. */
  get upstreamUrl(): string {
    if (this.bare === undefined) throw new Error('PairedServers not started');
    return this.bare.url;
  }

  /** Queues a body for the app without the middleware; returns the path that gets it, and its write record. */
  queueUpstream(body: BodyToWrite, plan: WritePlan): { path: string; record: () => WriteRecord | undefined; release: () => void } {
    const id = String(this.nextJob++);
    const job: Job = { body, plan };
    this.jobs.set(id, job);
    const separator = body.path.includes('?') ? '&' : '?';
    return { path: `${body.path}${separator}job=${id}`, record: () => job.record, release: () => this.jobs.delete(id) };
  }

  async close(): Promise<void> {
    await this.bare?.close();
    await this.metered?.close();
  }

  private app(withMetrics: boolean): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    // Mounted first in both apps, so it sits beneath the middleware: records what the original write/end returned.
    app.use((_req: IncomingMessage, res: ServerResponse, next: () => void) => {
      const inner: unknown[] = [];
      probes.set(res, inner);
      const write = res.write as (...args: unknown[]) => boolean;
      const end = res.end as (...args: unknown[]) => ServerResponse;
      res.write = function probedWrite(this: ServerResponse, ...args: unknown[]) {
        const result = write.apply(this, args);
        inner.push(result);
        return result;
      } as ServerResponse['write'];
      res.end = function probedEnd(this: ServerResponse, ...args: unknown[]) {
        const result = end.apply(this, args);
        inner.push(result === this ? 'res' : result);
        return result;
      } as ServerResponse['end'];
      next();
    });
    if (withMetrics) {
      app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => (this.middleware ? this.middleware(req, res, next) : next()));
    }
    app.use((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      const id = new URL(req.url ?? '/', 'http://127.0.0.1').searchParams.get('job') ?? '';
      const job = this.jobs.get(id);
      if (job === undefined) {
        res.statusCode = 404;
        res.end();
        return;
      }
      job.record = writeByPlan(res, job.body.status ?? 200, job.body.contentType, job.body.bytes, job.plan, job.body.boundaries);
      job.record.inner = probes.get(res);
    });
    return app;
  }

  /** Runs one exchange; `options` set makes it go through the app with the middleware. */
  async exchange(body: BodyToWrite, plan: WritePlan, options?: MiddlewareOptions): Promise<Exchange> {
    const server = options === undefined ? this.bare : this.metered;
    if (server === undefined) throw new Error('PairedServers not started');
    const id = String(this.nextJob++);
    const job: Job = { body, plan };
    this.jobs.set(id, job);
    const errors: DynamoMetricsError[] = [];
    let registry: Registry | undefined;
    if (options !== undefined) {
      registry = new Registry();
      this.middleware = dynamoMetrics({ ...options, registry, onError: (error) => errors.push(error) });
    }
    try {
      const separator = body.path.includes('?') ? '&' : '?';
      const raw = await rawPost(
        server.port,
        `${body.path}${separator}job=${id}`,
        JSON.stringify({ model: 'ignored-by-the-server', stream: true }),
        10_000,
        plan.http10 === true ? '1.0' : '1.1',
      );
      const record = job.record;
      if (record === undefined) throw new Error('the handler never ran');
      await record.done;
      await eventually(() => record.callbacksCalled === record.callbacksGiven, 3000).catch(() => {
        throw new Error(`${record.callbacksGiven - record.callbacksCalled} of ${record.callbacksGiven} write/end callbacks never called`);
      });
      if (registry !== undefined) {
        const reg = registry;
        await eventually(async () => fromSnapshot(await snapshot(reg), 'dynamo_frontend_requests_total') === 1, 3000);
      }
      return { raw, record, registry, errors };
    } finally {
      this.jobs.delete(id);
    }
  }
}

/** Where two buffers first differ, for readable failures. */
export function describeBytes(a: Buffer, b: Buffer): string {
  let at = 0;
  while (at < a.length && at < b.length && a[at] === b[at]) at++;
  return `first difference at byte ${at} of ${a.length}/${b.length}: ${JSON.stringify(a.subarray(at, at + 40).toString('latin1'))} vs ${JSON.stringify(b.subarray(at, at + 40).toString('latin1'))}`;
}

export function checkRecord(label: string, record: WriteRecord): void {
  if (record.thrown.length > 0) throw new Error(`${label}: write/end threw ${String(record.thrown[0])}`);
  // Backpressure intact: each write/end returned to the handler exactly what the original returned.
  if (record.inner !== undefined && JSON.stringify(record.inner) !== JSON.stringify(record.returns)) {
    throw new Error(`${label}: write/end returned ${JSON.stringify(record.returns)} where the original returned ${JSON.stringify(record.inner)}`);
  }
  if (record.callbackErrors.length > 0) throw new Error(`${label}: a callback got ${String(record.callbackErrors[0])}`);
}

/** A plan that writes the body in one piece. */
export const ONE_WRITE: WritePlan = {
  align: 'bytes',
  cuts: [],
  awkwardCuts: [],
  kinds: ['buffer'],
  callbacks: [false],
  endWith: 'end()',
  headers: 'writeHead',
  emptyWriteEvery: 0,
  yieldEvery: 0,
};

/** A plan that writes one event per write, as engines do. */
export const PER_EVENT: WritePlan = { ...ONE_WRITE, align: 'events', kinds: ['utf8-no-encoding'] };
