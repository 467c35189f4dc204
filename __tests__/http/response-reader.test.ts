/**
 * The response reader on its own: a response head and body chunks in, metrics out, through a real RequestState on
 * a fresh Registry. It decides at the head how the body is read (SSE events, NDJSON lines, a JSON body, streamed
 * text, a compressed copy, or not at all); each way is checked by the counts it leaves, however the bytes are cut.
 */
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Registry } from 'prom-client';
import { ResponseReader } from '../../lib/http/response-reader';
import type { ResponseReaderSettings } from '../../lib/http/response-reader';
import type { ResponseOutcome } from '../../lib/http/hook';
import { eventually } from '../support/http';
import { seededRandom } from '../support/prng';
import { m, value } from '../support/registry-values';
import { newRequestState } from '../support/request-state';
import { chatChunk, codePoints, cutAt, cutAtRandom, DONE, sse } from '../support/streams';

interface Head {
  status?: number;
  headers: Record<string, string>;
}

interface Run {
  registry: Registry;
  reader: ResponseReader;
  internalErrors: unknown[];
  compressedEncodings: string[];
  /** Reasons reported to `malformed`, in order. */
  malformed: string[];
  count(name: string, labels?: Record<string, string>): Promise<number>;
}

/** A reader for one request to `endpoint`, as the middleware builds it, with its settings' reports recorded. */
function newRun(endpoint: string, options: { maxBodyBytes?: number; maxEventBytes?: number; url?: string } = {}): Run {
  const { registry, config, state, malformed } = newRequestState(endpoint, options);
  const internalErrors: unknown[] = [];
  const compressedEncodings: string[] = [];
  const settings: ResponseReaderSettings = {
    maxEventBytes: config.maxEventBytes,
    maxBodyBytes: config.maxBodyBytes,
    internalError: (error) => internalErrors.push(error),
    compressedBody: (encoding) => compressedEncodings.push(encoding),
    hints: () => undefined,
  };
  const req = new IncomingMessage(new Socket());
  const reader = new ResponseReader(state, { endpoint, byOption: false, url: options.url }, settings, req);
  return {
    registry,
    reader,
    internalErrors,
    compressedEncodings,
    malformed,
    count: (name, labels = {}) => value(registry, m(name), labels),
  };
}

function respond(run: Run, head: Head, chunks: readonly (string | Buffer)[], outcome: ResponseOutcome = 'finished'): void {
  const headers = Object.fromEntries(Object.entries(head.headers).map(([name, v]) => [name.toLowerCase(), v]));
  const status = head.status ?? 200;
  run.reader.onHead(status, (name) => headers[name]);
  for (const chunk of chunks) run.reader.onBody(chunk, undefined);
  // A response that did not finish was never ended by the app.
  if (outcome === 'finished') run.reader.onBodyEnd();
  run.reader.onDone(outcome, status);
}

const SSE_HEAD: Head = { headers: { 'Content-Type': 'text/event-stream; charset=utf-8' } };
const JSON_HEAD: Head = { headers: { 'Content-Type': 'application/json' } };
const TEXTS = ['Hé', 'llo', ' wörld', ' 你好', ' 🌍', '!'];
const TEXT_TOKENS = TEXTS.reduce((sum, text) => sum + codePoints(text), 0);

function chatStream(model: string): string {
  return TEXTS.map((text) => sse(chatChunk(model, [{ delta: { content: text } }]))).join('') + sse(chatChunk(model, [{ delta: {}, finish_reason: 'stop' }])) + DONE;
}

