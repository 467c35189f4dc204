/**
 * Gemini and Ollama responses through a real Express server and socket: the streams cut at random points, inside
 * UTF-8 characters and between CR and LF; the values read back from the registry and from /metrics.
 */
import express from 'express';
import type { Request, Response } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import type { DynamoMetricsOptions } from '../../lib';
import { codePoints } from '../support/chat-fixtures';
import {
  GEMINI_PATH,
  PIECES,
  THOUGHT_PIECES,
  countOf,
  geminiBody,
  geminiChunks,
  geminiSse,
  ndjson,
  ollamaBody,
  ollamaLines,
} from '../support/gemini-ollama-fixtures';
import { eventually, listen, openStream, postJson, request, signal } from '../support/http-harness';
import type { RunningServer } from '../support/http-harness';
import { cutAt, cutAtRandom, seededRandom } from '../support/prng';
import { m, value, valueFromText } from '../support/registry-values';
import type { Labels } from '../support/registry-values';

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

type Handler = (req: Request, res: Response) => void | Promise<void>;

interface App {
  port: number;
  get(suffix: string, labels?: Labels, part?: 'count' | 'sum'): Promise<number>;
  scrape(): Promise<string>;
  ended(n?: number): Promise<void>;
}

/** Express with a body parser, the middleware (one token per code point) and /metrics; every other POST goes to `handler`. */
async function serve(handler: Handler, options: Omit<DynamoMetricsOptions, 'registry'> = {}): Promise<App> {
  const registry = new Registry();
  const app = express();
  app.use(express.json());
  app.use(dynamoMetrics({ registry, countTokens: codePoints, ...options }));
  app.use(metricsRouter({ registry }));
  app.post(/.*/, (req, res, next) => {
    Promise.resolve(handler(req, res)).catch(next);
  });
  const server = await listen(app);
  servers.push(server);
  const get = (suffix: string, labels: Labels = {}, part?: 'count' | 'sum'): Promise<number> => value(registry, m(suffix), labels, part);
  return {
    port: server.port,
    get,
    scrape: async () => (await request(server.port, 'GET', '/metrics')).body.toString('utf8'),
    ended: (n = 1) => eventually(async () => (await get('requests_total')) >= n),
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function writePieces(contentType: string, pieces: Buffer[], gate?: { at: number; wait: Promise<void> }): Handler {
  return async (_req, res) => {
    res.writeHead(200, { 'Content-Type': contentType });
    for (let i = 0; i < pieces.length; i++) {
      if (gate !== undefined && i === gate.at) await gate.wait;
      res.write(pieces[i]);
      if (i % 16 === 15) await tick();
    }
    res.end();
  };
}

/** Offsets of every UTF-8 continuation byte and between every CR and LF. */
function awkwardOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let i = 1; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if ((byte & 0xc0) === 0x80 || (byte === 0x0a && bytes[i - 1] === 0x0d)) offsets.push(i);
  }
  return offsets;
}

function cuttings(bytes: Buffer, seed: number): [string, Buffer[]][] {
  const random = seededRandom(seed);
  const cuts: [string, Buffer[]][] = [
    ['whole', [bytes]],
    ['inside every UTF-8 character and CRLF', cutAt(bytes, awkwardOffsets(bytes))],
  ];
  for (let i = 0; i < 6; i++) cuts.push([`random cuts ${i}`, cutAtRandom(bytes, 1 + Math.floor(random() * 200), random)]);
  return cuts;
}

// ---- Gemini ----------------------------------------------------------------------------------------------------

const GEMINI_SHAPE = { model: 'gemini-2.5-flash-001', pieces: PIECES, thoughts: THOUGHT_PIECES, thoughtsTokens: 30, prompt: 12, cached: 8 };
const GEMINI_OUTPUT = 2 * PIECES.length + 30;

