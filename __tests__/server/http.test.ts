import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import zlib from 'node:zlib';
import type { Socket } from 'node:net';
import express from 'express';
import type { Application, Request, Response } from 'express';
import express4 from 'express4';
import compression from 'compression';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Registry } from 'prom-client';
import supertest from 'supertest';
import { dynamoMetrics, metricsRouter } from '../../lib/index';
import type { DynamoMetricsError, DynamoMetricsOptions } from '../../lib/index';
import { eventually, listen, openStream, postJson, request, signal, sleep } from '../support/http';
import type { RunningServer } from '../support/http';
import { seededRandom } from '../support/prng';
import { labelSets, m, value, valueFromText } from '../support/registry-values';
import type { Labels } from '../support/registry-values';
import { rawPost } from '../support/sockets';
import { chatChunk, codePoints, continuousUsageStream, cutAtRandom, DONE, RICH_STREAM_TOKENS, richChatStream, sse } from '../support/streams';

const CHAT = '/v1/chat/completions';

// Each variant with the package that provides it, to check the suite really runs on both majors.
const variants = [
  ['Express 5', express, 'express'],
  ['Express 4', express4, 'express4'],
] as const;

type Handler = (req: Request, res: Response) => void | Promise<void>;

interface Setup {
  /** Options for dynamoMetrics besides the registry (countTokens defaults to one token per code point). */
  metrics?: DynamoMetricsOptions;
  /** Mount dynamoMetrics at all (false: the same app without the middleware). */
  withMiddleware?: boolean;
  /** Mount express.json() before the middleware (false: a proxy-like app with no parsed body). */
  bodyParser?: boolean;
}

function writeSse(res: Response, pieces: readonly (string | Buffer)[]): void {
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  for (const piece of pieces) res.write(piece);
  res.end();
}

const chunk = (model: string, content: string): string => sse(chatChunk(model, [{ delta: { content } }]));
const roleChunk = (model: string): string => sse(chatChunk(model, [{ delta: { role: 'assistant', content: '' } }]));
const finishChunk = (model: string, reason = 'stop'): string => sse(chatChunk(model, [{ delta: {}, finish_reason: reason }]));

