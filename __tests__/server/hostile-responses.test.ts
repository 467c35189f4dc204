/**
 * Hostile responses: random bytes, garbage JSON inside valid SSE, an event that never ends, an oversized unary
 * body, deeply nested JSON, absurd usage values. The server never crashes, the client gets its bytes untouched,
 * `parse_errors_total{reason}` says what happened, counting resumes at the next good event, and memory stays
 * bounded while a 50 MB event that never ends streams through.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import type { DynamoMetricsError } from '../../lib';
import { garbageCollector, heapAfterGc, MB } from '../support/gc';
import { listen } from '../support/http';
import { checkRecord, describeBytes, ONE_WRITE, PairedServers, PER_EVENT } from '../support/paired-servers';
import type { BodyToWrite, Exchange, MiddlewareOptions } from '../support/paired-servers';
import { buildStream, ENDPOINT_LABEL } from '../support/random-streams';
import type { StreamFormat, StreamSpec } from '../support/random-streams';
import { fromSnapshot, nonZeroGauges, P, snapshot } from '../support/registry-values';
import type { Snapshot } from '../support/registry-values';
import { bodyOf } from '../support/sockets';
import { codePoints, eventOffsets, sse } from '../support/streams';
import { writePlanArbitrary } from '../support/write-plans';
import type { WritePlan } from '../support/write-plans';

const SEED = Number(process.env.HARDENING_SEED ?? 20261127);
const CHAT = '/v1/chat/completions';
const SSE_TYPE = 'text/event-stream; charset=utf-8';

const servers = new PairedServers();
beforeAll(() => servers.start());
afterAll(() => servers.close());

const figures: Record<string, unknown> = {};
afterAll(() => process.stdout.write(`hardening-hostile: ${JSON.stringify(figures)}\n`));

/** The same body through both apps: the client's bytes must match exactly, nothing may throw. */
async function both(body: BodyToWrite, plan: WritePlan, options: MiddlewareOptions = { countTokens: codePoints }): Promise<{ metered: Exchange; shot: Snapshot }> {
  const bare = await servers.exchange(body, plan);
  const metered = await servers.exchange(body, plan, options);
  checkRecord('bare', bare.record);
  checkRecord('metered', metered.record);
  if (!bare.raw.equals(metered.raw)) throw new Error(`client bytes differ with the middleware: ${describeBytes(bare.raw, metered.raw)}`);
  const sent = bodyOf(metered.raw);
  if (!sent.equals(body.bytes)) throw new Error(`body is not what was written: ${describeBytes(body.bytes, sent)}`);
  const internal = metered.errors.filter((e) => e.code === 'internal');
  if (internal.length > 0) throw new Error(`the middleware failed internally: ${String(internal[0]?.cause ?? internal[0]?.message)}`);
  return { metered, shot: await snapshot(metered.registry as Registry) };
}

const parseErrors = (shot: Snapshot, reason: string): number => fromSnapshot(shot, `${P}_parse_errors_total`, { reason });
const output = (shot: Snapshot): number => fromSnapshot(shot, `${P}_output_tokens_total`);

function expectEndedCleanly(shot: Snapshot, errorType = ''): void {
  expect(fromSnapshot(shot, `${P}_requests_total`)).toBe(1);
  expect(fromSnapshot(shot, `${P}_requests_total`, { error_type: errorType })).toBe(1);
  expect(nonZeroGauges(shot)).toEqual([]);
}

