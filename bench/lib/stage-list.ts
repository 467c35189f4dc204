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
} from './internals';
import type { ObservationSink, ResponseListener } from './internals';
import { FakeResponse } from './fake-response';
import { addMiddlewareStages } from './middleware-stage';
import { proxyShaped } from './fixture';
import { pipelineReader } from './pipeline';

/**
 * The stages `npm run bench:stages` times: the building blocks the hot path could use ("standard" rows) and the
 * lib's own modules ("lib" rows), each over whole responses of the bench fixture.
 */

export interface Fixture {
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

export interface Stage {
  group: string;
  name: string;
  /** Runs `responses` whole responses; returns something derived from the work so it cannot be optimised away. */
  run(responses: number): number;
}

const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

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

export async function buildStages(fx: Fixture): Promise<Stage[]> {
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
  // The alternative to UTF-8 decoding for a proxy's Buffers: one-byte strings whatever the text, no validation.
  add('decode', "Buffer.toString('latin1') (reference: Latin-1 instead of UTF-8)", (r) => {
    let x = 0;
    for (let k = 0; k < r; k++) for (let i = 0; i < n; i++) x += (buffers[i] as Buffer).toString('latin1').length;
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

export function fixtureFor(events: string[], model: string): Fixture {
  const data = events.map((e) => e.slice('data: '.length, e.length - 2));
  const deltas = data.map((d) => {
    if (d === '[DONE]') return '';
    const chunk = JSON.parse(d) as { choices: { delta?: { content?: string } }[] };
    return chunk.choices[0]?.delta?.content ?? '';
  });
  return { model, events, buffers: events.map((e) => Buffer.from(e)), data, deltas, proxyWrites: proxyShaped(events) };
}
