/**
 * Disconnect storms: 1,000 streams aborted at random points (before the head, on the head, mid-event), 50 at a
 * time, straight to a route and through the example app's proxy. Every request that reached the middleware ends
 * exactly once as `cancelled`, the gauges return to 0, the tokens written before each abort stay counted, no
 * listener leaks, and the heap returns to its start after GC.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import type { DynamoMetricsError } from '../../lib';
import { createApp } from '../../example-app/app';
import { bounded } from '../support/bounded';
import { garbageCollector, heapAfterGc, MB } from '../support/gc';
import { abortedStream, eventually, listen } from '../support/http';
import type { AbortPoint, RunningServer } from '../support/http';
import { newTruth, pacedChat, tokensInEvents } from '../support/paced-stream';
import type { StreamTruth } from '../support/paced-stream';
import { seededRandom } from '../support/prng';
import { buildStream, streamSpecArbitrary } from '../support/random-streams';
import type { StreamFormat } from '../support/random-streams';
import { fromSnapshot, nonZeroGauges, P, snapshot } from '../support/registry-values';
import type { Snapshot } from '../support/registry-values';
import { chatEvent, codePoints } from '../support/streams';
import { watchWarnings } from '../support/warnings';
import type { WarningWatch } from '../support/warnings';

const STREAMS = Number(process.env.HARDENING_ABORTS ?? 1000);
const CONCURRENCY = 50;
const CHAT = '/v1/chat/completions';
const SEED = Number(process.env.HARDENING_SEED ?? 20261127);
const ABORT_RUNS = Number(process.env.HARDENING_ABORT_RUNS ?? 40);

// process.on('warning') never fires inside Jest: watch listener additions and emitWarning calls instead.
let watch: WarningWatch;
beforeAll(() => (watch = watchWarnings()));
afterAll(() => watch.stop());

const figures: Record<string, unknown> = {};
afterAll(() => process.stdout.write(`hardening-disconnect: ${JSON.stringify(figures)}\n`));

function abortPoint(random: () => number): AbortPoint {
  const roll = random();
  if (roll < 0.1) return { kind: 'after-send' };
  if (roll < 0.2) return { kind: 'on-headers' };
  return { kind: 'after-bytes', bytes: 1 + Math.floor(random() * 6000) };
}

interface Storm {
  receivedTokens: number;
  kinds: Record<string, number>;
}

async function storm(port: number, seed: number, count = STREAMS): Promise<Storm> {
  const random = seededRandom(seed);
  const points = Array.from({ length: count }, () => abortPoint(random));
  const result: Storm = { receivedTokens: 0, kinds: {} };
  await bounded(count, CONCURRENCY, async (i) => {
    const point = points[i] as AbortPoint;
    result.kinds[point.kind] = (result.kinds[point.kind] ?? 0) + 1;
    const received = await abortedStream(port, CHAT, { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }, point);
    const text = received.toString('utf8');
    result.receivedTokens += tokensInEvents(text);
  });
  return result;
}

/** Counts the tokens of the events a response wrote while open (mounted first, so it sits beneath the middleware). */
function writeTap(truth: StreamTruth) {
  return (_req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const write = res.write;
    let pending = '';
    let closed = false;
    res.on('close', () => (closed = true));
    res.write = function tappedWrite(this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      if (!closed) {
        pending += Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk);
        const end = pending.lastIndexOf('\n\n');
        if (end !== -1) {
          truth.tokensWritten += tokensInEvents(pending.slice(0, end + 2));
          pending = pending.slice(end + 2);
        }
      }
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as ServerResponse['write'];
    next();
  };
}

function checkAccounting(shot: Snapshot, arrived: number, tokensWritten: number): void {
  // Each request that reached the middleware started once and ended once, as cancelled.
  expect(fromSnapshot(shot, `${P}_requests_started_total`)).toBe(arrived);
  expect(fromSnapshot(shot, `${P}_requests_total`)).toBe(arrived);
  expect(fromSnapshot(shot, `${P}_requests_total`, { status: 'error', error_type: 'cancelled' })).toBe(arrived);
  expect(fromSnapshot(shot, `${P}_model_cancellation_total`)).toBe(arrived);
  expect(fromSnapshot(shot, `${P}_disconnected_clients`)).toBe(arrived);
  expect(fromSnapshot(shot, `${P}_request_duration_seconds_count`)).toBe(arrived);
  // Gauges back to 0.
  expect(nonZeroGauges(shot)).toEqual([]);
  // Tokens written before each abort stay counted: exactly what was handed to res.write while the client was there.
  expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(tokensWritten);
}