describe.each(variants)('HTTP suite on %s', (variant, expressLib, packageName) => {
  it('runs on the Express major it names', () => {
    const manifest = path.join(path.dirname(require.resolve(packageName)), 'package.json');
    const { version } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string };
    expect(version.split('.')[0]).toBe(variant.slice(-1));
  });

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

  async function start(routes: (app: Application) => void, setup: Setup = {}, reg?: Registry): Promise<number> {
    const server = await listen(buildApp(routes, setup, reg));
    servers.push(server);
    return server.port;
  }

  const chatRoute =
    (handler: Handler) =>
    (app: Application): void => {
      app.post(CHAT, (req, res) => {
        void Promise.resolve(handler(req, res)).catch(() => res.destroy());
      });
    };

  const get = (name: string, labels?: Labels, part?: 'count' | 'sum'): Promise<number> => value(registry, m(name), labels, part);

  async function gauges(model: string): Promise<number[]> {
    return [await get('inflight_requests', { model }), await get('active_requests', { model }), await get('queued_requests', { model })];
  }

  /** Waits until the request has been ended (the end is reported on the server's side, after the client saw it). */
  const ended = (count = 1): Promise<void> => eventually(async () => (await get('requests_total')) >= count);

  // ---- (1) live ---------------------------------------------------------------------------------------------------

  it('shows the tokens written so far in a scrape between two chunks of an unfinished stream', async () => {
    const rest = signal();
    const port = await start(
      chatRoute(async (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(roleChunk('m'));
        res.write(chunk('m', 'Hello'));
        await rest.wait;
        res.write(chunk('m', ' world'));
        res.write(finishChunk('m'));
        res.end(DONE);
      }),
    );
    const stream = await openStream(port, CHAT, { model: 'm', stream: true });
    await stream.waitFor('Hello');
    const live = (await request(port, 'GET', '/metrics')).body.toString();
    expect(valueFromText(live, m('output_tokens_total'), { model: 'm' })).toBe(5);
    expect(valueFromText(live, m('inflight_requests'), { model: 'm' })).toBe(1);
    expect(valueFromText(live, m('queued_requests'), { model: 'm' })).toBe(0);
    expect(valueFromText(live, m('requests_total'), { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' })).toBeUndefined();
    rest.release();
    await stream.done;
    await ended();
    const after = (await request(port, 'GET', '/metrics')).body.toString();
    expect(valueFromText(after, m('output_tokens_total'), { model: 'm' })).toBe(11);
    expect(valueFromText(after, m('requests_total'), { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' })).toBe(1);
    expect(valueFromText(after, m('inflight_requests'), { model: 'm' })).toBe(0);
  });

  it('shows live tokens to a scrape made while supertest is still reading the stream chunk by chunk', async () => {
    const rest = signal();
    const port = await start(
      chatRoute(async (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(chunk('m', 'first'));
        await rest.wait;
        res.write(chunk('m', 'second'));
        res.write(finishChunk('m'));
        res.end(DONE);
      }),
    );
    const scrapes: (number | undefined)[] = [];
    const response = await supertest(`http://127.0.0.1:${port}`)
      .post(CHAT)
      .send({ model: 'm', stream: true })
      .buffer(true)
      .parse((res, callback) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (part: string) => {
          text += part;
          if (text.includes('first') && !text.includes('second') && scrapes.length === 0) {
            scrapes.push(-1);
            void supertest(`http://127.0.0.1:${port}`)
              .get('/metrics')
              .then((metrics) => {
                scrapes[0] = valueFromText(metrics.text, m('output_tokens_total'), { model: 'm' });
                rest.release();
              });
          }
        });
        res.on('end', () => callback(null, text));
      });
    expect(response.status).toBe(200);
    expect(String(response.body)).toContain('second');
    expect(scrapes).toEqual([5]);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(11);
  });

  it('counts live with the default estimator (at least one token per non-empty delta) and ends exact with usage', async () => {
    const rest = signal();
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry }));
    app.use(metricsRouter({ registry }));
    chatRoute(async (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(roleChunk('m'));
      for (const word of ['Hello', ',', ' world', ' 🌍', '你好']) res.write(chunk('m', word));
      await rest.wait;
      res.write(finishChunk('m'));
      res.write(sse(chatChunk('m', [], { prompt_tokens: 3, completion_tokens: 40, total_tokens: 43 })));
      res.end(DONE);
    })(app);
    const server = await listen(app);
    servers.push(server);
    const stream = await openStream(server.port, CHAT, { model: 'm', stream: true });
    await stream.waitFor('你好');
    const live = valueFromText((await request(server.port, 'GET', '/metrics')).body.toString(), m('output_tokens_total'), { model: 'm' });
    expect(live).toBeGreaterThanOrEqual(5);
    expect(live).toBeLessThan(40);
    rest.release();
    await stream.done;
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(40);
    expect(await get('output_tokens_overcount_total', { model: 'm' })).toBe(0);
  });

  // ---- (2) byte-identical -----------------------------------------------------------------------------------------

  it('delivers exactly the bytes the handler wrote, the same as without the middleware', async () => {
    const pieces = cutAtRandom(Buffer.from(richChatStream('m')), 25, seededRandom(1));
    const handler = chatRoute((_req, res) => writeSse(res, pieces));
    const withPort = await start(handler);
    const withoutPort = await start(handler, { withMiddleware: false });
    const withMiddleware = await rawPost(withPort, CHAT, JSON.stringify({ model: 'm', stream: true }));
    const without = await rawPost(withoutPort, CHAT, JSON.stringify({ model: 'm', stream: true }));
    expect(withMiddleware.equals(without)).toBe(true);
    const body = (await postJson(withPort, CHAT, { model: 'm', stream: true })).body;
    expect(body.equals(Buffer.concat(pieces))).toBe(true);
    await ended(2);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(2 * RICH_STREAM_TOKENS);
  });

  it('delivers the same bytes for unary res.json() and res.send() with and without the middleware', async () => {
    const body = { id: 'c', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'héllo 🌍' }, finish_reason: 'stop' }], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } };
    const routes = (app: Application): void => {
      app.post(CHAT, (_req, res) => {
        res.json(body);
      });
      app.post('/v1/completions', (_req, res) => {
        res.send({ ...body, object: 'text_completion' });
      });
    };
    const withPort = await start(routes);
    const withoutPort = await start(routes, { withMiddleware: false });
    for (const path of [CHAT, '/v1/completions']) {
      expect((await rawPost(withPort, path, JSON.stringify({ model: 'm' }))).equals(await rawPost(withoutPort, path, JSON.stringify({ model: 'm' })))).toBe(true);
    }
  });

  it('forwards write/end arguments and callbacks, returns write()\'s boolean, and sees headers given only to writeHead', async () => {
    const results: Record<string, { returned: boolean[]; callbacks: string[] }> = {};
    const big = `: ${'x'.repeat(4 * 1024 * 1024)}\n\n`;
    const handler = chatRoute((req, res) => {
      const record = { returned: [] as boolean[], callbacks: [] as string[] };
      results[(req.body as { run: string }).run] = record;
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      record.returned.push(res.write(roleChunk('m'), () => record.callbacks.push('write(chunk, cb)')));
      record.returned.push(res.write(chunk('m', 'abc'), 'utf8', () => record.callbacks.push('write(chunk, utf8, cb)')));
      record.returned.push(res.write(big));
      record.returned.push(res.write(Buffer.from(chunk('m', 'de')), (error) => record.callbacks.push(`buffer cb ${String(error ?? '')}`)));
      res.write(finishChunk('m'));
      res.write(DONE);
      res.end(() => record.callbacks.push('end(cb)'));
    });
    const withPort = await start(handler);
    const withoutPort = await start(handler, { withMiddleware: false });
    const a = await postJson(withPort, CHAT, { model: 'm', stream: true, run: 'with' });
    const b = await postJson(withoutPort, CHAT, { model: 'm', stream: true, run: 'without' });
    expect(a.body.equals(b.body)).toBe(true);
    expect(a.headers['content-type']).toBe('text/event-stream');
    await eventually(() => (results.with?.callbacks.length ?? 0) === 4 && (results.without?.callbacks.length ?? 0) === 4);
    expect(results.with?.returned).toEqual(results.without?.returned);
    expect(results.with?.returned).toContain(false);
    expect([...(results.with?.callbacks ?? [])].sort()).toEqual([...(results.without?.callbacks ?? [])].sort());
    expect(results.with?.callbacks).toEqual(expect.arrayContaining(['write(chunk, cb)', 'write(chunk, utf8, cb)', 'end(cb)', 'buffer cb ']));
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(5);
    expect(await get('requests_started_total', { model: 'm', request_type: 'stream' })).toBe(1);
    expect(await get('requests_total', { model: 'm', request_type: 'stream', status: 'success' })).toBe(1);
  });

  // ---- (3) split invariance ---------------------------------------------------------------------------------------

  describe('split invariance', () => {
    const SNAPSHOT: [string, 'count' | 'sum' | undefined][] = [
      ['output_tokens_total', undefined],
      ['reasoning_tokens_total', undefined],
      ['requests_total', undefined],
      ['requests_started_total', undefined],
      ['requests_finished_total', undefined],
      ['input_tokens_total', undefined],
      ['time_to_first_token_seconds', 'count'],
      ['inter_token_latency_seconds', 'count'],
      ['output_sequence_tokens', 'sum'],
      ['input_sequence_tokens', 'sum'],
      ['cached_tokens', 'sum'],
      ['output_tokens_overcount_total', undefined],
    ];

    async function snapshot(model: string): Promise<Record<string, number>> {
      const result: Record<string, number> = {};
      for (const [name, part] of SNAPSHOT) result[name] = await get(name, { model }, part);
      result.success = await get('requests_total', { model, status: 'success', request_type: 'stream' });
      return result;
    }

    /** Cuts text at random code-point boundaries (a string piece must be whole characters). */
    function cutString(text: string, cuts: number, random: () => number): string[] {
      const points = [...text];
      const offsets = new Set<number>();
      while (offsets.size < cuts) offsets.add(1 + Math.floor(random() * (points.length - 1)));
      const pieces: string[] = [];
      let start = 0;
      for (const offset of [...offsets].sort((x, y) => x - y)) {
        pieces.push(points.slice(start, offset).join(''));
        start = offset;
      }
      pieces.push(points.slice(start).join(''));
      return pieces;
    }

    it.each([
      ['the rich chat stream (n=2, CRLF, comments, keep-alive, BOM, logprobs, emoji, CJK)', richChatStream, { output_tokens_total: RICH_STREAM_TOKENS, inter_token_latency_seconds: RICH_STREAM_TOKENS - 5, input_tokens_total: 13 }],
      ['the continuous-usage stream with a final usage chunk (choices: null)', continuousUsageStream, { output_tokens_total: 6, inter_token_latency_seconds: undefined, input_tokens_total: 11 }],
    ] as const)('counts %s the same however it is cut', async (_what, fixture, expected) => {
      const plans = new Map<string, (string | Buffer)[]>();
      const port = await start(chatRoute((req, res) => writeSse(res, plans.get((req.body as { model: string }).model) ?? [])));
      const random = seededRandom(424242);
      let insideCharacter = 0;
      let betweenCrLf = 0;
      const runs: string[] = [];
      const plan = (model: string, pieces: (string | Buffer)[]): void => {
        plans.set(model, pieces);
        runs.push(model);
      };
      plan('whole', [fixture('whole')]);
      plan('whole-buffer', [Buffer.from(fixture('whole-buffer'))]);
      for (let i = 0; i < 10; i++) {
        const model = `bytes-${i}`;
        const bytes = Buffer.from(fixture(model));
        const pieces = cutAtRandom(bytes, 5 + Math.floor(random() * 60), random);
        let offset = 0;
        for (const piece of pieces.slice(0, -1)) {
          offset += piece.length;
          if (((bytes[offset] as number) & 0xc0) === 0x80) insideCharacter++;
          if (bytes[offset - 1] === 0x0d && bytes[offset] === 0x0a) betweenCrLf++;
        }
        plan(model, pieces);
      }
      for (let i = 0; i < 6; i++) {
        const model = `text-${i}`;
        plan(model, cutString(fixture(model), 5 + Math.floor(random() * 40), random));
      }
      // One byte per write: every cut point at once.
      plan('single-bytes', [...Buffer.from(fixture('single-bytes'))].map((byte) => Buffer.from([byte])));
      expect(insideCharacter).toBeGreaterThan(0);
      expect(betweenCrLf).toBeGreaterThan(0);

      for (const model of runs) {
        const response = await postJson(port, CHAT, { model, stream: true });
        expect(response.body.equals(Buffer.concat((plans.get(model) ?? []).map((p) => Buffer.from(p))))).toBe(true);
      }
      await ended(runs.length);
      const reference = await snapshot('whole');
      expect(reference.output_tokens_total).toBe(expected.output_tokens_total);
      // The continuous-usage fixture's ITL count is checked on its own below (see "continuous usage: …").
      if (expected.inter_token_latency_seconds !== undefined) {
        expect(reference.inter_token_latency_seconds).toBe(expected.inter_token_latency_seconds);
      }
      expect(reference.input_tokens_total).toBe(expected.input_tokens_total);
      expect(reference.success).toBe(1);
      expect(reference.time_to_first_token_seconds).toBe(1);
      for (const model of runs) expect({ model, ...(await snapshot(model)) }).toEqual({ model, ...reference });
      expect(await get('parse_errors_total')).toBe(0);
    });
  });

  describe('engine-like streams (one event per write)', () => {
    // Deltas with characters that JSON escapes (quote, backslash, newline), that it keeps raw (U+2028, DEL), multi-byte
    // UTF-8 and a lone surrogate, so writes that differ only in their text sometimes have the same bytes around it.
    const ALPHABET = ['a', 'b', ' the', 'é', '你', '🌍', '"', '\\', '\n', '\u2028', '\u007f', '\ud800', 'x y', '{', '}', ':', 'data: '];
    function deltas(count: number, seed: number): string[] {
      const random = seededRandom(seed);
      return Array.from({ length: count }, () => {
        const parts = 1 + Math.floor(random() * 3);
        let text = '';
        for (let i = 0; i < parts; i++) text += ALPHABET[Math.floor(random() * ALPHABET.length)] as string;
        return text;
      });
    }
    const events = (model: string, texts: string[]): string[] => [
      roleChunk(model),
      ...texts.map((text) => chunk(model, text)),
      finishChunk(model),
      DONE,
    ];

    it('counts every delta exactly, whatever the write pattern', async () => {
      const texts = deltas(300, 99);
      const expected = texts.reduce((sum, text) => sum + codePoints(text), 0);
      const firstChunk = codePoints(texts[0] as string);
      const plans = new Map<string, (string | Buffer)[]>();
      const port = await start(chatRoute((req, res) => writeSse(res, plans.get((req.body as { model: string }).model) ?? [])));
      plans.set('per-event', events('per-event', texts));
      plans.set('per-event-buffers', events('per-event-buffers', texts).map((e) => Buffer.from(e)));
      plans.set('whole', [events('whole', texts).join('')]);
      plans.set('cut', cutAtRandom(Buffer.from(events('cut', texts).join('')), 200, seededRandom(5)));
      // Pairs of events per write, and events with a keep-alive comment in between.
      const pairs: string[] = [];
      const perEvent = events('pairs', texts);
      for (let i = 0; i < perEvent.length; i += 2) pairs.push(perEvent.slice(i, i + 2).join(''));
      plans.set('pairs', pairs);
      plans.set('comments', events('comments', texts).flatMap((e, i) => (i % 7 === 3 ? [': keep-alive\n\n', e] : [e])));
      for (const model of plans.keys()) {
        const response = await postJson(port, CHAT, { model, stream: true });
        expect(response.body.equals(Buffer.concat((plans.get(model) ?? []).map((p) => Buffer.from(p))))).toBe(true);
      }
      await ended(plans.size);
      for (const model of plans.keys()) {
        expect({ model, tokens: await get('output_tokens_total', { model }) }).toEqual({ model, tokens: expected });
        expect({ model, itl: await get('inter_token_latency_seconds', { model }, 'count') }).toEqual({ model, itl: expected - firstChunk });
        expect({ model, ok: await get('requests_total', { model, status: 'success' }) }).toEqual({ model, ok: 1 });
      }
      expect(await get('parse_errors_total')).toBe(0);
    });

    it('counts OpenAI-style chunks with "usage": null, an obfuscation pad and a final usage chunk exactly', async () => {
      const texts = deltas(120, 7);
      const estimate = texts.reduce((sum, text) => sum + codePoints(text), 0);
      const random = seededRandom(11);
      const openAiChunk = (text: string): string =>
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', service_tier: 'default', system_fingerprint: 'fp', choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }], usage: null, obfuscation: 'x'.repeat(Math.floor(random() * 8)) });
      const pieces = [
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], usage: null }),
        ...texts.map(openAiChunk),
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: null }),
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage: { prompt_tokens: 12, completion_tokens: estimate + 10, total_tokens: estimate + 22, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } } }),
        DONE,
      ];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { bodyParser: false });
      await postJson(port, CHAT, { model: 'gpt-x', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'gpt-x' })).toBe(estimate + 10);
      expect(await get('inter_token_latency_seconds', { model: 'gpt-x' }, 'count')).toBe(estimate - codePoints(texts[0] as string));
      expect(await get('input_tokens_total', { model: 'gpt-x' })).toBe(12);
      expect(await get('requests_total', { model: 'gpt-x', status: 'success' })).toBe(1);
      expect(await get('parse_errors_total')).toBe(0);
    });

    it('counts a write shaped like the previous deltas as the client reads it when an event is still open', async () => {
      const model = 'm';
      const pieces = [
        roleChunk(model),
        chunk(model, 'ab'),
        chunk(model, 'cd'),
        // An event left open: its data line has no end yet, so the next write continues that line.
        'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"',
        chunk(model, 'xyz'),
        chunk(model, 'ef'),
        finishChunk(model),
        DONE,
      ];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)));
      await postJson(port, CHAT, { model, stream: true });
      await ended();
      // The client sees one malformed event (the open line joined with the next write); "xyz" is not a delta.
      expect(await get('output_tokens_total', { model })).toBe(6);
      expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'invalid_json' })).toBe(1);
    });

    it('counts a write shaped like the previous deltas inside an oversized event as part of that event', async () => {
      const model = 'm';
      const pieces = [
        chunk(model, 'ab'),
        chunk(model, 'cd'),
        `data: ${'z'.repeat(3000)}\n`, // an oversized event whose blank line has not come yet
        chunk(model, 'xyz'), // ends that event: for a client it is the oversized event's second data line
        chunk(model, 'ef'),
        finishChunk(model),
        DONE,
      ];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { metrics: { maxEventBytes: 1024 } });
      await postJson(port, CHAT, { model, stream: true });
      await ended();
      expect(await get('output_tokens_total', { model })).toBe(6);
      expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'event_too_large' })).toBe(1);
    });

    it('keeps counting the right model and reasoning when the deltas switch fields', async () => {
      const model = 'm';
      const reasoningChunk = (text: string): string => sse(chatChunk(model, [{ delta: { reasoning_content: text } }]));
      const pieces = [roleChunk(model), reasoningChunk('think'), reasoningChunk('ing'), chunk(model, 'ans'), chunk(model, 'wer'), reasoningChunk('more'), finishChunk(model), DONE];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)));
      await postJson(port, CHAT, { model, stream: true });
      await ended();
      expect(await get('output_tokens_total', { model })).toBe(5 + 3 + 3 + 3 + 4);
      expect(await get('reasoning_tokens_total', { model })).toBe(5 + 3 + 4);
    });
  });

  // ---- (4) every request ended exactly once -------------------------------------------------------------------------

  it('counts a successful stream once, with gauges back to 0', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [roleChunk('m'), chunk('m', 'abc'), finishChunk('m'), DONE])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    await sleep(20);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' })).toBe(1);
    expect(await get('requests_started_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
    expect(await get('requests_finished_total', { model: 'm', finish_reason: 'stop' })).toBe(1);
    expect(await get('request_duration_seconds', { model: 'm' }, 'count')).toBe(1);
    expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(3);
    expect(await gauges('m')).toEqual([0, 0, 0]);
    expect(await get('disconnected_clients')).toBe(0);
  });

  it.each([
    [400, 'validation'],
    [401, 'validation'],
    [404, 'not_found'],
    [422, 'validation'],
    [429, 'overload'],
    [499, 'cancelled'],
    [500, 'internal'],
    [501, 'not_implemented'],
    [502, 'internal'],
    [503, 'unavailable'],
    [529, 'overload'],
  ])('maps HTTP %i to error_type %s', async (status, errorType) => {
    // A failed request keeps its name only when the name is known (allow-listed or admitted by an earlier success).
    const port = await start(
      chatRoute((_req, res) => {
        res.status(status).json({ error: { message: 'nope', type: 'some_error' } });
      }),
      { metrics: { models: ['m'] } },
    );
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(status);
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'error', error_type: errorType })).toBe(1);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_started_total', { model: 'm' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a client that aborts mid-stream as cancelled, keeps its tokens, and returns the gauges to 0', async () => {
    const closed = signal();
    const port = await start(
      chatRoute((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(roleChunk('m'));
        res.write(chunk('m', 'Hello'));
        res.on('close', () => closed.release());
      }),
    );
    const stream = await openStream(port, CHAT, { model: 'm', stream: true });
    await stream.waitFor('Hello');
    expect(await gauges('m')).toEqual([1, 1, 0]);
    stream.abort();
    await closed.wait;
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await get('requests_total')).toBe(1);
    expect(await get('disconnected_clients')).toBe(1);
    expect(await get('model_cancellation_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(5);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a client that aborts before the first token: queued back to 0 as well', async () => {
    const closed = signal();
    const port = await start(
      chatRoute((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(roleChunk('m'));
        res.on('close', () => closed.release());
      }),
    );
    const stream = await openStream(port, CHAT, { model: 'm', stream: true });
    await stream.waitFor('assistant');
    expect(await gauges('m')).toEqual([1, 1, 1]);
    stream.abort();
    await closed.wait;
    await ended();
    expect(await get('requests_total', { status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
    expect(await get('time_to_first_token_seconds', {}, 'count')).toBe(0);
  });

  it.each([
    ['{"error": {"message": "engine died", "type": "server_error"}}', 'internal'],
    ['{"error": {"message": "busy", "code": 429}}', 'overload'],
  ])('counts an error event mid-stream (%s) as error %s', async (errorEvent, errorType) => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [roleChunk('m'), chunk('m', 'ab'), `data: ${errorEvent}\n\n`])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: errorType })).toBe(1);
    expect(await get('requests_total')).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(2);
  });

  it.each([
    ['finish_reason without [DONE]', (): string[] => [chunk('m', 'abc'), finishChunk('m')]],
    ['[DONE] without finish_reason', (): string[] => [chunk('m', 'abc'), DONE]],
    ['data:[DONE] without the optional space', (): string[] => [chunk('m', 'abc'), 'data:[DONE]\n\n']],
  ])('counts a stream that ends with %s as success', async (_what, pieces) => {
    const port = await start(chatRoute((_req, res) => writeSse(res, pieces())));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'success', error_type: '' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
  });

  it('keeps an error event\'s error type even when [DONE] follows it', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [chunk('m', 'ab'), 'data: {"error": {"message": "overloaded", "type": "overloaded_error"}}\n\n', DONE])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: 'overload' })).toBe(1);
    expect(await get('requests_total')).toBe(1);
  });

  it('counts a 2xx stream that ends without [DONE] or finish_reason as internal', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [roleChunk('m'), chunk('m', 'abc')])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a stream the server destroys mid-way (a broken upstream) as internal, not cancelled', async () => {
    const port = await start(
      chatRoute((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(chunk('m', 'abc'), () => res.destroy());
      }),
    );
    const stream = await openStream(port, CHAT, { model: 'm', stream: true });
    await stream.done;
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await get('disconnected_clients')).toBe(0);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('serves many requests on one keep-alive connection without MaxListenersExceededWarning or leftover listeners', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    const sockets = new Set<Socket>();
    const port = await start(
      chatRoute((req, res) => {
        sockets.add(req.socket);
        writeSse(res, [roleChunk('m'), chunk('m', 'ab'), finishChunk('m'), DONE]);
      }),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 40; i++) await postJson(port, CHAT, { model: 'm', stream: true }, agent);
      await ended(40);
      await sleep(50);
    } finally {
      agent.destroy();
      process.off('warning', onWarning);
    }
    expect(sockets.size).toBe(1);
    const socket = [...sockets][0] as Socket;
    expect(socket.listenerCount('close')).toBeLessThan(10);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    expect(await get('requests_total', { status: 'success' })).toBe(40);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(80);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a client that aborts before any response byte as cancelled, once', async () => {
    const closed = signal();
    const arrived = signal();
    const port = await start(
      chatRoute((_req, res) => {
        arrived.release();
        res.on('close', () => closed.release());
      }),
      { metrics: { models: ['m'] } },
    );
    const payload = JSON.stringify({ model: 'm', stream: true });
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: CHAT, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } });
    req.on('error', () => undefined);
    req.end(payload);
    await arrived.wait;
    expect(await gauges('m')).toEqual([1, 1, 1]);
    // Counted as started when first seen (the body named the model), before any response byte.
    expect(await get('requests_started_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
    req.destroy();
    await closed.wait;
    await ended();
    await sleep(20);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await get('requests_started_total', { model: 'm' })).toBe(1);
    expect(await get('disconnected_clients')).toBe(1);
    expect(await get('model_cancellation_total', { model: 'm', endpoint: 'chat_completions' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('returns every gauge to 0 after many concurrent streams, some aborted', async () => {
    const rest = signal();
    const port = await start(
      chatRoute(async (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(chunk('m', 'ab'));
        await rest.wait;
        if (!res.destroyed) {
          res.write(finishChunk('m'));
          res.end(DONE);
        }
      }),
    );
    const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(port, CHAT, { model: 'm', stream: true })));
    await Promise.all(streams.map((s) => s.waitFor('ab')));
    expect(await gauges('m')).toEqual([20, 20, 0]);
    streams.slice(0, 5).forEach((s) => s.abort());
    await eventually(async () => (await get('requests_total', { error_type: 'cancelled' })) === 5);
    expect(await get('inflight_requests', { model: 'm' })).toBe(15);
    rest.release();
    await Promise.all(streams.map((s) => s.done));
    await ended(20);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(15);
    expect(await get('disconnected_clients')).toBe(5);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(40);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('reads a stream whose headers were flushed with res.flushHeaders() before the first write', async () => {
    const port = await start(
      chatRoute((_req, res) => {
        res.status(200);
        res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
        res.flushHeaders();
        res.write(chunk('m', 'abc'));
        res.write(finishChunk('m'));
        res.end(DONE);
      }),
    );
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await get('requests_total', { model: 'm', request_type: 'stream', status: 'success' })).toBe(1);
  });

  it('takes the model from a body parsed after the middleware (by the time the response starts)', async () => {
    const app = expressLib() as unknown as Application;
    app.use(dynamoMetrics({ registry, countTokens: codePoints }));
    app.use(expressLib.json());
    chatRoute((_req, res) => writeSse(res, [chunk('served', 'abc'), finishChunk('served'), DONE]))(app);
    const server = await listen(app);
    servers.push(server);
    await postJson(server.port, CHAT, { model: 'asked', stream: true });
    await ended();
    expect(await get('output_tokens_total', { model: 'asked' })).toBe(3);
    expect(await get('requests_started_total', { model: 'asked', request_type: 'stream' })).toBe(1);
    expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    expect(await gauges('asked')).toEqual([0, 0, 0]);
  });

  it('counts tokens with compression() mounted before it, and the client still gets the gzip stream', async () => {
    const pieces = [roleChunk('m'), chunk('m', 'Hello'), chunk('m', ' 世界'), finishChunk('m'), DONE];
    const app = expressLib() as unknown as Application;
    app.use(compression());
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry, countTokens: codePoints }));
    chatRoute((_req, res) => writeSse(res, pieces))(app);
    const server = await listen(app);
    servers.push(server);
    const body = await new Promise<{ encoding: string | undefined; bytes: Buffer }>((resolve, reject) => {
      const payload = JSON.stringify({ model: 'm', stream: true });
      const req = http.request(
        { host: '127.0.0.1', port: server.port, method: 'POST', path: CHAT, agent: false, headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (p: Buffer) => parts.push(p));
          res.on('end', () => resolve({ encoding: res.headers['content-encoding'], bytes: Buffer.concat(parts) }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
    expect(body.encoding).toBe('gzip');
    expect(zlib.gunzipSync(body.bytes).toString()).toBe(pieces.join(''));
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(8);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(await get('parse_errors_total')).toBe(0);
  });

  it('leaves a gzip stream from compression() mounted after it untouched and counts it from a decoded copy', async () => {
    const errors: DynamoMetricsError[] = [];
    const pieces = [chunk('m', 'Hello'), finishChunk('m'), DONE];
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry, countTokens: codePoints, onError: (e) => errors.push(e) }));
    app.use(compression());
    chatRoute((_req, res) => writeSse(res, pieces))(app);
    const server = await listen(app);
    servers.push(server);
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const bytes = await new Promise<Buffer>((resolve, reject) => {
        const payload = JSON.stringify({ model: 'm', stream: true });
        const req = http.request(
          { host: '127.0.0.1', port: server.port, method: 'POST', path: CHAT, agent: false, headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (p: Buffer) => parts.push(p));
            res.on('end', () => resolve(Buffer.concat(parts)));
          },
        );
        req.on('error', reject);
        req.end(payload);
      });
      expect(zlib.gunzipSync(bytes).toString()).toBe(pieces.join(''));
      await ended();
    } finally {
      process.off('warning', onWarning);
    }
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(5);
    expect(await get('parse_errors_total')).toBe(0);
    expect(errors).toEqual([]);
    expect(warnings.filter((w) => (w as Error & { code?: string }).code === 'DYNAMO_METRICS_COMPRESSED')).toEqual([]);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  describe('behind http-proxy-middleware (no parsed body: the model comes from the response)', () => {
    async function startUpstream(handler: Handler): Promise<number> {
      const upstream = expressLib() as unknown as Application;
      upstream.use(expressLib.json());
      chatRoute(handler)(upstream);
      const server = await listen(upstream);
      servers.push(server);
      return server.port;
    }

    async function startProxy(upstreamPort: number): Promise<number> {
      const app = expressLib() as unknown as Application;
      app.use(dynamoMetrics({ registry, countTokens: codePoints }));
      app.use(metricsRouter({ registry }));
      app.use('/v1', createProxyMiddleware({ target: `http://127.0.0.1:${upstreamPort}/v1` }));
      const server = await listen(app);
      servers.push(server);
      return server.port;
    }

    it('counts a proxied stream under the upstream\'s model name, byte for byte', async () => {
      const pieces = cutAtRandom(Buffer.from(richChatStream('upstream-model')), 30, seededRandom(3));
      const upstreamPort = await startUpstream((_req, res) => writeSse(res, pieces));
      const proxyPort = await startProxy(upstreamPort);
      const response = await postJson(proxyPort, CHAT, { model: 'asked-model', stream: true });
      expect(response.body.equals(Buffer.concat(pieces))).toBe(true);
      await ended();
      expect(await get('output_tokens_total', { model: 'upstream-model' })).toBe(RICH_STREAM_TOKENS);
      expect(await get('requests_total', { model: 'upstream-model', endpoint: 'chat_completions', request_type: 'stream', status: 'success' })).toBe(1);
      expect(await get('requests_started_total', { model: 'upstream-model' })).toBe(1);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await gauges('upstream-model')).toEqual([0, 0, 0]);
    });

    it('counts a client that leaves a proxied stream as cancelled', async () => {
      const upstreamClosed = signal();
      const upstreamPort = await startUpstream((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(chunk('upstream-model', 'Hello'));
        res.on('close', () => upstreamClosed.release());
      });
      const proxyPort = await startProxy(upstreamPort);
      const stream = await openStream(proxyPort, CHAT, { model: 'asked-model', stream: true });
      await stream.waitFor('Hello');
      stream.abort();
      await ended();
      expect(await get('requests_total', { model: 'upstream-model', status: 'error', error_type: 'cancelled' })).toBe(1);
      expect(await get('output_tokens_total', { model: 'upstream-model' })).toBe(5);
      expect(await get('disconnected_clients')).toBe(1);
      expect(await gauges('upstream-model')).toEqual([0, 0, 0]);
    });

    it('counts an upstream that breaks mid-stream as internal when the proxy destroys the response', async () => {
      // http-proxy-middleware 3 leaves the client's response open forever when the upstream socket dies mid-body
      // (nothing ends, so nothing can be counted); a proxy that destroys the response on upstream abort is used here.
      const upstreamPort = await startUpstream((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(chunk('upstream-model', 'Hello'), () => setTimeout(() => res.socket?.destroy(), 20));
      });
      const app = expressLib() as unknown as Application;
      app.use(dynamoMetrics({ registry, countTokens: codePoints }));
      app.post(CHAT, (req, res) => {
        const upstream = http.request({ host: '127.0.0.1', port: upstreamPort, method: 'POST', path: CHAT, headers: req.headers }, (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.on('aborted', () => res.destroy());
          upstreamRes.on('error', () => res.destroy());
          upstreamRes.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
      const server = await listen(app);
      servers.push(server);
      const stream = await openStream(server.port, CHAT, { model: 'asked-model', stream: true });
      await stream.done;
      await ended();
      expect(await get('requests_total', { model: 'upstream-model', status: 'error', error_type: 'internal' })).toBe(1);
      expect(await get('disconnected_clients')).toBe(0);
      expect(await get('model_cancellation_total')).toBe(0);
      expect(await get('output_tokens_total', { model: 'upstream-model' })).toBe(5);
      expect(await gauges('upstream-model')).toEqual([0, 0, 0]);
    });

    it('maps an upstream error status through the proxy', async () => {
      const upstreamPort = await startUpstream((_req, res) => {
        res.status(429).json({ error: { message: 'rate limited', type: 'rate_limit_error' } });
      });
      const proxyPort = await startProxy(upstreamPort);
      const response = await postJson(proxyPort, CHAT, { model: 'asked-model', stream: true });
      expect(response.status).toBe(429);
      await ended();
      expect(await get('requests_total', { status: 'error', error_type: 'overload' })).toBe(1);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    });
  });

  it('counts a route that does not exist (404 from Express) as not_found, and next(err) (500) as internal', async () => {
    const port = await start(
      (app) => {
        app.post('/v1/completions', (_req, _res, next) => next(new Error('handler failed')));
      },
      { metrics: { models: ['m'] } },
    );
    expect((await postJson(port, CHAT, { model: 'm', stream: true })).status).toBe(404);
    expect((await postJson(port, '/v1/completions', { model: 'm', prompt: 'x' })).status).toBe(500);
    await ended(2);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'error', error_type: 'not_found' })).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'completions', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('reads a legacy completions stream on /v1/completions', async () => {
    const text = (t: string, finish: string | null = null): string =>
      sse({ id: 'cmpl-1', object: 'text_completion', created: 1, model: 'm', choices: [{ index: 0, text: t, logprobs: null, finish_reason: finish }] });
    const port = await start((app) => {
      app.post('/v1/completions', (_req, res) =>
        writeSse(res, [text('Once'), text(' upon'), text('', 'length'), sse({ object: 'text_completion', model: 'm', choices: [], usage: { prompt_tokens: 2, completion_tokens: 9, total_tokens: 11 } }), DONE]),
      );
    });
    await postJson(port, '/v1/completions', { model: 'm', stream: true, prompt: 'x' });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(9);
    expect(await get('requests_total', { model: 'm', endpoint: 'completions', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await get('requests_finished_total', { model: 'm', finish_reason: 'length' })).toBe(1);
    expect(await get('input_tokens_total', { model: 'm' })).toBe(2);
  });

  it('counts an embeddings request as unary with its prompt tokens and no output tokens', async () => {
    const port = await start((app) => {
      app.post('/v1/embeddings', (_req, res) => {
        res.json({ object: 'list', model: 'emb', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }], usage: { prompt_tokens: 8, total_tokens: 8 } });
      });
    });
    await postJson(port, '/v1/embeddings', { model: 'emb', input: 'hello' });
    await ended();
    expect(await get('requests_total', { model: 'emb', endpoint: 'embeddings', request_type: 'unary', status: 'success', error_type: '' })).toBe(1);
    expect(await get('input_tokens_total', { model: 'emb' })).toBe(8);
    expect(await get('output_tokens_total', { model: 'emb' })).toBe(0);
    expect(await get('output_sequence_tokens', {}, 'count')).toBe(0);
  });

  it('falls back to the default estimate when countTokens throws or returns nonsense, and reports it', async () => {
    const errors: DynamoMetricsError[] = [];
    let call = 0;
    const port = await start(chatRoute((_req, res) => writeSse(res, [chunk('m', 'Hello'), chunk('m', 'world'), finishChunk('m'), DONE])), {
      metrics: {
        countTokens: () => {
          call++;
          if (call === 1) throw new Error('tokenizer crashed');
          return Number.NaN;
        },
        onError: (e) => errors.push(e),
      },
    });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(200);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBeGreaterThanOrEqual(2);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['count_tokens_failed', 'invalid_count']);
  });

  it('applies DYN_METRICS_<NAME>_{MIN,MAX,COUNT} and the buckets option to the served histograms', async () => {
    const saved = { ...process.env };
    process.env.DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_MIN = '0.01';
    process.env.DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_MAX = '10';
    process.env.DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_COUNT = '4';
    let port: number;
    try {
      port = await start(chatRoute((_req, res) => writeSse(res, [chunk('m', 'ab'), chunk('m', 'c'), finishChunk('m'), DONE])), {
        metrics: { buckets: { requestDuration: [0.5, 5] } },
      });
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    }
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    const text = (await request(port, 'GET', '/metrics')).body.toString();
    const bounds = (name: string): string[] =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}_bucket{`))
        .map((line) => /le="([^"]+)"/.exec(line)?.[1] ?? '');
    expect(bounds(m('time_to_first_token_seconds'))).toEqual(['0', '0.1', '1', '10', '+Inf']);
    expect(bounds(m('request_duration_seconds'))).toEqual(['0.5', '5', '+Inf']);
    expect(bounds(m('inter_token_latency_seconds'))).toEqual(['0', '0.0019', '0.0035', '0.0067', '0.013', '0.024', '0.045', '0.084', '0.16', '0.3', '0.56', '1.1', '2', '+Inf']);
  });

  it('keeps no reference to finished or aborted responses (they can be garbage-collected)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const collect = vm.runInNewContext('gc') as () => void;
    const responses: WeakRef<object>[] = [];
    const port = await start(
      chatRoute((req, res) => {
        responses.push(new WeakRef(res));
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(chunk('m', 'ab'));
        if ((req.body as { finish: boolean }).finish) {
          res.write(finishChunk('m'));
          res.end(DONE);
        }
      }),
    );
    for (let i = 0; i < 20; i++) await postJson(port, CHAT, { model: 'm', stream: true, finish: true });
    for (let i = 0; i < 10; i++) {
      const stream = await openStream(port, CHAT, { model: 'm', stream: true, finish: false });
      await stream.waitFor('ab');
      stream.abort();
    }
    await ended(30);
    await sleep(50);
    for (let i = 0; i < 3; i++) {
      collect();
      await sleep(20);
    }
    const alive = responses.filter((ref) => ref.deref() !== undefined).length;
    expect(responses).toHaveLength(30);
    expect(alive).toBeLessThanOrEqual(2);
    expect(await get('requests_total')).toBe(30);
  });

  // ---- (5) malformed input --------------------------------------------------------------------------------------

  it('skips a malformed JSON event: counted in parse_errors_total, reported to onError, response untouched, counting resumes', async () => {
    const errors: DynamoMetricsError[] = [];
    const pieces = [roleChunk('m'), chunk('m', 'ab'), 'data: {"choices": [{"delta": {"content": "xyz"\n\n', chunk('m', 'cd'), finishChunk('m'), DONE];
    const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { metrics: { onError: (e) => errors.push(e) } });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.body.toString()).toBe(pieces.join(''));
    await ended();
    expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'invalid_json' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(4);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['invalid_json']);
    expect(errors[0]).toBeInstanceOf(Error);
  });

  it('skips an event larger than maxEventBytes and counts the next one', async () => {
    const errors: DynamoMetricsError[] = [];
    const pieces = [roleChunk('m'), chunk('m', 'ab'), chunk('m', 'x'.repeat(5000)), chunk('m', 'cd'), finishChunk('m'), DONE];
    const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { metrics: { maxEventBytes: 1024, onError: (e) => errors.push(e) } });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.body.toString()).toBe(pieces.join(''));
    await ended();
    expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'event_too_large' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(4);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['event_too_large']);
  });

  it('skips a unary body larger than maxBodyBytes but still counts the request', async () => {
    const errors: DynamoMetricsError[] = [];
    const body = { object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { content: 'y'.repeat(4000) }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 50, total_tokens: 51 } };
    const port = await start(
      chatRoute((_req, res) => {
        res.json(body);
      }),
      { metrics: { maxBodyBytes: 1024, onError: (e) => errors.push(e) } },
    );
    const response = await postJson(port, CHAT, { model: 'm' });
    expect(JSON.parse(response.body.toString())).toEqual(body);
    await ended();
    expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'body_too_large' })).toBe(1);
    expect(await get('requests_total', { model: 'm', request_type: 'unary' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['body_too_large']);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('survives an onError that throws', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, ['data: nope\n\n', chunk('m', 'ab'), finishChunk('m'), DONE])), {
      metrics: {
        onError: () => {
          throw new Error('careless onError');
        },
      },
    });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(200);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(2);
    expect(await get('parse_errors_total')).toBe(1);
  });

  // ---- (6) TTFT and ITL -----------------------------------------------------------------------------------------

  it('times TTFT to the first token-bearing chunk, not the role chunk; ITL samples = tokens after it, zero-token chunks do not reset', async () => {
    const port = await start(
      chatRoute(async (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(roleChunk('m'));
        await sleep(60);
        res.write(chunk('m', 'ab')); // first token-bearing chunk: TTFT, no ITL samples
        await sleep(60);
        res.write(chunk('m', '')); // zero tokens: no reset
        res.write(roleChunk('m'));
        res.write(chunk('m', 'cde')); // 3 samples of ≈ 20 ms
        res.write(chunk('m', 'f'));
        res.write(finishChunk('m'));
        res.end(DONE);
      }),
    );
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('time_to_first_token_seconds', { model: 'm' }, 'count')).toBe(1);
    expect(await get('time_to_first_token_seconds', { model: 'm' }, 'sum')).toBeGreaterThanOrEqual(0.055);
    expect(await get('inter_token_latency_seconds', { model: 'm' }, 'count')).toBe(4);
    const itlSum = await get('inter_token_latency_seconds', { model: 'm' }, 'sum');
    expect(itlSum).toBeGreaterThanOrEqual(0.055);
    expect(itlSum).toBeLessThan(5);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(6);
    // request_duration_seconds: once, from arrival to the end (≥ the two 60 ms pauses).
    expect(await get('request_duration_seconds', { model: 'm' }, 'count')).toBe(1);
    expect(await get('request_duration_seconds', { model: 'm' }, 'sum')).toBeGreaterThanOrEqual(0.115);
  });

  it('continuous usage: a chunk whose cumulative usage grows is token-bearing even when its text is empty (ITL/TTFT)', async () => {
    const port = await start(chatRoute((req, res) => writeSse(res, [continuousUsageStream((req.body as { model: string }).model)])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(6);
    expect(await get('time_to_first_token_seconds', { model: 'm' }, 'count')).toBe(1);
    // Chunks of 2, 2, 1 and 1 tokens (usage 0→2→4→5→6): every token after the first chunk's 2 gets a sample.
    expect(await get('inter_token_latency_seconds', { model: 'm' }, 'count')).toBe(4);
    expect(await get('input_tokens_total', { model: 'm' })).toBe(11);
    expect(await get('cached_tokens', { model: 'm' }, 'sum')).toBe(3);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
  });

  // ---- (7) unary ----------------------------------------------------------------------------------------------

  describe('unary responses', () => {
    const completion = (model: string): Record<string, unknown> => ({
      id: 'c',
      object: 'chat.completion',
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'short' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12, prompt_tokens_details: { cached_tokens: 2 } },
    });

    it.each([
      ['res.json()', (res: Response, body: Record<string, unknown>) => res.json(body)],
      ['res.send(object)', (res: Response, body: Record<string, unknown>) => res.send(body)],
      ['res.type(json).send(string)', (res: Response, body: Record<string, unknown>) => res.type('application/json').send(JSON.stringify(body))],
      ['res.send(Buffer) with a JSON content type', (res: Response, body: Record<string, unknown>) => res.type('application/json').send(Buffer.from(JSON.stringify(body)))],
      ['res.write() pieces then res.end()', (res: Response, body: Record<string, unknown>) => {
        const text = JSON.stringify(body);
        res.setHeader('Content-Type', 'application/json');
        res.write(text.slice(0, 10));
        res.write(Buffer.from(text.slice(10, 30)));
        res.end(text.slice(30));
      }],
    ])('adds usage.completion_tokens exactly for a body sent with %s', async (_how, send) => {
      const port = await start(
        chatRoute((_req, res) => {
          send(res, completion('m'));
        }),
      );
      await postJson(port, CHAT, { model: 'm', stream: false });
      await ended();
      expect(await get('output_tokens_total', { model: 'm' })).toBe(7);
      expect(await get('input_tokens_total', { model: 'm' })).toBe(5);
      expect(await get('cached_tokens', { model: 'm' }, 'sum')).toBe(2);
      expect(await get('requests_started_total', { model: 'm', endpoint: 'chat_completions', request_type: 'unary' })).toBe(1);
      expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', request_type: 'unary', status: 'success', error_type: '' })).toBe(1);
      expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(7);
      expect(await get('requests_finished_total', { model: 'm', finish_reason: 'stop' })).toBe(1);
      expect(await get('time_to_first_token_seconds', {}, 'count')).toBe(0);
      expect(await gauges('m')).toEqual([0, 0, 0]);
    });

    it('labels stream and unary requests of the same model apart', async () => {
      const port = await start(
        chatRoute((req, res) => {
          if ((req.body as { stream?: boolean }).stream) writeSse(res, [chunk('m', 'ab'), finishChunk('m'), DONE]);
          else res.json(completion('m'));
        }),
      );
      await postJson(port, CHAT, { model: 'm', stream: true });
      await postJson(port, CHAT, { model: 'm', stream: false });
      await postJson(port, CHAT, { model: 'm', stream: false });
      await ended(3);
      expect(await get('requests_started_total', { model: 'm', request_type: 'stream' })).toBe(1);
      expect(await get('requests_started_total', { model: 'm', request_type: 'unary' })).toBe(2);
      expect(await get('requests_total', { model: 'm', request_type: 'stream', status: 'success' })).toBe(1);
      expect(await get('requests_total', { model: 'm', request_type: 'unary', status: 'success' })).toBe(2);
      expect(await get('output_tokens_total', { model: 'm' })).toBe(2 + 14);
    });
  });

  // ---- (8) model label ------------------------------------------------------------------------------------------

  describe('model label', () => {
    const stream = (responseModel: string): Handler => (_req, res) => writeSse(res, [roleChunk(responseModel), chunk(responseModel, 'abc'), finishChunk(responseModel), DONE]);

    it('comes from the request body when a body parser ran before the middleware', async () => {
      const port = await start(chatRoute(stream('served-name')));
      await postJson(port, CHAT, { model: 'Asked-Name', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'Asked-Name' })).toBe(3);
      expect(await get('requests_total', { model: 'Asked-Name' })).toBe(1);
      expect(await get('output_tokens_total', { model: 'served-name' })).toBe(0);
    });

    it('comes from the response when no body parser ran (proxy-like), with the gauges moved to it', async () => {
      const rest = signal();
      const port = await start(
        chatRoute(async (_req, res) => {
          res.writeHead(200, { 'Content-Type': 'text/event-stream' });
          res.write(roleChunk('served-name'));
          await rest.wait;
          writeSseRest(res);
        }),
        { bodyParser: false },
      );
      function writeSseRest(res: Response): void {
        res.write(chunk('served-name', 'abc'));
        res.write(finishChunk('served-name'));
        res.end(DONE);
      }
      const open = await openStream(port, CHAT, { model: 'asked-name', stream: true });
      await open.waitFor('assistant');
      expect(await gauges('served-name')).toEqual([1, 1, 1]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await get('requests_started_total', { model: 'served-name', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
      rest.release();
      await open.done;
      await ended();
      expect(await get('output_tokens_total', { model: 'served-name' })).toBe(3);
      expect(await get('requests_total', { model: 'served-name', status: 'success' })).toBe(1);
      expect(await get('requests_started_total')).toBe(1);
      expect(await gauges('served-name')).toEqual([0, 0, 0]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    });

    it('moves the gauges right when the response names the model in its first, token-bearing chunk', async () => {
      const rest = signal();
      const port = await start(
        chatRoute(async (_req, res) => {
          res.writeHead(200, { 'Content-Type': 'text/event-stream' });
          res.write(chunk('served', 'abc'));
          await rest.wait;
          res.write(finishChunk('served'));
          res.end(DONE);
        }),
        { bodyParser: false },
      );
      const open = await openStream(port, CHAT, { model: 'asked', stream: true });
      await open.waitFor('abc');
      expect(await gauges('served')).toEqual([1, 1, 0]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await get('time_to_first_token_seconds', { model: 'served' }, 'count')).toBe(1);
      rest.release();
      await open.done;
      await ended();
      expect(await gauges('served')).toEqual([0, 0, 0]);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await get('requests_total', { model: 'served', status: 'success' })).toBe(1);
    });

    it('is unknown_model when neither the request nor the response names it', async () => {
      const port = await start(
        chatRoute((_req, res) => writeSse(res, [sse({ choices: [{ index: 0, delta: { content: 'abc' }, finish_reason: null }] }), finishChunk(''), DONE])),
        { bodyParser: false },
      );
      await postJson(port, CHAT, { stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'unknown_model' })).toBe(3);
      expect(await get('requests_total', { model: 'unknown_model', status: 'success' })).toBe(1);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    });

    it('maps names outside the models allow-list to unknown_model', async () => {
      const port = await start(chatRoute(stream('x')), { metrics: { models: ['allowed'] } });
      await postJson(port, CHAT, { model: 'allowed', stream: true });
      await postJson(port, CHAT, { model: 'random-1', stream: true });
      await ended(2);
      expect(await get('output_tokens_total', { model: 'allowed' })).toBe(3);
      expect(await get('output_tokens_total', { model: 'unknown_model' })).toBe(3);
      expect((await labelSets(registry, m('requests_total'))).map((l) => l.model).sort()).toEqual(['allowed', 'unknown_model']);
    });

    it('caps distinct names at maxModels; the rest become unknown_model', async () => {
      const port = await start(chatRoute(stream('x')), { metrics: { maxModels: 2 } });
      for (const model of ['a', 'b', 'c', 'd', 'a']) await postJson(port, CHAT, { model, stream: true });
      await ended(5);
      expect(await get('requests_total', { model: 'a' })).toBe(2);
      expect(await get('requests_total', { model: 'b' })).toBe(1);
      expect(await get('requests_total', { model: 'unknown_model' })).toBe(2);
      const models = new Set((await labelSets(registry, m('output_tokens_total'))).map((l) => l.model));
      expect([...models].sort()).toEqual(['a', 'b', 'unknown_model']);
    });
  });

  // ---- (9) non-LLM requests, custom endpoint ----------------------------------------------------------------------

  it('leaves non-LLM requests untouched and uncounted', async () => {
    const routes = (app: Application): void => {
      app.get('/health', (_req, res) => {
        res.json({ ok: true });
      });
      app.post('/v1/other', (_req, res) => writeSse(res, [chunk('m', 'abc'), DONE]));
      app.get('/v1/models', (_req, res) => {
        res.json({ data: [{ id: 'm' }] });
      });
      app.options(CHAT, (_req, res) => {
        res.set('Access-Control-Allow-Methods', 'POST').status(204).end();
      });
      app.head(CHAT, (_req, res) => {
        res.status(200).end();
      });
    };
    const withPort = await start(routes);
    const withoutPort = await start(routes, { withMiddleware: false });
    for (const [method, path] of [['GET', '/health'], ['POST', '/v1/other'], ['GET', '/v1/models'], ['OPTIONS', CHAT], ['HEAD', CHAT]] as const) {
      const a = await request(withPort, method, path, method === 'POST' ? { model: 'm' } : undefined);
      const b = await request(withoutPort, method, path, method === 'POST' ? { model: 'm' } : undefined);
      expect(a.body.equals(b.body)).toBe(true);
      expect(a.status).toBe(b.status);
    }
    await sleep(30);
    for (const name of ['requests_total', 'requests_started_total', 'output_tokens_total', 'inflight_requests', 'parse_errors_total']) {
      expect(await labelSets(registry, m(name))).toEqual([]);
    }
  });

  it('counts a request to a differently cased path that Express routes to the LLM handler', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE])));
    const response = await postJson(port, '/V1/Chat/Completions', { model: 'm', stream: true });
    expect(response.status).toBe(200);
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
  });

  it('uses a custom endpoint(req) to pick LLM requests and their endpoint label', async () => {
    const port = await start(
      (app) => {
        app.post('/generate', (_req, res) => writeSse(res, [chunk('m', 'abcd'), finishChunk('m'), DONE]));
        app.post(CHAT, (_req, res) => writeSse(res, [chunk('m', 'ab'), finishChunk('m'), DONE]));
      },
      { metrics: { endpoint: (req) => (req.url?.startsWith('/generate') ? 'generate' : undefined) } },
    );
    await postJson(port, '/generate', { model: 'm', stream: true });
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    await sleep(30);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'generate', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(4);
  });

  it('recognises LLM routes when the middleware and the routes are mounted on a sub-path', async () => {
    const app = expressLib() as unknown as Application;
    const router = expressLib.Router();
    router.post('/chat/completions', (_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE]));
    app.use('/v1', expressLib.json(), dynamoMetrics({ registry, countTokens: codePoints }), router);
    const server = await listen(app);
    servers.push(server);
    await postJson(server.port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
  });

  it('keeps backpressure for a piped stream: same bytes, same counts', async () => {
    const texts = Array.from({ length: 400 }, (_, i) => `tok${i % 10}${'·'.repeat(i % 5)}`);
    const expected = texts.reduce((sum, text) => sum + codePoints(text), 0);
    const pieces = [roleChunk('m'), ...texts.flatMap((text, i) => (i % 50 === 0 ? [`: ${'pad'.repeat(20000)}\n\n`, chunk('m', text)] : [chunk('m', text)])), finishChunk('m'), DONE];
    const port = await start(
      chatRoute((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        Readable.from(pieces.map((p) => Buffer.from(p)), { objectMode: false }).pipe(res);
      }),
    );
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.body.equals(Buffer.from(pieces.join('')))).toBe(true);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(expected);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
  });

  it('labels request_type by the response: an event stream is "stream" even when the body has no stream flag', async () => {
    const port = await start(
      (app) => {
        app.post('/generate', (_req, res) => writeSse(res, [chunk('m', 'abcd'), finishChunk('m'), DONE]));
      },
      { metrics: { endpoint: (req) => (req.url?.startsWith('/generate') ? 'generate' : undefined) } },
    );
    await postJson(port, '/generate', { model: 'm', prompt: 'hi' });
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'generate', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await get('requests_started_total', { model: 'm', endpoint: 'generate', request_type: 'stream' })).toBe(1);
    expect(await get('model_cancellation_total')).toBe(0);
  });

  it('leaves the request untouched and reports it when a custom endpoint(req) throws', async () => {
    const errors: DynamoMetricsError[] = [];
    const port = await start(chatRoute((_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE])), {
      metrics: {
        endpoint: () => {
          throw new Error('bad routing rule');
        },
        onError: (e) => errors.push(e),
      },
    });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(200);
    expect(response.body.toString()).toContain('[DONE]');
    await sleep(30);
    expect(errors).toHaveLength(1);
    expect(await labelSets(registry, m('requests_total'))).toEqual([]);
    expect(await labelSets(registry, m('inflight_requests'))).toEqual([]);
  });

  // ---- (10) several instances ------------------------------------------------------------------------------------

  it('lets two middleware instances on two registries coexist, each counting', async () => {
    const other = new Registry();
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry, countTokens: codePoints }));
    app.use(dynamoMetrics({ registry: other, countTokens: codePoints, prefix: 'dynamo_frontend' }));
    chatRoute((_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE]))(app);
    const server = await listen(app);
    servers.push(server);
    await postJson(server.port, CHAT, { model: 'm', stream: true });
    await ended();
    await eventually(async () => (await value(other, m('requests_total'))) === 1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await value(other, m('output_tokens_total'), { model: 'm' })).toBe(3);
    expect(await value(other, m('requests_total'), { model: 'm', status: 'success' })).toBe(1);
  });

  it('lets two middleware instances on the same registry share the metrics instead of throwing', async () => {
    const first = dynamoMetrics({ registry, countTokens: codePoints });
    let second: unknown;
    expect(() => {
      second = dynamoMetrics({ registry, countTokens: codePoints });
    }).not.toThrow();
    const handler = chatRoute((_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE]));
    const ports: number[] = [];
    for (const middleware of [first, second as typeof first]) {
      const app = expressLib() as unknown as Application;
      app.use(expressLib.json());
      app.use(middleware);
      handler(app);
      const server = await listen(app);
      servers.push(server);
      ports.push(server.port);
    }
    for (const port of ports) await postJson(port, CHAT, { model: 'm', stream: true });
    await ended(2);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(2);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(6);
  });

  it('counts a request once when two instances on the same registry are mounted in one app', async () => {
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry, countTokens: codePoints }));
    app.use(dynamoMetrics({ registry, countTokens: codePoints }));
    chatRoute((_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE]))(app);
    const server = await listen(app);
    servers.push(server);
    await postJson(server.port, CHAT, { model: 'm', stream: true });
    await ended();
    await sleep(30);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_started_total')).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('starts from zero after registry.resetMetrics(), also for tokens counted but not yet scraped', async () => {
    const port = await start(chatRoute((req, res) => writeSse(res, [chunk('m', (req.body as { text: string }).text), finishChunk('m'), DONE])));
    await postJson(port, CHAT, { model: 'm', stream: true, text: 'abcde' });
    await eventually(async () => (await value(registry, m('requests_total'))) === 1);
    // No read of output_tokens_total before the reset (a test suite resetting the registry between cases).
    registry.resetMetrics();
    await postJson(port, CHAT, { model: 'm', stream: true, text: 'xyz' });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await get('requests_total', { model: 'm' })).toBe(1);
  });

  // ---- (11) prefix ------------------------------------------------------------------------------------------------

  describe('prefix', () => {
    const saved = process.env.DYN_METRICS_PREFIX;
    afterEach(() => {
      if (saved === undefined) delete process.env.DYN_METRICS_PREFIX;
      else process.env.DYN_METRICS_PREFIX = saved;
    });

    it('names every metric with the prefix option', async () => {
      const port = await start(chatRoute((_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE])), { metrics: { prefix: 'my_gateway' } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await eventually(async () => (await value(registry, 'my_gateway_requests_total')) === 1);
      expect(await value(registry, 'my_gateway_output_tokens_total', { model: 'm' })).toBe(3);
      const text = (await request(port, 'GET', '/metrics')).body.toString();
      expect(valueFromText(text, 'my_gateway_output_tokens_total', { model: 'm' })).toBe(3);
      expect(text).not.toContain('dynamo_frontend_');
    });

    it('honours DYN_METRICS_PREFIX when the option is absent', async () => {
      process.env.DYN_METRICS_PREFIX = 'from_env';
      const port = await start(chatRoute((_req, res) => writeSse(res, [chunk('m', 'abc'), finishChunk('m'), DONE])));
      await postJson(port, CHAT, { model: 'm', stream: true });
      await eventually(async () => (await value(registry, 'from_env_requests_total')) === 1);
      expect(await value(registry, 'from_env_output_tokens_total', { model: 'm' })).toBe(3);
      expect(registry.getSingleMetric(m('output_tokens_total'))).toBeUndefined();
    });
  });

  // ---- (12) exactness ----------------------------------------------------------------------------------------------

  describe('exactness against the final usage', () => {
    const streamWithUsage = (completionTokens: number): Handler => (_req, res) =>
      writeSse(res, [
        roleChunk('m'),
        chunk('m', 'one'),
        chunk('m', 'two'),
        chunk('m', 'six'),
        finishChunk('m'),
        sse(chatChunk('m', [], { prompt_tokens: 4, completion_tokens: completionTokens, total_tokens: 4 + completionTokens })),
        DONE,
      ]);

    it('raises a low live estimate to completion_tokens', async () => {
      const port = await start(chatRoute(streamWithUsage(20)), { metrics: { countTokens: () => 1 } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'm' })).toBe(20);
      expect(await get('output_tokens_overcount_total', { model: 'm' })).toBe(0);
      expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(20);
      expect(await get('input_tokens_total', { model: 'm' })).toBe(4);
    });

    it('publishes an overshoot in output_tokens_overcount_total', async () => {
      const port = await start(chatRoute(streamWithUsage(20)), { metrics: { countTokens: () => 10 } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'm' })).toBe(30);
      expect(await get('output_tokens_overcount_total', { model: 'm' })).toBe(10);
      expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(20);
    });

    it('adds exactly completion_tokens per request over several requests (the increase per request)', async () => {
      const port = await start(chatRoute(streamWithUsage(9)), { metrics: { countTokens: () => 2 } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended(1);
      const afterFirst = await get('output_tokens_total', { model: 'm' });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended(2);
      expect(afterFirst).toBe(9);
      expect((await get('output_tokens_total', { model: 'm' })) - afterFirst).toBe(9);
    });
  });
});
