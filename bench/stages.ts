import { performance } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { Counter, Histogram, Registry } from 'prom-client';
import { createParser } from 'eventsource-parser';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  GenAiRecorder,
  ResponseTextDecoder,
  RequestState,
  SseParser,
  estimateTokens,
  hookResponse,
  openAiReader,
  requestContext,
} from './lib/internals';
import type { ObservationSink, ResponseListener } from './lib/internals';
import { FakeResponse } from './lib/fake-response';
import { addMiddlewareStages } from './lib/middleware-stage';
import { loadFixture, proxyShaped } from './lib/fixture';
import { pipelineReader } from './lib/pipeline';
import { formatTable, median } from './lib/stats';
import { runMain } from './lib/entry';
import { buildLibForBench } from './lib/procs';

/**
 * `npm run bench:stages`: the per-chunk cost of each stage of the hot path, measured in-process over the same
 * 304-event response the side-by-side bench streams (role, 300 one-token chunks, finish, usage, `[DONE]`).
 *
 * Every stage runs over whole responses (fresh per-response objects, as the middleware creates them), so
 * per-request work is amortised over the events exactly as in production; figures are ns per event, the median of
 * several timed repetitions after warm-up. "Standard" rows measure the building blocks the lib could use; "lib"
 * rows call the lib's own modules, so a change there shows up here directly.
 *
 * The pipeline rows read the response in three write shapes: one string per event (a handler), one Buffer per event
 * (a proxy that keeps up) and proxy-shaped Buffers (events merged and cut, as a proxy that lags writes them).
 * `STAGES_ONLY=<text>` keeps the rows whose group or name contains the text. `--dist`: the whole-path rows (the
 * response reader and the public middleware) run lib/ compiled by tsc, what users run; through tsx every imported
 * binding is a getter, which inflates them.
 *
 * Time is the process's CPU time, not wall time: on a shared 2-core machine this process often gets half a core,
 * and wall time then measures the neighbours rather than the stage.
 */

interface Fixture {
  model: string;
  events: string[];
  buffers: Buffer[];
  /** The `data:` payload of each event. */
  data: string[];
  /** The generated text of each event ('' when it has none). */
  deltas: string[];
  /** The whole response's bytes as a proxy gateway writes them: network reads of several events, cut anywhere. */
  proxyWrites: Buffer[];
}

interface Stage {
  group: string;
  name: string;
  /** Runs `responses` whole responses; returns something derived from the work so it cannot be optimised away. */
  run(responses: number): number;
}

interface Measured {
  group: string;
  name: string;
  nsPerEvent: number;
  minNsPerEvent: number;
}

const REPETITIONS = Number(process.env.STAGES_REPETITIONS) || 9;
const TARGET_MS = Number(process.env.STAGES_TARGET_MS) || 60;
const SECTION_TIMEOUT_MS = 20_000;
const TOTAL_TIMEOUT_MS = 120_000;

let blackhole = 0;

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

/** How many responses make one repetition last about TARGET_MS. */
function calibrate(stage: Stage): number {
  const startedAt = performance.now();
  for (let i = 0; i < 3; i++) blackhole += stage.run(20);
  let responses = 20;
  for (let i = 0; i < 12; i++) {
    const t0 = process.hrtime.bigint();
    blackhole += stage.run(responses);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms >= TARGET_MS / 4 || performance.now() - startedAt > SECTION_TIMEOUT_MS) {
      return Math.max(1, Math.round((responses * TARGET_MS) / Math.max(ms, 0.001)));
    }
    responses *= 4;
  }
  return responses;
}

/**
 * Repetitions go round-robin over all stages: on a noisy machine a slow spell then hits every stage a little
 * instead of one stage a lot, so the ranking survives even when absolute figures drift.
 */