const chunk = (content: string | undefined, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: content === undefined ? [] : [{ index: 0, delta: { content }, finish_reason: null }],
  ...extra,
});
const FINISH = sse({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
const DONE = 'data: [DONE]\n\n';

function sseBody(text: string, path = CHAT): BodyToWrite {
  return { path, contentType: SSE_TYPE, bytes: Buffer.from(text, 'utf8') };
}

/** Cuts every `size` bytes. */
function everyBytes(bytes: number, size: number): WritePlan {
  const cuts: number[] = [];
  for (let at = size; at < bytes; at += size) cuts.push((at - 1) / (bytes - 2));
  return { ...ONE_WRITE, cuts, kinds: ['buffer', 'utf8', 'latin1'] };
}

describe('random bytes', () => {
  const fragments = fc.constantFrom('data: ', 'data:', 'event: x\n', '\n', '\r', '\r\n', '\n\n', '{"choices":[', '{', '"content":"', ']}', ': c\n', '\ufeff', '[DONE]');
  // Small limits too, so that random input crosses them.
  const smallLimits = fc.record({ maxEventBytes: fc.constantFrom(1024 * 1024, 64, 300), maxBodyBytes: fc.constantFrom(8 * 1024 * 1024, 500) });
  const hostileBytes = fc
    .array(fc.oneof(fc.uint8Array({ maxLength: 200, size: 'max' }), fragments.map((f) => new Uint8Array(Buffer.from(f)))), { maxLength: 30, size: 'max' })
    .map((parts) => Buffer.concat(parts));

  test.each([
    ['an event stream', SSE_TYPE, CHAT],
    ['a JSON body', 'application/json', CHAT],
    ['an Anthropic event stream', SSE_TYPE, '/v1/messages'],
    ['a Responses event stream', SSE_TYPE, '/v1/responses'],
  ])('as %s: client bytes untouched, one request counted, nothing thrown, counters independent of the cuts', async (label, contentType, path) => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(hostileBytes, writePlanArbitrary, writePlanArbitrary, smallLimits, async (bytes, plan, otherPlan, limits) => {
        const options = { countTokens: codePoints, ...limits };
        const { shot } = await both({ path, contentType, bytes }, plan, options);
        runs++;
        // Every counter's final value is independent of the cuts, for garbage too (parse errors included).
        const other = await servers.exchange({ path, contentType, bytes }, otherPlan, options);
        expect(await snapshot(other.registry as Registry)).toEqual(shot);
        expect(fromSnapshot(shot, `${P}_requests_total`)).toBe(1);
        expect(nonZeroGauges(shot)).toEqual([]);
        expect(Number.isFinite(output(shot))).toBe(true);
      }),
      { seed: SEED, numRuns: 40, endOnFailure: true, verbose: 1 },
    );
    figures[`randomBytes ${label}`] = runs;
  }, 30_000);
});

describe('valid SSE with garbage JSON', () => {
  test('each bad event is counted by reason and counting resumes at the next good event', async () => {
    const text = [
      sse(chunk('', { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] })),
      sse(chunk('ab')),
      'data: {not json\n\n',
      'data: {"choices":[{"delta":{"content":\n\n',
      sse(chunk('cde')),
      'data: 42\n\n',
      'data: "a string"\n\n',
      'data: null\n\n',
      'data: []\n\n',
      'data: {"choices":[{"delta":{"content":"\u0000"}}]}\n\n'.replace('\u0000', '\\u00'),
      sse(chunk('f')),
      FINISH,
      DONE,
    ].join('');
    for (const plan of [ONE_WRITE, everyBytes(Buffer.byteLength(text), 7)]) {
      const { shot } = await both(sseBody(text), plan);
      expect(parseErrors(shot, 'invalid_json')).toBe(3);
      expect(parseErrors(shot, 'unexpected_shape')).toBe(4);
      expect(output(shot)).toBe(6);
      expectEndedCleanly(shot);
    }
  });

  const base: Omit<StreamSpec, 'format'> = {
    model: 'm',
    choices: 1,
    deltas: ['Hé', 'llo', ' 世界', ' 🌍', '!'].map((text) => ({ choice: 0, text, tokens: 1, reasoning: false })),
    usage: 'none',
    logprobs: false,
    promptTokens: 10,
    lineEnd: '\n',
    bom: false,
    comments: false,
    splitData: false,
    spaceAfterColon: true,
    asciiJson: false,
  };

  test.each<StreamFormat>(['chat', 'completions', 'responses', 'anthropic'])('%s: garbage between good events', async (format) => {
    const stream = buildStream({ ...base, format });
    const garbage = format === 'responses' || format === 'anthropic' ? 'event: content_block_delta\ndata: {"type":\n\n' : 'data: {"choices":\n\n';
    // After the third event (in the middle of the text deltas) and after the fifth.
    const events = [...stream.events.slice(0, 3), garbage, ...stream.events.slice(3, 5), garbage, ...stream.events.slice(5)];
    const body = { path: stream.path, contentType: stream.contentType, bytes: Buffer.from(events.join('')), boundaries: eventOffsets(events) };
    for (const plan of [PER_EVENT, everyBytes(body.bytes.length, 5)]) {
      const { shot } = await both(body, plan);
      expect(parseErrors(shot, 'invalid_json')).toBe(2);
      expect(output(shot)).toBe(stream.expected.outputTokens);
      expect(fromSnapshot(shot, `${P}_requests_total`, { endpoint: ENDPOINT_LABEL[format], status: 'success' })).toBe(1);
      expectEndedCleanly(shot);
    }
  });
});