describe('1,000 aborted streams', () => {
  test('straight to a route', async () => {
    const gc = garbageCollector();
    const registry = new Registry();
    const errors: DynamoMetricsError[] = [];
    const truth = newTruth();
    const app = express();
    app.use(dynamoMetrics({ registry, countTokens: (text) => Array.from(text).length, onError: (e) => errors.push(e) }));
    app.post(CHAT, pacedChat(truth, { model: 'm', chunks: 2000, intervalMs: 0, headDelayMs: 1, burst: 4 }));
    const server = await listen(app);
    try {
      // Warm up (JIT, lazy module state) before taking the heap baseline.
      await storm(server.port, SEED + 1, 50);
      await eventually(() => truth.closedEarly + truth.finished === truth.arrived, 5000);
      const heapBefore = heapAfterGc(gc);
      const arrivedBefore = truth.arrived;
      const started = Date.now();
      const result = await storm(server.port, SEED);
      await eventually(() => truth.closedEarly + truth.finished === truth.arrived, 10_000);
      const seconds = (Date.now() - started) / 1000;
      const shot = await snapshot(registry);
      const heapAfter = heapAfterGc(gc);

      expect(truth.finished).toBe(0);
      checkAccounting(shot, truth.arrived, truth.tokensWritten);
      expect(truth.arrived - arrivedBefore).toBeGreaterThan(STREAMS * 0.85);
      expect(result.receivedTokens).toBeLessThanOrEqual(truth.tokensWritten);
      expect(errors).toEqual([]);
      expect(watch.leaks).toEqual([]);
      expect(watch.warnings).toEqual([]);
      figures.direct = {
        streams: STREAMS,
        reachedServer: truth.arrived - arrivedBefore,
        abortKinds: result.kinds,
        tokensWritten: truth.tokensWritten,
        tokensCounted: fromSnapshot(shot, `${P}_output_tokens_total`),
        seconds,
        heapBeforeMB: +(heapBefore / MB).toFixed(1),
        heapAfterMB: +(heapAfter / MB).toFixed(1),
        heapGrowthMB: +((heapAfter - heapBefore) / MB).toFixed(2),
      };
      expect(heapAfter - heapBefore).toBeLessThan(8 * MB);
    } finally {
      await server.close();
    }
  }, 60_000);

  test('through the example app in proxy mode (http-proxy-middleware)', async () => {
    const gc = garbageCollector();
    const registry = new Registry();
    const upstreamTruth = newTruth();
    const upstreamApp = express();
    upstreamApp.post(CHAT, pacedChat(upstreamTruth, { model: 'm', chunks: 2000, intervalMs: 0, headDelayMs: 1, burst: 4 }));
    const upstream = await listen(upstreamApp);
    const gatewayTruth = newTruth();
    const gatewayApp = express();
    gatewayApp.use((_req: IncomingMessage, _res: ServerResponse, next: () => void) => {
      gatewayTruth.arrived++;
      next();
    });
    gatewayApp.use(writeTap(gatewayTruth));
    gatewayApp.use(createApp({ registry, upstream: { url: upstream.url, timeoutMs: 10_000 }, metrics: { countTokens: (text) => Array.from(text).length } }));
    let gateway: RunningServer | undefined;
    try {
      gateway = await listen(gatewayApp);
      const port = gateway.port;
      await storm(port, SEED + 2, 50);
      await eventually(() => upstreamTruth.closedEarly + upstreamTruth.finished === upstreamTruth.arrived, 5000);
      const heapBefore = heapAfterGc(gc);
      const result = await storm(port, SEED + 3);
      // Every upstream request is cancelled when its client leaves, so the upstream sees every close too.
      await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`) === gatewayTruth.arrived, 10_000);
      await eventually(() => upstreamTruth.closedEarly + upstreamTruth.finished === upstreamTruth.arrived, 10_000);
      const shot = await snapshot(registry);
      const heapAfter = heapAfterGc(gc);

      checkAccounting(shot, gatewayTruth.arrived, gatewayTruth.tokensWritten);
      expect(upstreamTruth.finished).toBe(0);
      expect(gatewayTruth.tokensWritten).toBeLessThanOrEqual(upstreamTruth.tokensWritten);
      expect(result.receivedTokens).toBeLessThanOrEqual(gatewayTruth.tokensWritten);
      expect(watch.leaks).toEqual([]);
      expect(watch.warnings).toEqual([]);
      figures.proxy = {
        streams: STREAMS,
        reachedGateway: gatewayTruth.arrived,
        reachedUpstream: upstreamTruth.arrived,
        abortKinds: result.kinds,
        tokensWrittenByGateway: gatewayTruth.tokensWritten,
        tokensCounted: fromSnapshot(shot, `${P}_output_tokens_total`),
        heapBeforeMB: +(heapBefore / MB).toFixed(1),
        heapAfterMB: +(heapAfter / MB).toFixed(1),
        heapGrowthMB: +((heapAfter - heapBefore) / MB).toFixed(2),
      };
      expect(heapAfter - heapBefore).toBeLessThan(8 * MB);
    } finally {
      await gateway?.close();
      await upstream.close();
    }
  }, 90_000);
});

test('200 streams the server itself destroys at random points: each ends once as internal, tokens written stay counted', async () => {
  const registry = new Registry();
  const truth = newTruth();
  const app = express();
  app.use(dynamoMetrics({ registry, countTokens: (text) => Array.from(text).length }));
  app.post(
    CHAT,
    pacedChat(truth, { model: 'm', chunks: 2000, intervalMs: 0, burst: 4, destroyAfter: (req) => Number(req.headers['x-destroy-after']) }),
  );
  const server = await listen(app);
  const random = seededRandom(SEED + 4);
  const count = 200;
  const cuts = Array.from({ length: count }, () => Math.floor(random() * 60));
  try {
    await bounded(count, CONCURRENCY, async (i) => {
      await new Promise<void>((resolve) => {
        const req = http.request(
          { host: '127.0.0.1', port: server.port, path: CHAT, method: 'POST', agent: false, headers: { 'x-destroy-after': String(cuts[i]) } },
          (res) => {
            res.resume();
            res.on('error', () => undefined);
          },
        );
        req.on('error', () => undefined);
        req.on('close', () => resolve());
        req.end('{}');
      });
    });
    await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`) === count, 10_000);
    const shot = await snapshot(registry);
    expect(truth.arrived).toBe(count);
    expect(fromSnapshot(shot, `${P}_requests_total`, { status: 'error', error_type: 'internal' })).toBe(count);
    // The client did not leave: no disconnected_clients, no model_cancellation.
    expect(fromSnapshot(shot, `${P}_disconnected_clients`)).toBe(0);
    expect(fromSnapshot(shot, `${P}_model_cancellation_total`)).toBe(0);
    expect(nonZeroGauges(shot)).toEqual([]);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(truth.tokensWritten);
    figures.serverDestroyed = { streams: count, tokensWritten: truth.tokensWritten };
  } finally {
    await server.close();
  }
}, 30_000);