function measureAll(stages: readonly Stage[], eventsPerResponse: number, log: (line: string) => void): Measured[] {
  const counts = stages.map((stage) => calibrate(stage));
  const samples: number[][] = stages.map(() => []);
  const startedAt = performance.now();
  for (let rep = 0; rep < REPETITIONS && performance.now() - startedAt < TOTAL_TIMEOUT_MS; rep++) {
    stages.forEach((stage, i) => {
      const responses = counts[i] as number;
      const t0 = process.cpuUsage();
      blackhole += stage.run(responses);
      const cpu = process.cpuUsage(t0);
      (samples[i] as number[]).push(((cpu.user + cpu.system) * 1000) / (responses * eventsPerResponse));
    });
    log(`  repetition ${rep + 1}/${REPETITIONS} done`);
  }
  return stages.map((stage, i) => ({
    group: stage.group,
    name: stage.name,
    nsPerEvent: median(samples[i] as number[]),
    minNsPerEvent: Math.min(...(samples[i] as number[])),
  }));
}

const noopSink: ObservationSink = {
  responseModel: () => undefined,
  generatedTokens: () => undefined,
  statedOutputTokens: () => undefined,
  promptTokens: () => undefined,
  finishReason: () => undefined,
  completed: () => undefined,
  failed: () => undefined,
  malformed: () => undefined,
  estimate: (text) => text.length,
};