describe('Gemini streamGenerateContent?alt=sse on a real server', () => {
  it('counts exactly (answer + thoughts) under the model in the path, however the CRLF stream is cut', async () => {
    for (const lineEnd of ['\r\n', '\n']) {
      const bytes = Buffer.from(geminiSse(geminiChunks(GEMINI_SHAPE), lineEnd));
      for (const [cutName, pieces] of cuttings(bytes, 40 + lineEnd.length)) {
        const app = await serve(writePieces('text/event-stream', pieces));
        const response = await postJson(app.port, GEMINI_PATH, { contents: [{ parts: [{ text: 'hi' }] }] });
        expect(response.body.equals(bytes)).toBe(true);
        await app.ended();
        const where = `${JSON.stringify(lineEnd)} ${cutName}`;
        const model = { model: 'gemini-2.5-flash' };
        expect([where, await app.get('output_tokens_total', model)]).toEqual([where, GEMINI_OUTPUT]);
        expect([where, await app.get('reasoning_tokens_total', model)]).toEqual([where, 30]);
        expect([where, await app.get('input_tokens_total', model)]).toEqual([where, 12]);
        expect([where, await app.get('cached_tokens', model, 'sum')]).toEqual([where, 8]);
        expect([where, await app.get('parse_errors_total')]).toEqual([where, 0]);
        expect([where, await app.get('output_tokens_overcount_total')]).toEqual([where, 0]);
        const labels = { ...model, endpoint: 'gemini_generate_content', request_type: 'stream', status: 'success', error_type: '' };
        expect([where, await app.get('requests_total', labels)]).toEqual([where, 1]);
        expect([where, await app.get('requests_finished_total', { ...model, finish_reason: 'stop' })]).toEqual([where, 1]);
      }
    }
  });

  it('is exact live: between two chunks /metrics shows the cumulative usage stated so far', async () => {
    const chunks = geminiChunks({ model: 'g', pieces: PIECES, answerTokens: PIECES.map((_, i) => 10 * (i + 1)) });
    const gate = signal();
    const app = await serve(writePieces('text/event-stream', chunks.map((c) => Buffer.from(geminiSse([c]))), { at: 3, wait: gate.wait }));
    const stream = await openStream(app.port, '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse', {});
    await stream.waitFor(PIECES[2] as string);
    await eventually(async () => (valueFromText(await app.scrape(), m('output_tokens_total'), { model: 'gemini-2.0-flash' }) ?? 0) === 30);
    gate.release();
    await stream.done;
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'gemini-2.0-flash' })).toBe(10 * PIECES.length);
  });

  it('unary :generateContent counts its usage, request_type unary', async () => {
    const app = await serve((_req, res) => void res.json(geminiBody(GEMINI_SHAPE)));
    await postJson(app.port, '/v1beta/models/gemini-2.5-flash:generateContent', { contents: [] });
    await app.ended();
    const labels = { model: 'gemini-2.5-flash', endpoint: 'gemini_generate_content', request_type: 'unary', status: 'success' };
    expect(await app.get('requests_total', labels)).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'gemini-2.5-flash' })).toBe(GEMINI_OUTPUT);
  });

  it('errors: a 429 error body, and an error object mid-stream, map to error_type', async () => {
    const app = await serve((req, res) => {
      if (req.path.endsWith(':generateContent')) {
        res.status(429).json({ error: { code: 429, message: 'Resource has been exhausted', status: 'RESOURCE_EXHAUSTED' } });
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(geminiSse(geminiChunks({ model: 'g', pieces: ['a', 'b'] }).slice(0, 1)));
      res.end(geminiSse([{ error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } }]));
    });
    await postJson(app.port, '/v1beta/models/gemini-x:generateContent', {});
    await postJson(app.port, '/v1beta/models/gemini-x:streamGenerateContent?alt=sse', {});
    await app.ended(2);
    expect(await app.get('requests_total', { endpoint: 'gemini_generate_content', error_type: 'overload' })).toBe(1);
    expect(await app.get('requests_total', { endpoint: 'gemini_generate_content', error_type: 'unavailable' })).toBe(1);
  });
});

