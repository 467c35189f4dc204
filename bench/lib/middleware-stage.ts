import { EventEmitter } from 'node:events';
import { Registry } from 'prom-client';
import type * as Lib from '../../lib';
import { FakeResponse } from './fake-response';
import { loadLibModule } from './server-configs';

/** Adds a stage row: `run(r)` reads r whole responses and returns something derived from the work. */
export type AddStage = (group: string, name: string, run: (responses: number) => number) => void;

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

/** Responses in flight at once in the interleaved rows: the side-by-side bench's concurrencies. */
const INTERLEAVED = [64, 512];

/**
 * The public middleware on fake requests and responses: what a user pays per chunk, minus Node's own HTTP work.
 * Loaded like the bench servers load it (BENCH_LIB_DIR: a tsc build, what users run). The interleaved rows keep
 * many responses in flight, one write each in turn, as a server interleaves its streams: per-response objects are
 * then cold in the CPU caches at every write, which a one-response loop never shows. Each has a row of the fake
 * response alone to subtract.
 */
export async function addMiddlewareStages(add: AddStage, model: string, events: readonly string[]): Promise<void> {
  const { dynamoMetrics } = await loadLibModule<typeof Lib>('index');
  const middleware = dynamoMetrics({ registry: new Registry() }) as unknown as (q: unknown, s: unknown, next: () => void) => void;
  const body = { model, stream: true, messages: [] };
  const observed = (): FakeResponse => {
    const req = Object.assign(new EventEmitter(), {
      method: 'POST',
      url: '/v1/chat/completions',
      originalUrl: '/v1/chat/completions',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body,
    });
    const res = new FakeResponse();
    middleware(req, res, () => undefined);
    return res;
  };
  const alone = (): FakeResponse => new FakeResponse();
  add('pipeline', 'dynamoMetrics() middleware on a fake req/res (public API)', (r) => interleaved(observed, events, r, 1));
  for (const inFlight of INTERLEAVED) {
    add('pipeline', `dynamoMetrics() on fake req/res, ${inFlight} responses interleaved`, (r) => interleaved(observed, events, r, inFlight));
    add('pipeline', `fake res alone, ${inFlight} responses interleaved (subtract from the row above)`, (r) =>
      interleaved(alone, events, r, inFlight),
    );
  }
}

/** Streams `responses` responses of `events`, `inFlight` at a time, one write per response in turn. */
function interleaved(start: () => FakeResponse, events: readonly string[], responses: number, inFlight: number): number {
  let written = 0;
  for (let k = 0; k < responses; k += inFlight) {
    const batch: FakeResponse[] = [];
    for (let j = 0; j < Math.min(inFlight, responses - k); j++) {
      const res = start();
      res.writeHead(200, SSE_HEADERS);
      batch.push(res);
    }
    for (let i = 0; i < events.length; i++) for (const res of batch) res.write(events[i] as string);
    for (const res of batch) {
      res.end();
      written += res.written;
    }
  }
  return written;
}