describe('an event that never ends', () => {
  const limits = { countTokens: codePoints, maxEventBytes: 64 * 1024 };

  test.each([
    ['one long line', (n: number) => `data: {"choices":[{"index":0,"delta":{"content":"${'x'.repeat(n)}"}}]}\n\n`],
    ['many data lines without the blank line', (n: number) => `${'data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n'.repeat(Math.ceil(n / 50))}\n`],
  ])('%s past maxEventBytes is skipped once, and the next good event counts', async (_label, oversized) => {
    const text = sse(chunk('ab')) + oversized(300 * 1024) + sse(chunk('cde')) + FINISH + DONE;
    for (const plan of [ONE_WRITE, everyBytes(Buffer.byteLength(text), 4096), everyBytes(Buffer.byteLength(text), 100_000)]) {
      const { shot } = await both(sseBody(text), plan, limits);
      expect(output(shot)).toBe(5);
      expectEndedCleanly(shot);
      expect(parseErrors(shot, 'event_too_large')).toBe(1);
    }
  });

  test.each([
    ['an event: line', (n: number) => `event: ${'y'.repeat(n)}\n\n`],
    ['a comment line', (n: number) => `: ${'y'.repeat(n)}\n\n`],
  ])('%s past maxEventBytes: parse_errors_total does not depend on how the bytes were split', async (_label, oversized) => {
    const text = sse(chunk('ab')) + oversized(300 * 1024) + sse(chunk('cde')) + FINISH + DONE;
    const counts: number[] = [];
    for (const plan of [ONE_WRITE, everyBytes(Buffer.byteLength(text), 4096), everyBytes(Buffer.byteLength(text), 100_000)]) {
      const { shot } = await both(sseBody(text), plan, limits);
      expect(output(shot)).toBe(5);
      expectEndedCleanly(shot);
      counts.push(parseErrors(shot, 'event_too_large'));
    }
    // Every counter's final value is independent of the cuts, parse_errors_total included.
    expect(new Set(counts).size).toBe(1);
    expect(counts[0]).toBeLessThanOrEqual(1);
  });

  test('an event whose data fits maxEventBytes is counted however its line is split (the limit is one rule)', async () => {
    const data = JSON.stringify(chunk('hello'));
    // The data fits; "data: " + data does not: whole or split, the event must be treated the same way.
    const limit = { countTokens: codePoints, maxEventBytes: data.length + 2 };
    const text = `data: ${data}\n\n` + DONE;
    const counts: number[][] = [];
    for (const plan of [ONE_WRITE, everyBytes(Buffer.byteLength(text), data.length + 4), everyBytes(Buffer.byteLength(text), 16)]) {
      const { shot } = await both(sseBody(text), plan, limit);
      counts.push([output(shot), parseErrors(shot, 'event_too_large')]);
    }
    expect(counts).toEqual([counts[0], counts[0], counts[0]]);
    expect(counts[0]).toEqual([5, 0]);
  });

  test('a line end right after a dropped partial line does not end the oversized event', async () => {
    // The long line goes on in a second write, and its line end starts a third one: that is not a blank line.
    const writes = ['data: ' + 'x'.repeat(70_000), 'yyy', '\ndata: {"choices":[{"index":0,"delta":{"content":"phantom"}}]}\n\n', sse(chunk('ab')), FINISH, DONE];
    const body = { path: CHAT, contentType: SSE_TYPE, bytes: Buffer.from(writes.join('')), boundaries: eventOffsets(writes) };
    const { shot } = await both(body, PER_EVENT, limits);
    expect(parseErrors(shot, 'event_too_large')).toBe(1);
    expect(output(shot)).toBe(2);
    expectEndedCleanly(shot);
  });

  test('a stream cut inside an oversized event ends as internal, with what came before counted', async () => {
    const text = sse(chunk('ab')) + `data: {"choices":[{"delta":{"content":"${'z'.repeat(200 * 1024)}`;
    const { shot } = await both(sseBody(text), everyBytes(Buffer.byteLength(text), 8192), limits);
    expect(output(shot)).toBe(2);
    expect(parseErrors(shot, 'event_too_large')).toBe(1);
    expectEndedCleanly(shot, 'internal');
  });
});