describe('ResponseReader', () => {
  describe('an SSE stream', () => {
    it('counts every delta once and ends the request, however the bytes are cut (inside characters too)', async () => {
      const bytes = Buffer.from(chatStream('m1'));
      const random = seededRandom(12);
      for (let round = 0; round < 40; round++) {
        const run = newRun('chat_completions');
        respond(run, SSE_HEAD, cutAtRandom(bytes, 1 + (round % 30), random));
        expect(await run.count('output_tokens_total', { model: 'm1' })).toBe(TEXT_TOKENS);
        expect(await run.count('requests_total', { model: 'm1', request_type: 'stream', status: 'success' })).toBe(1);
        expect(await run.count('requests_finished_total', { finish_reason: 'stop' })).toBe(1);
        expect(run.malformed).toEqual([]);
      }
    });

    it('counts the same whether the chunks are Buffers or strings, one byte at a time or whole', async () => {
      const text = chatStream('m1');
      const bytes = Buffer.from(text);
      const byByte = newRun('chat_completions');
      respond(byByte, SSE_HEAD, cutAt(bytes, Array.from({ length: bytes.length }, (_, i) => i)));
      const whole = newRun('chat_completions');
      respond(whole, SSE_HEAD, [text]);
      expect(await byByte.count('output_tokens_total')).toBe(TEXT_TOKENS);
      expect(await whole.count('output_tokens_total')).toBe(TEXT_TOKENS);
    });

    it('skips an event larger than maxEventBytes, counts it, and reads the events around it', async () => {
      const run = newRun('chat_completions', { maxEventBytes: 200 });
      const huge = sse(chatChunk('m1', [{ delta: { content: 'x'.repeat(500) } }]));
      respond(run, SSE_HEAD, [sse(chatChunk('m1', [{ delta: { content: 'abc' } }])), huge, sse(chatChunk('m1', [{ delta: { content: 'de' } }])), DONE]);
      expect(run.malformed).toEqual(['event_too_large']);
      expect(await run.count('parse_errors_total', { endpoint: 'chat_completions', reason: 'event_too_large' })).toBe(1);
      expect(await run.count('output_tokens_total', { model: 'm1' })).toBe(5);
    });

    it('reports a JSON line where an SSE field belongs, and reads the events that follow', async () => {
      const run = newRun('chat_completions');
      respond(run, SSE_HEAD, [`${JSON.stringify(chatChunk('m1', [{ delta: { content: 'lost' } }]))}\n`, sse(chatChunk('m1', [{ delta: { content: 'kept' } }])), DONE]);
      expect(run.malformed).toEqual(['invalid_sse_line']);
      expect(await run.count('output_tokens_total', { model: 'm1' })).toBe(4);
    });
  });

  describe('an NDJSON stream', () => {
    it('is read line by line as Ollama, whatever the path said, and its final eval_count stands', async () => {
      const lines = [
        { model: 'llama3', message: { role: 'assistant', content: 'Hé' }, done: false },
        { model: 'llama3', message: { role: 'assistant', content: 'llo' }, done: false },
        { model: 'llama3', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 9, prompt_eval_count: 4 },
      ];
      const bytes = Buffer.from(lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
      const run = newRun('chat_completions');
      respond(run, { headers: { 'Content-Type': 'application/x-ndjson' } }, cutAtRandom(bytes, 7, seededRandom(3)));
      expect(await run.count('output_tokens_total', { model: 'llama3' })).toBe(9);
      expect(await run.count('input_tokens_total', { model: 'llama3' })).toBe(4);
      expect(await run.count('requests_total', { model: 'llama3', request_type: 'stream' })).toBe(1);
    });
  });

  describe('a unary JSON body', () => {
    const body = {
      model: 'm2',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there' }, finish_reason: 'length' }],
      usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 },
    };

    it('reads the usage once the body ends, however it is cut', async () => {
      const bytes = Buffer.from(JSON.stringify(body));
      const run = newRun('chat_completions');
      respond(run, JSON_HEAD, cutAtRandom(bytes, 9, seededRandom(5)));
      expect(await run.count('output_tokens_total', { model: 'm2' })).toBe(3);
      expect(await run.count('input_tokens_total', { model: 'm2' })).toBe(7);
      expect(await run.count('requests_total', { model: 'm2', request_type: 'unary', status: 'success' })).toBe(1);
      expect(await run.count('requests_finished_total', { finish_reason: 'length' })).toBe(1);
    });

    it('counts a declared JSON body that does not parse as invalid_json; an undeclared one is simply not JSON', async () => {
      const declared = newRun('chat_completions');
      respond(declared, JSON_HEAD, ['{"model": "m2", "choices": [']);
      expect(await declared.count('parse_errors_total', { reason: 'invalid_json' })).toBe(1);
      expect(await declared.count('requests_total')).toBe(1);

      const undeclared = newRun('chat_completions');
      respond(undeclared, { headers: {} }, ['not json at all']);
      expect(undeclared.malformed).toEqual([]);
      expect(await undeclared.count('requests_total')).toBe(1);
    });

    it('past maxBodyBytes reports body_too_large and still reads the usage that follows the text', async () => {
      const long = { ...body, choices: [{ index: 0, message: { role: 'assistant', content: 'y'.repeat(5000) }, finish_reason: 'stop' }] };
      const run = newRun('chat_completions', { maxBodyBytes: 1000 });
      respond(run, JSON_HEAD, [JSON.stringify(long)]);
      expect(run.malformed).toEqual(['body_too_large']);
      expect(await run.count('output_tokens_total', { model: 'm2' })).toBe(3);
    });

    it('reads nothing of an empty body and still ends the request', async () => {
      const run = newRun('chat_completions');
      respond(run, JSON_HEAD, []);
      expect(run.malformed).toEqual([]);
      expect(await run.count('output_tokens_total')).toBe(0);
      expect(await run.count('requests_total')).toBe(1);
    });
  });

  describe("AI SDK 4's data stream", () => {
    it('counts every part once, by its header on any path, however the bytes are cut (inside characters too)', async () => {
      const parts = [`f:{"messageId":"msg-1"}`, ...TEXTS.map((text) => `0:${JSON.stringify(text)}`), `d:{"finishReason":"stop","usage":{"promptTokens":3,"completionTokens":null}}`];
      const bytes = Buffer.from(`${parts.join('\n')}\n`);
      const head: Head = { headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Vercel-AI-Data-Stream': 'v1' } };
      const random = seededRandom(13);
      for (let round = 0; round < 40; round++) {
        const run = newRun('chat_completions');
        respond(run, head, cutAtRandom(bytes, 1 + (round % 30), random));
        expect(await run.count('output_tokens_total')).toBe(TEXT_TOKENS);
        expect(await run.count('input_tokens_total')).toBe(3);
        expect(await run.count('requests_total', { endpoint: 'ai_sdk_data', request_type: 'stream', status: 'success' })).toBe(1);
        expect(await run.count('requests_finished_total', { finish_reason: 'stop' })).toBe(1);
        expect(run.malformed).toEqual([]);
      }
    });
  });

  describe('a body it does not read', () => {
    it('ignores an HTML error page but counts the request with its status', async () => {
      const run = newRun('chat_completions');
      respond(run, { status: 503, headers: { 'Content-Type': 'text/html' } }, ['<html>{"choices": not ours}</html>']);
      expect(run.malformed).toEqual([]);
      expect(await run.count('requests_total', { status: 'error' })).toBe(1);
      expect(await run.count('output_tokens_total')).toBe(0);
    });

    it('reads streamed plain text only on an AI SDK text route, as generated text', async () => {
      const run = newRun('ai_sdk_text');
      respond(run, { headers: { 'Content-Type': 'text/plain; charset=utf-8' } }, TEXTS);
      expect(await run.count('output_tokens_total')).toBe(TEXT_TOKENS);
      expect(await run.count('requests_total', { endpoint: 'ai_sdk_text', request_type: 'stream' })).toBe(1);

      const chat = newRun('chat_completions');
      respond(chat, { headers: { 'Content-Type': 'text/plain; charset=utf-8' } }, TEXTS);
      expect(await chat.count('output_tokens_total')).toBe(0);
      expect(await chat.count('requests_total', { endpoint: 'chat_completions' })).toBe(1);
    });
  });

  describe("plain text that is a relay's NDJSON", () => {
    const PLAIN: Head = { headers: { 'Content-Type': 'text/plain; charset=utf-8' } };
    const relayed = `${TEXTS.map((text) => JSON.stringify(chatChunk('m1', [{ delta: { content: text } }]))).join('\n')}\n`;

    it('is read line by line however its first line is cut across writes', async () => {
      for (const cut of [1, 5, 40, relayed.indexOf('\n'), relayed.indexOf('\n') + 1]) {
        const run = newRun('ai_sdk_text');
        respond(run, PLAIN, [relayed.slice(0, cut), relayed.slice(cut)]);
        expect([cut, await run.count('output_tokens_total', { model: 'm1' })]).toEqual([cut, TEXT_TOKENS]);
      }
    });

    it('does not hold back generated JSON (a structured answer streamed as text): it is counted as it comes', async () => {
      const run = newRun('ai_sdk_text');
      const header = (name: string): string | undefined => (name === 'content-type' ? 'text/plain; charset=utf-8' : undefined);
      run.reader.onHead(200, header);
      for (const piece of ['{"recipe":{"name":"Sour', 'dough","steps":["Feed', ' the starter"]}}']) run.reader.onBody(piece, undefined);
      // Before the body ends: every write already counted.
      expect(await run.count('output_tokens_total')).toBe(codePoints('{"recipe":{"name":"Sourdough","steps":["Feed the starter"]}}'));
      // An object whose id is not followed by OpenAI's "object" is generated too.
      const withId = newRun('ai_sdk_text');
      withId.reader.onHead(200, header);
      withId.reader.onBody('{"id":"42","title":"Bread"', undefined);
      expect(await withId.count('output_tokens_total')).toBe(codePoints('{"id":"42","title":"Bread"'));
    });

    it('is not taken for one when its JSON lines name no model (generated text), or its first line never ends', async () => {
      const quiz = '{"question":"2+2?","choices":["3","4"]}\n{"question":"3+3?","choices":[{"label":"6"}]}\n';
      for (const writes of [[quiz], [quiz.slice(0, 9), quiz.slice(9)]]) {
        const run = newRun('ai_sdk_text');
        respond(run, PLAIN, writes);
        expect(await run.count('output_tokens_total')).toBe(codePoints(quiz));
        expect(await run.count('requests_total', { status: 'success' })).toBe(1);
      }
      // A long JSON answer without a line end is counted once it is past what one event's line could be.
      const long = `{"answer":"${'x'.repeat(5000)}"}`;
      const held = newRun('ai_sdk_text');
      respond(held, PLAIN, [long.slice(0, 3000), long.slice(3000)]);
      expect(await held.count('output_tokens_total')).toBe(codePoints(long));
    });
  });

  describe('a compressed body', () => {
    it('is read from its decoded copy, all of which is counted by the time the request ends', async () => {
      const run = newRun('chat_completions');
      const gzipped = gzipSync(Buffer.from(chatStream('m3')));
      respond(run, { headers: { 'Content-Type': 'text/event-stream', 'Content-Encoding': 'gzip' } }, cutAtRandom(gzipped, 5, seededRandom(8)));
      await eventually(async () => (await run.count('requests_total')) === 1);
      expect(await run.count('output_tokens_total', { model: 'm3' })).toBe(TEXT_TOKENS);
      expect(await run.count('requests_finished_total', { finish_reason: 'stop' })).toBe(1);
      expect(run.malformed).toEqual([]);
    });

    it('in an encoding it does not decode, is reported once and the request is still counted', async () => {
      const run = newRun('chat_completions');
      respond(run, { headers: { 'Content-Type': 'text/event-stream', 'Content-Encoding': 'zstd' } }, [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3])]);
      expect(run.compressedEncodings).toEqual(['zstd']);
      expect(run.malformed).toEqual(['compressed_body']);
      expect(await run.count('requests_total')).toBe(1);
      expect(await run.count('output_tokens_total')).toBe(0);
    });

    it('that is corrupt stops being read, is reported, and the request is still counted', async () => {
      const run = newRun('chat_completions');
      respond(run, { headers: { 'Content-Type': 'text/event-stream', 'Content-Encoding': 'gzip' } }, [Buffer.from('this is not gzip at all')]);
      await eventually(async () => (await run.count('requests_total')) === 1);
      expect(run.malformed).toEqual(['compressed_body']);
      expect(run.compressedEncodings).toEqual([]);
    });
  });

  it('after a listener error reads no more of the body, reports it, and still ends the request', async () => {
    const run = newRun('chat_completions');
    run.reader.onHead(200, (name) => (name === 'content-type' ? 'text/event-stream' : undefined));
    run.reader.onBody(sse(chatChunk('m1', [{ delta: { content: 'abc' } }])), undefined);
    const failure = new Error('listener bug');
    run.reader.onListenerError(failure);
    run.reader.onBody(sse(chatChunk('m1', [{ delta: { content: 'never read' } }])), undefined);
    run.reader.onBodyEnd();
    run.reader.onDone('finished', 200);
    expect(run.internalErrors).toEqual([failure]);
    expect(await run.count('output_tokens_total', { model: 'm1' })).toBe(3);
    expect(await run.count('requests_total', { model: 'm1' })).toBe(1);
  });

  it('ends a stream the client left as cancelled, keeping what was counted', async () => {
    const run = newRun('chat_completions');
    const events = TEXTS.slice(0, 3).map((text) => sse(chatChunk('m1', [{ delta: { content: text } }])));
    respond(run, SSE_HEAD, events, 'client_left');
    expect(await run.count('output_tokens_total', { model: 'm1' })).toBe(TEXTS.slice(0, 3).reduce((sum, text) => sum + codePoints(text), 0));
    expect(await run.count('requests_total', { model: 'm1', status: 'error', error_type: 'cancelled' })).toBe(1);
  });
});