describe('SSE streams that change format halfway', () => {
  it('Gemini, then NDJSON lines: each JSON line is reported, tokens counted so far stay, the response is untouched', async () => {
    const chunks = geminiChunks({ model: 'g', pieces: PIECES });
    const body = geminiSse(chunks.slice(0, 3)) + chunks.slice(3).map((chunk) => `${JSON.stringify(chunk)}\r\n`).join('');
    const app = await serve(writePieces('text/event-stream', cutAtRandom(Buffer.from(body), 40, seededRandom(8))));
    const response = await postJson(app.port, '/v1beta/models/g:streamGenerateContent?alt=sse', {});
    expect(response.body.toString('utf8')).toBe(body);
    await app.ended();
    expect(await app.get('parse_errors_total', { endpoint: 'gemini_generate_content', reason: 'invalid_sse_line' })).toBe(chunks.length - 3);
    expect(await app.get('output_tokens_total', { model: 'g' })).toBe(6);
    // No finishReason was read: the stream did not end as a Gemini stream ends.
    expect(await app.get('requests_total', { endpoint: 'gemini_generate_content', status: 'error', error_type: 'internal' })).toBe(1);
  });

  it('an AI SDK UI message stream, then raw JSON lines', async () => {
    const sse = (chunk: unknown): string => `data: ${JSON.stringify(chunk)}\n\n`;
    const body = sse({ type: 'start' }) + sse({ type: 'text-start', id: '0' }) + sse({ type: 'text-delta', id: '0', delta: 'Hé' }) + '{"type":"text-delta","id":"0","delta":"llo"}\n[1]\n';
    const app = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'x-vercel-ai-ui-message-stream': 'v1' });
      res.end(body);
    });
    await postJson(app.port, '/chat', {});
    await app.ended();
    expect(await app.get('parse_errors_total', { endpoint: 'ai_sdk_ui', reason: 'invalid_sse_line' })).toBe(2);
    expect(await app.get('output_tokens_total')).toBe(2);
  });
});

// ---- Ollama ----------------------------------------------------------------------------------------------------

const OLLAMA_SHAPE = { model: 'llama3.2', pieces: PIECES, thinking: THOUGHT_PIECES, evalCount: 44, promptEvalCount: 26 };

