/**
 * Property tests on a real Express server over real sockets: for random streams in every wire format and random
 * ways of writing them (cut at any byte, inside UTF-8 characters, between CR and LF, strings in several
 * encodings and Buffers, `end(chunk)`, callbacks), the middleware must be invisible to the client, count the same
 * whatever the cuts, count what the stream says (checked against an oracle), never throw, and call every callback.
 *
 * Replay a failure with HARDENING_SEED=<seed> (printed by fast-check with the path); HARDENING_SHRINK=1 shrinks it.
 */
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { createApp } from '../../example-app/app';
import { eventually, listen } from '../support/http';
import { checkRecord, describeBytes, ONE_WRITE, PairedServers, PER_EVENT } from '../support/paired-servers';
import type { Exchange } from '../support/paired-servers';
import { buildStream, ENDPOINT_LABEL, STREAM_FORMATS, streamSpecArbitrary } from '../support/random-streams';
import type { BuiltStream, StreamFormat, StreamSpec } from '../support/random-streams';
import { fromSnapshot, nonZeroGauges, P, snapshot } from '../support/registry-values';
import type { Snapshot } from '../support/registry-values';
import { bodyOf, rawPost } from '../support/sockets';
import { codePoints, eventOffsets } from '../support/streams';
import { writePlanArbitrary } from '../support/write-plans';
import type { WritePlan } from '../support/write-plans';

const SEED = Number(process.env.HARDENING_SEED ?? 20261127);
const RUNS_PER_FORMAT = Number(process.env.HARDENING_RUNS ?? 100);
const SHRINK = process.env.HARDENING_SHRINK === '1';
const PROXY_RUNS_PER_FORMAT = Math.ceil(RUNS_PER_FORMAT / 4);


const servers = new PairedServers();
beforeAll(() => servers.start());
afterAll(() => servers.close());

function exchange(stream: BuiltStream, plan: WritePlan, countTokens: ((text: string) => number) | undefined | 'bare'): Promise<Exchange> {
  const body = { path: stream.path, contentType: stream.contentType, bytes: Buffer.from(stream.body, 'utf8'), boundaries: eventOffsets(stream.events) };
  return servers.exchange(body, plan, countTokens === 'bare' ? undefined : countTokens === undefined ? {} : { countTokens });
}

function checkOracle(spec: StreamSpec, stream: BuiltStream, shot: Snapshot): void {
  const model = { model: spec.model };
  const expectations: [string, number, number][] = [
    ['output_tokens_total', fromSnapshot(shot, `${P}_output_tokens_total`, model), stream.expected.outputTokens],
    ['output_tokens_overcount_total', fromSnapshot(shot, `${P}_output_tokens_overcount_total`, model), stream.expected.overcount],
    ['input_tokens_total', fromSnapshot(shot, `${P}_input_tokens_total`, model), stream.expected.inputTokens],
    [
      'requests_total{success}',
      fromSnapshot(shot, `${P}_requests_total`, { ...model, endpoint: ENDPOINT_LABEL[spec.format], status: 'success', error_type: '' }),
      1,
    ],
    ['requests_started_total', fromSnapshot(shot, `${P}_requests_started_total`, model), 1],
    ['requests_finished_total{stop}', fromSnapshot(shot, `${P}_requests_finished_total`, { ...model, finish_reason: 'stop' }), 1],
    ['gauge series not back to 0', nonZeroGauges(shot).length, 0],
    ['parse_errors_total', fromSnapshot(shot, `${P}_parse_errors_total`), 0],
  ];
  const wrong = expectations.filter(([, actual, expected]) => actual !== expected);
  if (wrong.length > 0) {
    throw new Error(`contract violated: ${wrong.map(([name, actual, expected]) => `${name} = ${actual}, expected ${expected}`).join('; ')}`);
  }
}

/** Totals across all runs, for docs/reliability.md. */
const totals = { proxied: 0, streams: 0, exchanges: 0, bytesCompared: 0, writes: 0, callbacks: 0 };