async function buildStages(fx: Fixture): Promise<Stage[]> {
  // A request whose parsed body names the model, as when express.json() runs before the middleware.
  const { events, buffers, data, deltas, model } = fx;
  const n = events.length;
  const hints = { model, stream: true };
  const stages: Stage[] = [];
  const add = (group: string, name: string, run: (responses: number) => number): void => {
    stages.push({ group, name, run });
  };

  // ---- reference ------------------------------------------------------------------------------------------------
  const identity = (s: string): number => s.length;
  add('reference', 'loop over events + one no-op call', (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) x += identity(events[i] as string);
    return x;
  });

  // ---- write hook -----------------------------------------------------------------------------------------------
  add('write hook', 'fake res.write, no wrapper', (r) => {
    const res = new FakeResponse();
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) res.write(events[i] as string);
    return res.written;
  });
  add('write hook', 'wrapper: orig.call(this, c, e, cb)', (r) => {
    const res = new FakeResponse();
    const orig = res.write;
    res.write = function (this: FakeResponse, c: string | Uint8Array, e?: unknown, cb?: unknown): boolean {
      return orig.call(this, c, e, cb);
    };
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) res.write(events[i] as string);
    return res.written;
  });
  add('write hook', 'wrapper: orig.apply(this, arguments)', (r) => {
    const res = new FakeResponse();
    const orig = res.write;
    res.write = function (this: FakeResponse): boolean {
      // eslint-disable-next-line prefer-rest-params
      return (orig as (...a: unknown[]) => boolean).apply(this, arguments as unknown as unknown[]);
    } as typeof res.write;
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) res.write(events[i] as string);
    return res.written;
  });
  const noopListener: ResponseListener = {
    onHead: () => undefined,
    onBody: () => undefined,
    onBodyEnd: () => undefined,
    onDone: () => undefined,
    onListenerError: (error) => {
      throw error;
    },
  };
  /** Whole responses written through the hook on a fake res (hook, head, writes, end), each to its own listener. */
  const hookedResponses =
    (listenerFor: () => ResponseListener) =>
    (r: number): number => {
      let x = 0;
      for (let k = 0; k < r; k++) {
        const res = new FakeResponse();
        hookResponse(res as never, listenerFor());
        res.writeHead(200, SSE_HEADERS);
        for (let i = 0; i < n; i++) res.write(events[i] as string);
        res.end();
        x += res.written;
      }
      return x;
    };
  add('write hook', 'lib hookResponse, no-op listener (per response: hook, head, writes, end)', hookedResponses(() => noopListener));

  // ---- decode ---------------------------------------------------------------------------------------------------
  const decodeAll =
    (chunks: readonly (string | Buffer)[]) =>
    (r: number): number => {
      let x = 0;
      for (let k = 0; k < r; k++) {
        const decoder = new ResponseTextDecoder();
        for (let i = 0; i < n; i++) x += decoder.write(chunks[i], undefined).length;
      }
      return x;
    };
  add('decode', 'lib ResponseTextDecoder.write(string chunk)', decodeAll(events));
  add('decode', 'lib ResponseTextDecoder.write(Buffer chunk)', decodeAll(buffers));
  add('decode', 'StringDecoder.write(Buffer)', (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) {
      const decoder = new StringDecoder('utf8');
      for (let i = 0; i < n; i++) x += decoder.write(buffers[i] as Buffer).length;
    }
    return x;
  });

  // ---- SSE parse ------------------------------------------------------------------------------------------------
  add('SSE parse', 'lib SseParser.feed (no-op handler)', (r) => {
    let x = 0;
    const handler = { onEvent: (d: string): void => void (x += d.length), onEventTooLarge: () => undefined };
    for (let k = 0; k < r; k++) {
      const parser = new SseParser(handler, 1024 * 1024);
      for (let i = 0; i < n; i++) parser.feed(events[i] as string);
    }
    return x;
  });
  add('SSE parse', 'eventsource-parser 3 feed (reference)', (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) {
      const parser = createParser({ onEvent: (e) => void (x += e.data.length) });
      for (let i = 0; i < n; i++) parser.feed(events[i] as string);
    }
    return x;
  });

  // ---- JSON + reader --------------------------------------------------------------------------------------------
  add('JSON + reader', 'JSON.parse(event data)', (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) {
      for (let i = 0; i < n; i++) {
        const d = data[i] as string;
        if (d !== '[DONE]') x += (JSON.parse(d) as { created: number }).created & 1;
      }
    }
    return x;
  });
  add('JSON + reader', 'lib openAiReader.readEvent, no-op sink (includes JSON.parse)', (r) => {
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) openAiReader.readEvent(data[i] as string, undefined, noopSink);
    return r;
  });

  // ---- count ----------------------------------------------------------------------------------------------------
  add('count', 'lib estimateTokens(delta) (default counter)', (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) if ((deltas[i] as string).length > 0) x += estimateTokens(deltas[i] as string);
    return x;
  });
  const tokenizer = await import('gpt-tokenizer');
  add('count', 'gpt-tokenizer countTokens(delta) (a countTokens option)', (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) if ((deltas[i] as string).length > 0) x += tokenizer.countTokens(deltas[i] as string);
    return x;
  });

  // ---- metric updates -------------------------------------------------------------------------------------------
  const registry = new Registry();
  const counter = new Counter({ name: 'bench_counter_total', help: 'h', labelNames: ['model'], registers: [registry] });
  const histogram = new Histogram({
    name: 'bench_histogram',
    help: 'h',
    labelNames: ['model'],
    buckets: [0, 0.0019, 0.0035, 0.0067, 0.013, 0.024, 0.045, 0.084, 0.16, 0.3, 0.56, 1.1, 2],
    registers: [registry],
  });
  add('metric update', 'performance.now()', (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) x += performance.now();
    return x;
  });
  add('metric update', 'prom-client counter.inc({ model }, 1)', (r) => {
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) counter.inc({ model }, 1);
    return r;
  });
  add('metric update', 'prom-client counter.labels(model).inc(1)', (r) => {
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) counter.labels(model).inc(1);
    return r;
  });
  add('metric update', 'prom-client cached child.inc(1)', (r) => {
    const child = counter.labels(model);
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) child.inc(1);
    return r;
  });
  add('metric update', 'prom-client histogram.observe({ model }, v)', (r) => {
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) histogram.observe({ model }, 0.004);
    return r;
  });
  add('metric update', 'prom-client cached histogram child.observe(v)', (r) => {
    const child = histogram.labels(model);
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) child.observe(0.004);
    return r;
  });
  const plain = { pending: 0 };
  add('metric update', 'plain number field += 1 (read by collect())', (r) => {
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) plain.pending += 1;
    return plain.pending;
  });

  // ---- lib request state and the whole pipeline -------------------------------------------------------------------
  const context = requestContext(new Registry());
  const readThroughState =
    (requestContextUsed: typeof context) =>
    (r: number): number => {
      for (let k = 0; k < r; k++) {
        const state = new RequestState(requestContextUsed, hints);
        state.responseStarted(true, hints);
        for (let i = 0; i < n; i++) openAiReader.readEvent(data[i] as string, undefined, state);
        state.end('finished', 200);
      }
      return r;
    };
  add('request state', 'lib openAiReader.readEvent → RequestState → metrics (start, events, end)', readThroughState(context));
  // The same with `meter` set: a real SDK MeterProvider (no reader exporting), so the difference is what a meter
  // adds per event, its per-request records spread over the events.
  const meter = new MeterProvider().getMeter('bench');
  const recorder = new GenAiRecorder(meter, { estimatedUsage: false, models: undefined, maxModels: 100, failed: () => undefined });
  add('request state', 'lib openAiReader.readEvent → RequestState → metrics, with meter (OpenTelemetry SDK)', readThroughState(requestContext(new Registry(), recorder)));
  add('request state', 'lib RequestState start + end only (per-request cost spread over events)', (r) => {
    for (let k = 0; k < r; k++) {
      const state = new RequestState(context, hints);
      state.responseStarted(true, hints);
      state.end('finished', 200);
    }
    return r;
  });
  // With --dist, the whole-path rows run the tsc build (what users run); the single-stage rows run the source.
  const readWrites = pipelineReader(model, process.env.BENCH_LIB_DIR || undefined);
  add('pipeline', 'lib ResponseReader: decode + SSE + reader + state + metrics', (r) => readWrites(fx.events, r));
  add('pipeline', 'lib ResponseReader, one Buffer write per event (a proxy that keeps up)', (r) => readWrites(buffers, r));
  add('pipeline', `lib ResponseReader, proxy-shaped Buffer writes (${fx.proxyWrites.length} per response, events merged and cut)`, (r) =>
    readWrites(fx.proxyWrites, r),
  );
  await addMiddlewareStages(add, fx.model, fx.events);
  return stages;
}