describe('a unary body past maxBodyBytes', () => {
  test('its text is skipped, its usage still read; parse_errors says body_too_large', async () => {
    const body = JSON.stringify({
      id: 'c1',
      object: 'chat.completion',
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'w '.repeat(10_000) }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 3, completion_tokens: 7, total_tokens: 10 },
    });
    for (const plan of [ONE_WRITE, everyBytes(body.length, 1000)]) {
      const { shot } = await both({ path: CHAT, contentType: 'application/json', bytes: Buffer.from(body) }, plan, {
        countTokens: codePoints,
        maxBodyBytes: 4096,
      });
      expect(parseErrors(shot, 'body_too_large')).toBe(1);
      expect(output(shot)).toBe(7);
      expect(fromSnapshot(shot, `${P}_input_tokens_total`)).toBe(3);
      expect(fromSnapshot(shot, `${P}_requests_total`, { request_type: 'unary', status: 'success' })).toBe(1);
      expectEndedCleanly(shot);
    }
  });
});

describe('deeply nested JSON', () => {
  const depth = 100_000;
  test.each([
    ['100k unclosed [', '['.repeat(depth), 'invalid_json'],
    ['100k balanced []', '['.repeat(depth) + ']'.repeat(depth), 'unexpected_shape'],
    ['100k unclosed {"a":', '{"a":'.repeat(depth), 'invalid_json'],
  ])('%s in an event: skipped and counted by reason, the next good event counts', async (_label, nested, reason) => {
    const text = sse(chunk('ab')) + `data: ${nested}\n\n` + sse(chunk('cde')) + FINISH + DONE;
    const { shot } = await both(sseBody(text), everyBytes(Buffer.byteLength(text), 16 * 1024));
    expect(parseErrors(shot, reason)).toBe(1);
    expect(output(shot)).toBe(5);
    expectEndedCleanly(shot);
  });

  test('100k balanced {"a":…} objects inside a good chunk: its text still counts', async () => {
    const nested = '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    const text = sse(chunk('ab')) + `data: {"choices":[{"index":0,"delta":{"content":"cd"},"x":${nested}}]}\n\n` + FINISH + DONE;
    const { shot } = await both(sseBody(text), ONE_WRITE);
    expect(output(shot)).toBe(4);
    expectEndedCleanly(shot);
  });

  test('a unary body of 100k [ is invalid_json', async () => {
    const { shot } = await both({ path: CHAT, contentType: 'application/json', bytes: Buffer.from('['.repeat(depth)) }, ONE_WRITE);
    expect(parseErrors(shot, 'invalid_json')).toBe(1);
    expect(output(shot)).toBe(0);
    expectEndedCleanly(shot);
  });
});