test('100 unary responses aborted while their body is being written: cancelled, nothing parsed from a partial body', async () => {
  const registry = new Registry();
  const errors: DynamoMetricsError[] = [];
  const app = express();
  app.use(express.json());
  app.use(dynamoMetrics({ registry, onError: (e) => errors.push(e) }));
  let ended = 0;
  app.post(CHAT, (_req, res) => {
    // A large JSON body written in pieces; the end arrives (res.end) after the client has gone.
    const body = JSON.stringify({ object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { content: 'w '.repeat(200_000) }, finish_reason: 'stop' }], usage: { completion_tokens: 9 } });
    res.setHeader('Content-Type', 'application/json');
    let at = 0;
    const next = (): void => {
      if (at >= body.length) {
        res.end();
        ended++;
        return;
      }
      res.write(body.slice(at, at + 16 * 1024));
      at += 16 * 1024;
      setImmediate(next);
    };
    next();
  });
  const server = await listen(app);
  const random = seededRandom(SEED + 5);
  try {
    await bounded(100, CONCURRENCY, async () => {
      await abortedStream(server.port, CHAT, { model: 'm', stream: false }, { kind: 'after-bytes', bytes: 1 + Math.floor(random() * 300_000) });
    });
    await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`) === 100, 10_000);
    await eventually(() => ended === 100, 10_000);
    const shot = await snapshot(registry);
    expect(fromSnapshot(shot, `${P}_requests_total`, { model: 'm', request_type: 'unary', status: 'error', error_type: 'cancelled' })).toBe(100);
    expect(fromSnapshot(shot, `${P}_output_tokens_total`)).toBe(0);
    expect(fromSnapshot(shot, `${P}_parse_errors_total`)).toBe(0);
    expect(nonZeroGauges(shot)).toEqual([]);
    expect(errors).toEqual([]);
  } finally {
    await server.close();
  }
}, 30_000);

describe('random streams in every format, aborted at a random byte', () => {
  const formats: StreamFormat[] = ['chat', 'completions', 'responses', 'anthropic'];

  /**
   * Counting is a function of the events written, however the stream ended: an aborted stream counts what the same
   * events count when written as a complete response (the oracle of the property suite agrees with the latter).
   */
  test.each(formats)('%s: counts what the events written before the abort count; ends once as cancelled', async (format) => {
    interface Job {
      events: string[];
      written: number;
      finished: boolean;
      closed: boolean;
    }
    const jobs = new Map<string, Job>();
    let registry = new Registry();
    let middleware = dynamoMetrics({ registry, countTokens: codePoints });
    const app = express();
    app.use((req: IncomingMessage, res: ServerResponse, next: () => void) => middleware(req, res, next));
    app.use((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      const job = jobs.get(new URL(req.url ?? '/', 'http://x').searchParams.get('job') ?? '') as Job;
      res.on('finish', () => (job.finished = true));
      res.on('close', () => (job.closed = true));
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      const next = (): void => {
        if (job.closed) return;
        if (job.written === job.events.length) {
          res.end();
          return;
        }
        res.write(job.events[job.written++] as string);
        setImmediate(next);
      };
      next();
    });
    const server = await listen(app);
    let runs = 0;
    try {
      await fc.assert(
        fc.asyncProperty(streamSpecArbitrary(format), fc.double({ min: 0, max: 1, noNaN: true }), async (spec, where) => {
          const stream = buildStream({ ...spec, bom: false });
          const path = `${stream.path}?job=${runs}`;
          const job: Job = { events: stream.events, written: 0, finished: false, closed: false };
          jobs.set(String(runs++), job);
          registry = new Registry();
          middleware = dynamoMetrics({ registry, countTokens: codePoints });
          const abortAt = 1 + Math.floor(where * (Buffer.byteLength(stream.body) - 1));
          await abortedStream(server.port, path, {}, { kind: 'after-bytes', bytes: abortAt });
          await eventually(async () => job.closed && fromSnapshot(await snapshot(registry), `${P}_requests_total`) === 1, 5000);
          const aborted = await snapshot(registry);

          // The same events, written as a whole response.
          const prefix = { ...job, events: stream.events.slice(0, job.written), written: 0, finished: false, closed: false };
          jobs.set(String(runs), prefix);
          registry = new Registry();
          middleware = dynamoMetrics({ registry, countTokens: codePoints });
          await abortedStream(server.port, `${stream.path}?job=${runs++}`, {}, { kind: 'after-bytes', bytes: Number.MAX_SAFE_INTEGER });
          await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`) === 1, 5000);
          const whole = await snapshot(registry);

          for (const name of ['output_tokens_total', 'reasoning_tokens_total', 'input_tokens_total']) {
            expect({ name, value: fromSnapshot(aborted, `${P}_${name}`) }).toEqual({ name, value: fromSnapshot(whole, `${P}_${name}`) });
          }
          expect(nonZeroGauges(aborted)).toEqual([]);
          expect(fromSnapshot(aborted, `${P}_requests_started_total`)).toBe(1);
          if (!job.finished) expect(fromSnapshot(aborted, `${P}_requests_total`, { status: 'error', error_type: 'cancelled' })).toBe(1);
        }),
        { seed: SEED, numRuns: ABORT_RUNS, endOnFailure: true, verbose: 1 },
      );
    } finally {
      await server.close();
    }
  }, Math.max(60_000, ABORT_RUNS * 1000));
});

test('the paced stream finishes normally when nobody aborts (the storm cancels, it does not just run out)', async () => {
  const registry = new Registry();
  const truth = newTruth();
  const app = express();
  app.use(dynamoMetrics({ registry, countTokens: (text) => Array.from(text).length }));
  app.post(CHAT, pacedChat(truth, { model: 'm', chunks: 20, intervalMs: 1 }));
  const server = await listen(app);
  try {
    const body = await abortedStream(server.port, CHAT, {}, { kind: 'after-bytes', bytes: Number.MAX_SAFE_INTEGER });
    expect(body.toString()).toContain(chatEvent('m', undefined, 'stop'));
    await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`, { status: 'success' }) === 1);
    expect(fromSnapshot(await snapshot(registry), `${P}_output_tokens_total`)).toBe(truth.tokensWritten);
  } finally {
    await server.close();
  }
});