function fixtureFor(events: string[], model: string): Fixture {
  const data = events.map((e) => e.slice('data: '.length, e.length - 2));
  const deltas = data.map((d) => {
    if (d === '[DONE]') return '';
    const chunk = JSON.parse(d) as { choices: { delta?: { content?: string } }[] };
    return chunk.choices[0]?.delta?.content ?? '';
  });
  return { model, events, buffers: events.map((e) => Buffer.from(e)), data, deltas, proxyWrites: proxyShaped(events) };
}

export interface StagesReport {
  date: string;
  node: string;
  eventsPerResponse: number;
  stages: Measured[];
}

export async function runStages(log: (line: string) => void = console.log): Promise<StagesReport> {
  const fixture = await loadFixture();
  const fx = fixtureFor(fixture.events, fixture.model);
  const only = process.env.STAGES_ONLY;
  const stages = (await buildStages(fx)).filter((stage) => only === undefined || `${stage.group} ${stage.name}`.includes(only));
  const results = measureAll(stages, fx.events.length, log);
  return { date: new Date().toISOString(), node: process.version, eventsPerResponse: fx.events.length, stages: results };
}

export function renderStages(report: StagesReport): string {
  const baseline = report.stages.find((s) => s.name.startsWith('loop over events'))?.nsPerEvent ?? 0;
  return formatTable(
    ['group', 'stage', 'ns/event (median)', 'minus loop baseline', 'fastest rep'],
    report.stages.map((s) => [
      s.group,
      s.name,
      s.nsPerEvent.toFixed(0),
      s.name.startsWith('loop over events') ? '–' : (s.nsPerEvent - baseline).toFixed(0),
      s.minNsPerEvent.toFixed(0),
    ]),
    `Per-event cost of each stage (${report.eventsPerResponse} events per response, node ${report.node})`,
  );
}

if (require.main === module) {
  runMain(async () => {
    if (process.argv.includes('--dist')) process.env.BENCH_LIB_DIR = buildLibForBench();
    const report = await runStages();
    console.log('');
    console.log(renderStages(report));
    if (blackhole === 42) console.log('');
  });
}