describe('absurd usage values', () => {
  test('OpenAI continuous usage: 1e308, negative, strings, Infinity, fractions, null, going backwards', async () => {
    const usage = (completion: unknown, prompt: unknown = 11): Record<string, unknown> => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: 1 });
    const text = [
      sse(chunk('', { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }], usage: usage(0, -1) })),
      sse(chunk('ab', { usage: usage(2) })),
      sse(chunk('c', { usage: usage(1e308) })),
      sse(chunk('d', { usage: usage(-5) })),
      sse(chunk('e', { usage: usage('12') })),
      // 1e999 parses to Infinity.
      `data: ${JSON.stringify(chunk('f', { usage: usage(0) })).replace('"completion_tokens":0', '"completion_tokens":1e999')}\n\n`,
      sse(chunk('g', { usage: usage(1.5) })),
      sse(chunk('h', { usage: usage(null) })),
      sse(chunk('i', { usage: usage(9) })),
      sse(chunk('j', { usage: usage(3) })),
      sse(chunk(undefined, { usage: usage(100) })),
      FINISH,
      DONE,
    ].join('');
    const { shot } = await both(sseBody(text), everyBytes(Buffer.byteLength(text), 33));
    // Six bad completion counts and one bad prompt count; one count going backwards.
    expect(parseErrors(shot, 'invalid_usage')).toBe(7);
    expect(parseErrors(shot, 'usage_backwards')).toBe(1);
    // The final usage is authoritative and above everything counted live: the counter ends exactly there.
    expect(output(shot)).toBe(100);
    expect(fromSnapshot(shot, `${P}_output_tokens_overcount_total`)).toBe(0);
    expect(fromSnapshot(shot, `${P}_input_tokens_total`)).toBe(11);
    expectEndedCleanly(shot);
  });

  test('Anthropic: a string input_tokens and a 1e308 output_tokens are skipped, the next good usage counts', async () => {
    const event = (type: string, fields: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`;
    const text = [
      event('message_start', { message: { id: 'm1', type: 'message', role: 'assistant', content: [], model: 'claude-x', usage: { input_tokens: '25', output_tokens: 1 } } }),
      event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'abc' } }),
      event('message_delta', { delta: { stop_reason: null }, usage: { output_tokens: 1e308 } }),
      event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 7 } }),
      event('message_stop', {}),
    ].join('');
    const { shot } = await both(sseBody(text, '/v1/messages'), everyBytes(Buffer.byteLength(text), 10));
    expect(parseErrors(shot, 'invalid_usage')).toBe(2);
    expect(output(shot)).toBe(7);
    expect(fromSnapshot(shot, `${P}_input_tokens_total`)).toBe(0);
    expectEndedCleanly(shot);
  });

  test('Responses: a negative output_tokens is skipped; what was counted live stays', async () => {
    const event = (type: string, fields: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`;
    const response = { id: 'r1', object: 'response', model: 'gpt-x', output: [] };
    const text = [
      event('response.created', { response: { ...response, status: 'in_progress' } }),
      event('response.output_text.delta', { delta: 'abcd', logprobs: [] }),
      event('response.completed', { response: { ...response, status: 'completed', usage: { input_tokens: 5, output_tokens: -3 } } }),
    ].join('');
    const { shot } = await both(sseBody(text, '/v1/responses'), ONE_WRITE);
    expect(parseErrors(shot, 'invalid_usage')).toBe(1);
    expect(output(shot)).toBe(4);
    expectEndedCleanly(shot);
  });
});

