/**
 * Gemini and Ollama responses through a real Express server and socket: the streams cut at random points, inside
 * UTF-8 characters and between CR and LF; the values read back from the registry and from /metrics.
 */
import { expectCounts } from '../support/expect-counts';
import { eventually, openStream, postJson, signal } from '../support/http';
import { meteredApp } from '../support/metered-app';
import type { MeteredApp, MeteredOptions, Route } from '../support/metered-app';
import { seededRandom } from '../support/prng';
import { m, valueFromText } from '../support/registry-values';
import { countOf, cutAtRandom, cuttings, GEMINI_PATH, geminiBody, geminiChunks, geminiSse, ndjson, ollamaBody, ollamaLines, PIECES, THOUGHT_PIECES } from '../support/streams';

type Handler = Route;

/** Express with a body parser, the middleware (one token per code point) and /metrics; every other POST goes to `handler`. */
const serve = (handler: Handler, options: MeteredOptions = {}): Promise<MeteredApp> => meteredApp(handler, options);

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

/** Whole, inside every character and after every CR, and six times at a seeded random number (1–200) of random offsets. */
const cuttingsOf = (bytes: Buffer, seed: number): [string, Buffer[]][] =>
  cuttings(bytes, seededRandom(seed), Array.from({ length: 6 }, () => (random: () => number) => 1 + Math.floor(random() * 200)));

// ---- Gemini ----------------------------------------------------------------------------------------------------

const GEMINI_SHAPE = { model: 'gemini-2.5-flash-001', pieces: PIECES, thoughts: THOUGHT_PIECES, thoughtsTokens: 30, prompt: 12, cached: 8 };
const GEMINI_OUTPUT = 2 * PIECES.length + 30;

describe('Gemini streamGenerateContent?alt=sse on a real server', () => {
  it('counts exactly (answer + thoughts) under the model in the path, however the CRLF stream is cut', async () => {
    for (const lineEnd of ['\r\n', '\n']) {
      const bytes = Buffer.from(geminiSse(geminiChunks(GEMINI_SHAPE), lineEnd));
      for (const [cutName, pieces] of cuttingsOf(bytes, 40 + lineEnd.length)) {
        await expectCounts(
          pieces,
          {
            outputTokens: GEMINI_OUTPUT,
            reasoningTokens: 30,
            inputTokens: 12,
            cachedTokens: 8,
            parseErrors: 0,
            overcount: 0,
            ended: { endpoint: 'gemini_generate_content', request_type: 'stream', status: 'success', error_type: '' },
            finishReason: 'stop',
          },
          {
            path: GEMINI_PATH,
            body: { contents: [{ parts: [{ text: 'hi' }] }] },
            contentType: 'text/event-stream',
            labels: { model: 'gemini-2.5-flash' },
            where: `${JSON.stringify(lineEnd)} ${cutName}`,
          },
        );
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
      for (const [cutName, pieces] of cuttingsOf(bytes, 70 + lineEnd.length)) {
        await expectCounts(
          pieces,
          {
            outputTokens: 44,
            reasoningTokens: countOf(THOUGHT_PIECES),
            inputTokens: 26,
            parseErrors: 0,
            ended: { endpoint: 'ollama_chat', request_type: 'stream', status: 'success', error_type: '' },
            firstTokens: 1,
          },
          {
            path: '/api/chat',
            body: { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] },
            contentType: 'application/x-ndjson',
            labels: { model: 'llama3.2' },
            where: `${JSON.stringify(lineEnd)} ${cutName}`,
          },
        );
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