describe("Ollama's native API on a real server", () => {
  it('counts NDJSON /api/chat exactly at its end (eval_count), however it is cut, for LF and CRLF lines', async () => {
    for (const lineEnd of ['\n', '\r\n']) {
      const bytes = Buffer.from(ndjson(ollamaLines(OLLAMA_SHAPE), lineEnd));
      for (const [cutName, pieces] of cuttings(bytes, 70 + lineEnd.length)) {
        const app = await serve(writePieces('application/x-ndjson', pieces));
        const response = await postJson(app.port, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] });
        expect(response.body.equals(bytes)).toBe(true);
        await app.ended();
        const where = `${JSON.stringify(lineEnd)} ${cutName}`;
        const model = { model: 'llama3.2' };
        expect([where, await app.get('output_tokens_total', model)]).toEqual([where, 44]);
        expect([where, await app.get('reasoning_tokens_total', model)]).toEqual([where, countOf(THOUGHT_PIECES)]);
        expect([where, await app.get('input_tokens_total', model)]).toEqual([where, 26]);
        expect([where, await app.get('parse_errors_total')]).toEqual([where, 0]);
        const labels = { ...model, endpoint: 'ollama_chat', request_type: 'stream', status: 'success', error_type: '' };
        expect([where, await app.get('requests_total', labels)]).toEqual([where, 1]);
        expect([where, await app.get('time_to_first_token_seconds', model, 'count')]).toEqual([where, 1]);
      }
    }
  });

  it('moves live, line by line: between two lines /metrics shows the tokens so far', async () => {
    const lines = ollamaLines({ model: 'qwen3', pieces: PIECES, kind: 'generate', evalCount: 30 });
    const gate = signal();
    const app = await serve(writePieces('application/x-ndjson', lines.map((line) => Buffer.from(ndjson([line]))), { at: 4, wait: gate.wait }));
    const stream = await openStream(app.port, '/api/generate', { model: 'qwen3', prompt: 'hi' });
    await stream.waitFor(JSON.stringify(PIECES[3]));
    const soFar = countOf(PIECES.slice(0, 4));
    await eventually(async () => (valueFromText(await app.scrape(), m('output_tokens_total'), { model: 'qwen3' }) ?? 0) === soFar);
    gate.release();
    await stream.done;
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'qwen3' })).toBe(30);
    expect(await app.get('requests_total', { endpoint: 'ollama_generate', request_type: 'stream' })).toBe(1);
  });

  it('stream: false answers (application/json) are counted as unary', async () => {
    const app = await serve((_req, res) => void res.json(ollamaBody({ model: 'llama3.2', pieces: PIECES, evalCount: 17, promptEvalCount: 5 })));
    await postJson(app.port, '/api/chat', { model: 'llama3.2', stream: false, messages: [] });
    await app.ended();
    expect(await app.get('requests_total', { model: 'llama3.2', endpoint: 'ollama_chat', request_type: 'unary', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'llama3.2' })).toBe(17);
    expect(await app.get('input_tokens_total', { model: 'llama3.2' })).toBe(5);
  });

  it('an {"error": …} line mid-stream ends the request as an error; tokens already counted stay', async () => {
    const lines = [...ollamaLines({ model: 'gemma4', pieces: ['That', "'s"] }).slice(0, 2), { error: 'an error was encountered while running the model' }];
    const app = await serve(writePieces('application/x-ndjson', [Buffer.from(ndjson(lines))]));
    await postJson(app.port, '/api/generate', { model: 'gemma4', prompt: 'x' });
    await app.ended();
    expect(await app.get('requests_total', { endpoint: 'ollama_generate', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await app.get('output_tokens_total')).toBe(6);
  });

  it('a stream cut before its done line is an internal error (upstream broke), as for the other formats', async () => {
    const lines = ollamaLines({ model: 'llama3.2', pieces: PIECES, evalCount: 44 });
    const app = await serve(writePieces('application/x-ndjson', [Buffer.from(ndjson(lines.slice(0, -1)))]));
    await postJson(app.port, '/api/chat', { model: 'llama3.2', messages: [] });
    await app.ended();
    expect(await app.get('requests_total', { endpoint: 'ollama_chat', status: 'error', error_type: 'internal' })).toBe(1);
  });

  it('a line that never ends is bounded by maxEventBytes: reported, skipped, the response untouched', async () => {
    const lines = ollamaLines({ model: 'llama3.2', pieces: PIECES, evalCount: 44 });
    const endless = `{"model":"llama3.2","response":"${'z'.repeat(50_000)}`;
    const bytes = Buffer.from(ndjson(lines.slice(0, 3)) + endless);
    const app = await serve(writePieces('application/x-ndjson', cutAtRandom(bytes, 100, seededRandom(5))), { maxEventBytes: 4096 });
    const response = await postJson(app.port, '/api/chat', { model: 'llama3.2', messages: [] });
    expect(response.body.equals(bytes)).toBe(true);
    await app.ended();
    expect(await app.get('parse_errors_total', { endpoint: 'ollama_chat', reason: 'event_too_large' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'llama3.2' })).toBe(countOf(PIECES.slice(0, 3)));
  });

  it('a stream that changes format halfway (SSE lines, JSON that is not an object): each problem in parse_errors_total', async () => {
    const lines = ollamaLines({ model: 'llama3.2', pieces: PIECES, evalCount: 44 });
    const body = `${ndjson(lines.slice(0, 2))}data: {"choices":[]}\n\n[1,2]\n"text"\n${ndjson(lines.slice(2))}`;
    const app = await serve(writePieces('application/x-ndjson', [Buffer.from(body)]));
    const response = await postJson(app.port, '/api/chat', { model: 'llama3.2', messages: [] });
    expect(response.body.toString('utf8')).toBe(body);
    await app.ended();
    expect(await app.get('parse_errors_total', { endpoint: 'ollama_chat', reason: 'invalid_json' })).toBe(1);
    expect(await app.get('parse_errors_total', { endpoint: 'ollama_chat', reason: 'unexpected_shape' })).toBe(2);
    expect(await app.get('output_tokens_total', { model: 'llama3.2' })).toBe(44);
    expect(await app.get('requests_total', { endpoint: 'ollama_chat', status: 'success' })).toBe(1);
  });

  it('NDJSON under a label from the endpoint option is read as Ollama by its content type', async () => {
    const app = await serve(writePieces('application/x-ndjson', [Buffer.from(ndjson(ollamaLines(OLLAMA_SHAPE)))]), {
      endpoint: (req) => (req.url?.startsWith('/llm/') ? 'local_llm' : undefined),
    });
    await postJson(app.port, '/llm/generate', { model: 'llama3.2' });
    await app.ended();
    expect(await app.get('requests_total', { model: 'llama3.2', endpoint: 'local_llm', request_type: 'stream', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'llama3.2' })).toBe(44);
  });
});