describe('memory while 50 MB that must not be buffered streams through', () => {
  interface Run {
    retained: number;
    peak: number;
    heapBefore: number;
    samples: number;
    shot: Snapshot;
    errors: DynamoMetricsError[];
  }

  /** Streams `head`, then 50 MB of `x` in 64 KiB Buffers (with backpressure), then `tail`; samples the heap after GC. */
  async function stream50MB(contentType: string, head: string, tail: string): Promise<Run> {
    const gc = garbageCollector();
    const total = 50 * MB;
    const piece = 'x'.repeat(64 * 1024);
    const registry = new Registry();
    const errors: DynamoMetricsError[] = [];
    const samples: number[] = [];
    let peakHeap = 0;
    let heapBefore = 0;
    const app = express();
    app.use(dynamoMetrics({ registry, countTokens: codePoints, onError: (e) => errors.push(e) }));
    app.use((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      void (async () => {
        res.writeHead(200, { 'Content-Type': contentType });
        res.write(head);
        heapBefore = heapAfterGc(gc);
        for (let sent = 0, i = 1; sent < total; sent += piece.length, i++) {
          // A fresh Buffer per write, as a proxy pipes them (one shared string would cost nothing to keep).
          if (!res.write(Buffer.from(piece))) await new Promise((resolve) => res.once('drain', resolve));
          peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
          if (i % 80 === 0) samples.push(heapAfterGc(gc) - heapBefore);
        }
        res.end(tail);
      })();
    });
    const server = await listen(app);
    try {
      const received = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server.port, path: CHAT, method: 'POST', agent: false }, (res) => {
          let bytes = 0;
          res.on('data', (part: Buffer) => (bytes += part.length));
          res.on('end', () => resolve(bytes));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end('{}');
      });
      expect(received).toBeGreaterThan(total);
      return { retained: retainedGrowth(samples), peak: peakHeap - heapBefore, heapBefore, samples: samples.length, shot: await snapshot(registry), errors };
    } finally {
      await server.close();
    }
  }

  /**
   * The largest growth of the heap (after GC) over its lowest point so far. Memory the rest of the test file left
   * may be freed while the stream runs (the heap dips below the start); measured from the lowest point before each
   * sample, such a dip neither hides growth that follows it nor counts as growth when it comes after the peak.
   */
  function retainedGrowth(samples: number[]): number {
    let floor = 0;
    let growth = 0;
    for (const sample of samples) {
      floor = Math.min(floor, sample);
      growth = Math.max(growth, sample - floor);
    }
    return growth;
  }

  const figure = (run: Run): Record<string, number> => ({
    heapBeforeMB: +(run.heapBefore / MB).toFixed(1),
    maxRetainedGrowthMB: +(run.retained / MB).toFixed(2),
    peakHeapAboveStartMB: +(run.peak / MB).toFixed(1),
    samples: run.samples,
  });

  test('an SSE event that never ends: heap growth stays bounded (dropped at maxEventBytes, 1 MiB)', async () => {
    const run = await stream50MB(SSE_TYPE, sse(chunk('ab')) + 'data: {"choices":[{"index":0,"delta":{"content":"', '"}}]}\n\n' + sse(chunk('cde')) + FINISH + DONE);
    figures.memoryEvent = figure(run);
    // A buffered 50 MB event would hold 50+ MB of string; dropping it at 1 MiB keeps the growth small.
    expect(run.retained).toBeLessThan(8 * MB);
    expect(parseErrors(run.shot, 'event_too_large')).toBe(1);
    expect(output(run.shot)).toBe(5);
    expectEndedCleanly(run.shot);
    expect(run.errors.filter((e) => e.code === 'internal')).toEqual([]);
  }, 60_000);

  test('a unary JSON body: heap growth stays bounded (its text dropped at maxBodyBytes, 8 MiB), its usage read', async () => {
    const run = await stream50MB('application/json', '{"object":"chat.completion","model":"m","choices":[{"index":0,"message":{"content":"', '"}}],"usage":{"completion_tokens":3}}');
    figures.memoryUnary = figure(run);
    expect(run.retained).toBeLessThan(16 * MB);
    expect(parseErrors(run.shot, 'body_too_large')).toBe(1);
    expect(output(run.shot)).toBe(3);
    expectEndedCleanly(run.shot);
  }, 60_000);
});