async function checkOne(spec: StreamSpec, planA: WritePlan, planB: WritePlan, exactCounter: boolean): Promise<void> {
  const stream = buildStream(spec);
  const countTokens = exactCounter ? codePoints : undefined;
  const plain = await exchange(stream, planA, 'bare');
  const a = await exchange(stream, planA, countTokens);
  const b = await exchange(stream, planB, countTokens);
  totals.streams++;
  totals.exchanges += 3;
  totals.writes += plain.record.writes + a.record.writes + b.record.writes;
  totals.callbacks += plain.record.callbacksGiven + a.record.callbacksGiven + b.record.callbacksGiven;

  for (const [label, run] of [['bare', plain], ['metered A', a], ['metered B', b]] as const) checkRecord(label, run.record);
  // The client receives byte for byte what it receives without the middleware (status line, headers, framing, body).
  if (!plain.raw.equals(a.raw)) throw new Error(`client bytes differ with the middleware: ${describeBytes(plain.raw, a.raw)}`);
  totals.bytesCompared += a.raw.length;
  const expectedBody = Buffer.from(stream.body, 'utf8');
  for (const [label, run] of [['bare', plain], ['metered B', b]] as const) {
    const body = bodyOf(run.raw);
    if (!body.equals(expectedBody)) throw new Error(`${label}: body is not what was written: ${describeBytes(expectedBody, body)}`);
  }
  const unexpected = [...a.errors, ...b.errors];
  if (unexpected.length > 0) throw new Error(`onError on a valid stream: ${unexpected.map((e) => `${e.code}: ${e.message}`).join('; ')}`);

  const shotA = await snapshot(a.registry as Registry);
  const shotB = await snapshot(b.registry as Registry);
  expect(shotB).toEqual(shotA);
  if (exactCounter) checkOracle(spec, stream, shotA);
}

function assertOptions(runs: number): fc.Parameters<unknown> {
  return { seed: SEED, numRuns: runs, endOnFailure: !SHRINK, verbose: 1 };
}

describe.each(STREAM_FORMATS)('%s: random streams written in random pieces', (format: StreamFormat) => {
  test('client bytes unchanged, counts independent of the cuts and equal to the oracle, callbacks called', async () => {
    await fc.assert(
      fc.asyncProperty(streamSpecArbitrary(format), writePlanArbitrary, writePlanArbitrary, fc.boolean(), checkOne),
      assertOptions(RUNS_PER_FORMAT) as fc.Parameters<[StreamSpec, WritePlan, WritePlan, boolean]>,
    );
  }, Math.max(60_000, RUNS_PER_FORMAT * 1000));
});

/**
 * With a small maxEventBytes some events of the same streams are too large: which ones, and so every counter, must
 * still not depend on how the bytes were cut.
 */
describe.each(STREAM_FORMATS)('%s: random streams past a small maxEventBytes (unary: maxBodyBytes)', (format: StreamFormat) => {
  test('every counter independent of the cuts', async () => {
    await fc.assert(
      fc.asyncProperty(streamSpecArbitrary(format), writePlanArbitrary, writePlanArbitrary, fc.nat(), fc.integer({ min: -12, max: 12 }), async (spec, planA, planB, pick, offset) => {
        const stream = buildStream(spec);
        // Around the size of one of the stream's own events, where "fits" and "too large" meet.
        const near = Math.max(16, (stream.events[pick % stream.events.length] as string).length + offset);
        const limits = format === 'unary' ? { maxBodyBytes: Math.max(16, Buffer.byteLength(stream.body) + offset) } : { maxEventBytes: near };
        const body = { path: stream.path, contentType: stream.contentType, bytes: Buffer.from(stream.body, 'utf8'), boundaries: eventOffsets(stream.events) };
        const a = await servers.exchange(body, planA, { countTokens: codePoints, ...limits });
        const b = await servers.exchange(body, planB, { countTokens: codePoints, ...limits });
        checkRecord('A', a.record);
        checkRecord('B', b.record);
        expect(await snapshot(b.registry as Registry)).toEqual(await snapshot(a.registry as Registry));
      }),
      assertOptions(PROXY_RUNS_PER_FORMAT) as fc.Parameters<[StreamSpec, WritePlan, WritePlan, number, number]>,
    );
  }, Math.max(60_000, PROXY_RUNS_PER_FORMAT * 1000));
});

/**
 * The proxy recipe: the same random streams, written in random pieces by an upstream (the app without the
 * middleware) and piped through the example app's http-proxy-middleware gateway, which re-chunks them as TCP
 * delivers them. The client gets the upstream's body unchanged and the counts match the oracle.
 */
describe.each(STREAM_FORMATS)('%s: random streams through the example proxy', (format: StreamFormat) => {
  test('body unchanged, counts equal to the oracle', async () => {
    await fc.assert(
      fc.asyncProperty(streamSpecArbitrary(format), writePlanArbitrary, async (spec, plan) => {
        const stream = buildStream(spec);
        const bytes = Buffer.from(stream.body, 'utf8');
        const queued = servers.queueUpstream({ path: stream.path, contentType: stream.contentType, bytes, boundaries: eventOffsets(stream.events) }, { ...plan, http10: false });
        const registry = new Registry();
        const gateway = await listen(createApp({ registry, upstream: { url: servers.upstreamUrl, timeoutMs: 10_000 }, metrics: { countTokens: codePoints } }));
        try {
          const raw = await rawPost(gateway.port, queued.path, JSON.stringify({ model: spec.model, stream: format !== 'unary' }));
          const body = bodyOf(raw);
          if (!body.equals(bytes)) throw new Error(`body changed through the proxy: ${describeBytes(bytes, body)}`);
          const record = queued.record();
          if (record === undefined) throw new Error('the upstream never ran');
          await record.done;
          checkRecord('upstream', record);
          await eventually(async () => fromSnapshot(await snapshot(registry), `${P}_requests_total`) === 1, 3000);
          checkOracle(spec, stream, await snapshot(registry));
          totals.proxied++;
        } finally {
          queued.release();
          await gateway.close();
        }
      }),
      assertOptions(PROXY_RUNS_PER_FORMAT) as fc.Parameters<[StreamSpec, WritePlan]>,
    );
  }, Math.max(60_000, PROXY_RUNS_PER_FORMAT * 1000));
});

/**
 * chunk-shape.ts skips JSON.parse for an event shaped like an earlier plain text delta. Written one event per write
 * or in one piece, a stream must count the same, and what the oracle says (events/chunk-shape.test.ts holds the shape to
 * the full path event by event, under any cuts).
 */
describe('the chunk-shape shortcut never changes what is counted', () => {
  // Mostly texts the shortcut takes; some it must refuse (quotes, backslashes, control characters).
  const plainText = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(' the', ' cat', 'Héllo', '你好', '🌍', ' naïve', '日本語', '\u2028', 'Ω', ' x', 'data: x') },
    { weight: 1, arbitrary: fc.constantFrom('"', '\\', 'a\nb', '\t', 'é"', ' \\"', '\r') },
  );
  const shortcutFormats: StreamFormat[] = ['chat', 'completions', 'anthropic'];

  test.each(shortcutFormats)('%s', async (format) => {
    const parse = jest.spyOn(JSON, 'parse');
    let events = 0;
    let parsedPerEvent = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          streamSpecArbitrary(format).chain((spec) =>
            fc
              .array(fc.record({ text: plainText, tokens: fc.integer({ min: 1, max: 3 }) }), {
                minLength: 5,
                maxLength: 30,
              })
              .map((deltas) => ({
                ...spec,
                // What engines send: LF, no logprobs or per-chunk usage, runs of deltas of one choice.
                lineEnd: '\n' as const,
                logprobs: false,
                usage: spec.usage === 'continuous' ? ('final' as const) : spec.usage,
                asciiJson: false,
                comments: false,
                splitData: false,
                deltas: deltas.map((d, i) => ({ ...d, choice: Math.floor(i / 6) % spec.choices, reasoning: false })),
              })),
          ),
          async (spec) => {
            const stream = buildStream(spec);
            parse.mockClear();
            const perEvent = await exchange(stream, PER_EVENT, codePoints);
            events += stream.events.length;
            parsedPerEvent += parse.mock.calls.length;
            const whole = await exchange(stream, ONE_WRITE, codePoints);
            expect(perEvent.errors).toEqual([]);
            const shot = await snapshot(perEvent.registry as Registry);
            expect(shot).toEqual(await snapshot(whole.registry as Registry));
            checkOracle(spec, stream, shot);
          },
        ),
        assertOptions(40) as fc.Parameters<[StreamSpec]>,
      );
    } finally {
      parse.mockRestore();
    }
    // Only meaningful if the shortcut was taken: far fewer JSON.parse calls than events.
    process.stdout.write(`chunk-shape ${format}: ${parsedPerEvent} JSON.parse calls for ${events} events written one per write\n`);
    expect(parsedPerEvent).toBeLessThan(events * 0.7);
  }, 60_000);
});

afterAll(() => {
  // Figures for docs/reliability.md.
  process.stdout.write(`hardening-properties: ${JSON.stringify(totals)}\n`);
});
