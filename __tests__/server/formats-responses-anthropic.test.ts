import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import { expectAppCounts, expectCounts } from '../support/expect-counts';
import { closedAfterEach, eventually, listen, openStream, postJson, signal } from '../support/http';
import { meteredApp } from '../support/metered-app';
import type { MeteredApp, Route } from '../support/metered-app';
import { seededRandom } from '../support/prng';
import { m, value, valueFromText } from '../support/registry-values';
import { anthropicError, anthropicStream, ARG_PIECES, codePoints, continuousUsageStream, countOf, cutAtRandom, cuttings, LINE_ENDS, REASONING_PIECES, responseObject, ResponsesEvents, responsesStream, responsesUsage, TEXT_PIECES, textDelta, toSse } from '../support/streams';
import type { AnthropicStreamShape, ResponsesStreamShape, TypedEvent } from '../support/streams';

const servers = closedAfterEach();

type Handler = Route;

/** The three routes of the two formats; without a body parser unless asked, so the model comes from the stream. */
const serve = (handler: Handler, options: { parseBody?: boolean } = {}): Promise<MeteredApp> =>
  meteredApp({ '/v1/responses': handler, '/v1/messages': handler, '/v1/chat/completions': handler }, { json: options.parseBody === true });

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes an event stream in the given pieces (yielding to the event loop now and then), optionally pausing on a gate. */
function streamPieces(pieces: Buffer[], options: { gateAt?: number; gate?: Promise<void>; destroy?: boolean } = {}): Handler {
  return async (_req, res) => {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('Cache-Control', 'no-cache');
    for (let i = 0; i < pieces.length; i++) {
      if (i === options.gateAt && options.gate !== undefined) await options.gate;
      if (options.destroy === true && i === pieces.length - 1) {
        // Let the bytes reach the client before the connection breaks.
        await new Promise<void>((resolve) => res.write(pieces[i], () => resolve()));
        await tick();
      } else {
        res.write(pieces[i]);
      }
      if (i % 32 === 31) await tick();
    }
    if (options.destroy === true) res.destroy();
    else res.end();
  };
}

function json(body: unknown): Handler {
  return (_req, res) => {
    res.status(200).json(body);
  };
}

// ---- how a stream is cut ----------------------------------------------------------------------------------------

/** Whole, inside every character and after every CR, at 50 and 300 seeded random offsets, and one byte per write. */
const cuttingsOf = (bytes: Buffer, seed: number): [string, Buffer[]][] => cuttings(bytes, seededRandom(seed), [50, 300], { bytePerWrite: true });

/**
 * The deterministic part of /metrics: every counter, gauge and token histogram line, and the `_count` of the
 * timing histograms (their sums and buckets depend on timing).
 */
function deterministic(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .filter((line) => !/_seconds_(bucket|sum)/.test(line))
    .sort();
}

// ---- OpenAI Responses ------------------------------------------------------------------------------------------

const RESPONSES_SHAPE: ResponsesStreamShape = {
  model: 'gpt-x',
  reasoning: REASONING_PIECES,
  text: TEXT_PIECES,
  end: 'completed',
  usage: { input_tokens: 1200, output_tokens: 75, cached: 1024, reasoning: 30 },
};
const RESPONSES_LIVE = countOf(REASONING_PIECES) + countOf(TEXT_PIECES);

describe('OpenAI Responses on a real server (POST /v1/responses)', () => {
  it('counts a realistic stream the same whether written whole or cut anywhere, for LF, CRLF and CR line ends', async () => {
    expect(RESPONSES_LIVE).toBeLessThan(75);
    for (const [name, lineEnd] of LINE_ENDS) {
      const bytes = Buffer.from(toSse(responsesStream(RESPONSES_SHAPE), lineEnd));
      let reference: string[] | undefined;
      for (const [cutName, pieces] of cuttingsOf(bytes, 1000 + lineEnd.length)) {
        const where = `${name} ${cutName}`;
        const app = await expectCounts(
          pieces,
          {
            outputTokens: 75,
            reasoningTokens: 30,
            inputTokens: 1200,
            overcount: 0,
            parseErrors: 0,
            ended: { endpoint: 'responses', request_type: 'stream', status: 'success', error_type: '' },
          },
          { path: '/v1/responses', body: { model: 'gpt-x', stream: true, input: 'hi' }, contentType: 'text/event-stream', labels: { model: 'gpt-x' }, where, app: { json: false } },
        );
        const snapshot = deterministic(await app.scrape());
        if (reference === undefined) reference = snapshot;
        else expect([where, snapshot]).toEqual([where, reference]);
      }
    }
  });

  it('reads the cached_tokens histogram from input_tokens_details.cached_tokens, and counts finish_reason stop', async () => {
    const app = await serve(streamPieces([Buffer.from(toSse(responsesStream(RESPONSES_SHAPE)))]));
    await postJson(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
    await app.ended();
    expect(await app.get('cached_tokens', { model: 'gpt-x' }, 'count')).toBe(1);
    expect(await app.get('cached_tokens', { model: 'gpt-x' }, 'sum')).toBe(1024);
    const text = await app.scrape();
    expect(valueFromText(text, m('cached_tokens_bucket'), { model: 'gpt-x', le: '870' })).toBe(0);
    expect(valueFromText(text, m('cached_tokens_bucket'), { model: 'gpt-x', le: '1800' })).toBe(1);
    expect(await app.get('input_sequence_tokens', { model: 'gpt-x' }, 'sum')).toBe(1200);
    expect(await app.get('output_sequence_tokens', { model: 'gpt-x' }, 'sum')).toBe(75);
    expect(await app.get('requests_finished_total', { model: 'gpt-x', finish_reason: 'stop' })).toBe(1);
  });

  it('function-call arguments count live, the total ends at usage, finish_reason tool_calls', async () => {
    const shape = { ...RESPONSES_SHAPE, args: ARG_PIECES, usage: { input_tokens: 10, output_tokens: 90, reasoning: 30 } };
    const app = await serve(streamPieces([Buffer.from(toSse(responsesStream(shape)))]));
    await postJson(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(90);
    expect(await app.get('requests_finished_total', { model: 'gpt-x', finish_reason: 'tool_calls' })).toBe(1);
  });

  it('publishes a live estimate above the final usage as output_tokens_overcount_total', async () => {
    const shape = { ...RESPONSES_SHAPE, usage: { input_tokens: 10, output_tokens: RESPONSES_LIVE - 7, reasoning: 2 } };
    const app = await serve(streamPieces([Buffer.from(toSse(responsesStream(shape)))]));
    await postJson(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(RESPONSES_LIVE);
    expect(await app.get('output_tokens_overcount_total', { model: 'gpt-x' })).toBe(7);
    expect(await app.get('output_sequence_tokens', { model: 'gpt-x' }, 'sum')).toBe(RESPONSES_LIVE - 7);
  });

  it('response.incomplete with max_output_tokens → finish_reason length, a success', async () => {
    const shape: ResponsesStreamShape = { ...RESPONSES_SHAPE, end: 'incomplete', usage: { input_tokens: 10, output_tokens: 64 } };
    const app = await serve(streamPieces([Buffer.from(toSse(responsesStream(shape)))]));
    await postJson(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
    await app.ended();
    expect(await app.get('requests_finished_total', { model: 'gpt-x', finish_reason: 'length' })).toBe(1);
    expect(await app.get('requests_total', { status: 'success', endpoint: 'responses' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(64);
  });

  it('response.failed → status error with its mapped error_type, usage still counted', async () => {
    const shape: ResponsesStreamShape = {
      ...RESPONSES_SHAPE,
      end: 'failed',
      usage: { input_tokens: 10, output_tokens: 70 },
      terminal: { error: { code: 'rate_limit_exceeded', message: 'slow down' } },
    };
    const app = await serve(streamPieces([Buffer.from(toSse(responsesStream(shape)))]));
    await postJson(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
    await app.ended();
    expect(await app.get('requests_total', { endpoint: 'responses', status: 'error', error_type: 'overload' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(70);
  });

  it('an error event mid-stream → status error, error_type from the event', async () => {
    const events = responsesStream({ ...RESPONSES_SHAPE, end: 'none' });
    events.push({ event: 'error', data: { type: 'error', sequence_number: 999, code: 'server_error', message: 'The server had an error', param: null } });
    const app = await serve(streamPieces([Buffer.from(toSse(events))]));
    await postJson(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
    await app.ended();
    expect(await app.get('requests_total', { model: 'gpt-x', endpoint: 'responses', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(RESPONSES_LIVE);
  });

  it('a stream that ends (or breaks) before response.completed → error_type internal, live tokens kept', async () => {
    for (const destroy of [false, true]) {
      const app = await serve(streamPieces([Buffer.from(toSse(responsesStream({ ...RESPONSES_SHAPE, end: 'none' })))], { destroy }));
      const open = await openStream(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
      await open.done;
      await app.ended();
      expect([destroy, await app.get('requests_total', { model: 'gpt-x', endpoint: 'responses', status: 'error', error_type: 'internal' })]).toEqual([destroy, 1]);
      expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(RESPONSES_LIVE);
      expect(await app.get('inflight_requests')).toBe(0);
    }
  });

  it('a scrape of /metrics mid-stream shows the tokens written so far', async () => {
    const events = responsesStream(RESPONSES_SHAPE);
    const firstText = events.findIndex((e) => e.event === 'response.output_text.delta');
    const head = events.slice(0, firstText + 3);
    const headTokens = countOf(REASONING_PIECES) + countOf(TEXT_PIECES.slice(0, 3));
    const gate = signal();
    const app = await serve(streamPieces([Buffer.from(toSse(head)), Buffer.from(toSse(events.slice(firstText + 3)))], { gateAt: 1, gate: gate.wait }));
    const open = await openStream(app.port, '/v1/responses', { model: 'gpt-x', stream: true, input: 'hi' });
    try {
      await open.waitFor(JSON.stringify(head[head.length - 1]?.data));
      const live = await app.scrape();
      expect(valueFromText(live, m('output_tokens_total'), { model: 'gpt-x' })).toBe(headTokens);
      expect(valueFromText(live, m('reasoning_tokens_total'), { model: 'gpt-x' })).toBe(countOf(REASONING_PIECES));
      expect(valueFromText(live, m('inflight_requests'), { model: 'gpt-x' })).toBe(1);
      expect(valueFromText(live, m('requests_total'), { model: 'gpt-x', endpoint: 'responses', request_type: 'stream', status: 'success', error_type: '' })).toBeUndefined();
    } finally {
      gate.release();
    }
    await open.done;
    await app.ended();
    expect(valueFromText(await app.scrape(), m('output_tokens_total'), { model: 'gpt-x' })).toBe(75);
  });

  it('counts a unary Responses body exactly from its usage', async () => {
    const body = responseObject('gpt-x', 'completed', {
      output: [{ id: 'msg_1', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello there', annotations: [] }] }],
      usage: responsesUsage({ input_tokens: 40, output_tokens: 123, cached: 32, reasoning: 100 }),
    });
    const app = await serve(json(body));
    const response = await postJson(app.port, '/v1/responses', { model: 'gpt-x', input: 'hi' });
    expect(JSON.parse(response.body.toString())).toEqual(body);
    await app.ended();
    await expectAppCounts(
      app,
      { outputTokens: 123, reasoningTokens: 100, inputTokens: 40, cachedTokens: 32, ended: { endpoint: 'responses', request_type: 'unary', status: 'success' }, finishReason: 'stop' },
      { model: 'gpt-x' },
    );
  });

  it('takes the model from response.created without a body parser, and from the request body with express.json()', async () => {
    const bytes = Buffer.from(toSse(responsesStream({ ...RESPONSES_SHAPE, model: 'gpt-served' })));
    const proxy = await serve(streamPieces([bytes]));
    await postJson(proxy.port, '/v1/responses', { model: 'gpt-asked', stream: true, input: 'hi' });
    await proxy.ended();
    expect(await proxy.get('output_tokens_total', { model: 'gpt-served' })).toBe(75);
    expect(await proxy.get('requests_started_total', { model: 'gpt-served', endpoint: 'responses', request_type: 'stream' })).toBe(1);

    const parsed = await serve(streamPieces([bytes]), { parseBody: true });
    await postJson(parsed.port, '/v1/responses', { model: 'gpt-asked', stream: true, input: 'hi' });
    await parsed.ended();
    expect(await parsed.get('output_tokens_total', { model: 'gpt-asked' })).toBe(75);
    expect(await parsed.get('output_tokens_total', { model: 'gpt-served' })).toBe(0);
    expect(await parsed.get('requests_total', { model: 'gpt-asked', endpoint: 'responses', request_type: 'stream', status: 'success' })).toBe(1);
  });
});

// ---- Anthropic Messages ----------------------------------------------------------------------------------------

const ANTHROPIC_SHAPE: AnthropicStreamShape = {
  model: 'claude-x',
  prompt: { input_tokens: 25, cache_creation_input_tokens: 300, cache_read_input_tokens: 2000 },
  thinking: REASONING_PIECES,
  text: TEXT_PIECES,
  stopReason: 'end_turn',
  outputTokens: [40, 88],
};
const ANTHROPIC_LIVE = countOf(REASONING_PIECES) + countOf(TEXT_PIECES);

describe('Anthropic Messages on a real server (POST /v1/messages)', () => {
  it('counts a realistic stream the same whether written whole or cut anywhere, for LF, CRLF and CR line ends', async () => {
    expect(ANTHROPIC_LIVE).toBeLessThan(88);
    const shape = { ...ANTHROPIC_SHAPE, toolJson: ARG_PIECES, stopReason: 'tool_use', outputTokens: [40, 120] };
    for (const [name, lineEnd] of LINE_ENDS) {
      const bytes = Buffer.from(toSse(anthropicStream(shape), lineEnd));
      let reference: string[] | undefined;
      for (const [cutName, pieces] of cuttingsOf(bytes, 2000 + lineEnd.length)) {
        const where = `${name} ${cutName}`;
        const app = await expectCounts(
          pieces,
          {
            outputTokens: 120,
            reasoningTokens: countOf(REASONING_PIECES),
            inputTokens: 2325,
            parseErrors: 0,
            ended: { endpoint: 'anthropic_messages', request_type: 'stream', status: 'success', error_type: '' },
            finishReason: 'tool_calls',
          },
          {
            path: '/v1/messages',
            body: { model: 'claude-x', stream: true, max_tokens: 100, messages: [] },
            contentType: 'text/event-stream',
            labels: { model: 'claude-x' },
            where,
            app: { json: false },
          },
        );
        const snapshot = deterministic(await app.scrape());
        if (reference === undefined) reference = snapshot;
        else expect([where, snapshot]).toEqual([where, reference]);
      }
    }
  });

  it('input = input + cache creation + cache reads; cached_tokens from cache_read_input_tokens; the output placeholder is ignored', async () => {
    const events = anthropicStream(ANTHROPIC_SHAPE);
    const app = await serve(streamPieces([Buffer.from(toSse(events))]));
    await postJson(app.port, '/v1/messages', { model: 'claude-x', stream: true });
    await app.ended();
    expect(await app.get('input_tokens_total', { model: 'claude-x' })).toBe(2325);
    expect(await app.get('input_sequence_tokens', { model: 'claude-x' }, 'sum')).toBe(2325);
    expect(await app.get('cached_tokens', { model: 'claude-x' }, 'count')).toBe(1);
    expect(await app.get('cached_tokens', { model: 'claude-x' }, 'sum')).toBe(2000);
    const text = await app.scrape();
    expect(valueFromText(text, m('cached_tokens_bucket'), { model: 'claude-x', le: '1800' })).toBe(0);
    expect(valueFromText(text, m('cached_tokens_bucket'), { model: 'claude-x', le: '3600' })).toBe(1);
    // 88 stated by the last message_delta; the placeholder output_tokens 1 of message_start adds nothing.
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe(88);
    expect(await app.get('output_sequence_tokens', { model: 'claude-x' }, 'sum')).toBe(88);
  });

  it('maps stop_reason onto finish_reason: end_turn→stop, max_tokens→length, tool_use→tool_calls', async () => {
    let next = 0;
    const reasons = ['end_turn', 'max_tokens', 'tool_use', 'stop_sequence'];
    // One server, four requests, each with its own stop_reason.
    const appWith = await serve(async (req, res) => {
      const stopReason = reasons[next++] as string;
      await streamPieces([Buffer.from(toSse(anthropicStream({ ...ANTHROPIC_SHAPE, stopReason })))])(req, res);
    });
    for (let i = 0; i < reasons.length; i++) await postJson(appWith.port, '/v1/messages', { model: 'claude-x', stream: true });
    await appWith.ended(reasons.length);
    expect(await appWith.get('requests_finished_total', { model: 'claude-x', finish_reason: 'stop' })).toBe(2);
    expect(await appWith.get('requests_finished_total', { model: 'claude-x', finish_reason: 'length' })).toBe(1);
    expect(await appWith.get('requests_finished_total', { model: 'claude-x', finish_reason: 'tool_calls' })).toBe(1);
    expect(await appWith.get('requests_finished_total', { model: 'claude-x', finish_reason: 'end_turn' })).toBe(0);
    expect(await appWith.get('output_tokens_total', { model: 'claude-x' })).toBe(4 * 88);
  });

  it('publishes a live estimate above the final cumulative usage as overcount', async () => {
    const app = await serve(streamPieces([Buffer.from(toSse(anthropicStream({ ...ANTHROPIC_SHAPE, outputTokens: [ANTHROPIC_LIVE - 5] })))]));
    await postJson(app.port, '/v1/messages', { model: 'claude-x', stream: true });
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe(ANTHROPIC_LIVE);
    expect(await app.get('output_tokens_overcount_total', { model: 'claude-x' })).toBe(5);
  });

  it('an overloaded_error event mid-stream → requests_total{status="error",error_type="overload"}', async () => {
    const events: TypedEvent[] = anthropicStream({ ...ANTHROPIC_SHAPE, end: 'before_delta' }).slice(0, 8);
    events.push(anthropicError('overloaded_error'));
    const app = await serve(streamPieces([Buffer.from(toSse(events))]));
    await postJson(app.port, '/v1/messages', { model: 'claude-x', stream: true });
    await app.ended();
    expect(await app.get('requests_total', { model: 'claude-x', endpoint: 'anthropic_messages', request_type: 'stream', status: 'error', error_type: 'overload' })).toBe(1);
    expect(await app.get('requests_total', { status: 'success' })).toBe(0);
    expect(await app.get('inflight_requests')).toBe(0);
  });

  it('a stream that ends (or breaks) before message_stop → error_type internal', async () => {
    for (const [end, destroy] of [
      ['before_stop', false],
      ['before_delta', false],
      ['before_stop', true],
    ] as const) {
      const app = await serve(streamPieces([Buffer.from(toSse(anthropicStream({ ...ANTHROPIC_SHAPE, end })))], { destroy }));
      const open = await openStream(app.port, '/v1/messages', { model: 'claude-x', stream: true });
      await open.done;
      await app.ended();
      const where = `${end}${destroy ? ' destroyed' : ''}`;
      expect([where, await app.get('requests_total', { model: 'claude-x', endpoint: 'anthropic_messages', status: 'error', error_type: 'internal' })]).toEqual([where, 1]);
      expect([where, await app.get('output_tokens_total', { model: 'claude-x' })]).toEqual([where, end === 'before_stop' ? 88 : ANTHROPIC_LIVE]);
    }
  });

  it('a scrape of /metrics mid-stream shows the tokens written so far', async () => {
    const events = anthropicStream(ANTHROPIC_SHAPE);
    const firstText = events.findIndex((e) => e.event === 'content_block_delta' && (e.data.delta as { type: string }).type === 'text_delta');
    const head = events.slice(0, firstText + 4);
    const headTokens = countOf(REASONING_PIECES) + countOf(TEXT_PIECES.slice(0, 4));
    const gate = signal();
    const app = await serve(streamPieces([Buffer.from(toSse(head)), Buffer.from(toSse(events.slice(firstText + 4)))], { gateAt: 1, gate: gate.wait }));
    const open = await openStream(app.port, '/v1/messages', { model: 'claude-x', stream: true });
    try {
      await open.waitFor(JSON.stringify(head[head.length - 1]?.data));
      const live = await app.scrape();
      expect(valueFromText(live, m('output_tokens_total'), { model: 'claude-x' })).toBe(headTokens);
      expect(valueFromText(live, m('reasoning_tokens_total'), { model: 'claude-x' })).toBe(countOf(REASONING_PIECES));
      expect(valueFromText(live, m('input_tokens_total'), { model: 'claude-x' })).toBe(2325);
      expect(valueFromText(live, m('inflight_requests'), { model: 'claude-x' })).toBe(1);
      expect(valueFromText(live, m('queued_requests'), { model: 'claude-x' })).toBe(0);
    } finally {
      gate.release();
    }
    await open.done;
    await app.ended();
    expect(valueFromText(await app.scrape(), m('output_tokens_total'), { model: 'claude-x' })).toBe(88);
  });

  it('counts a unary Messages body exactly from its usage', async () => {
    const body = {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [{ type: 'text', text: 'Hello!' }],
      stop_reason: 'max_tokens',
      stop_sequence: null,
      usage: { input_tokens: 12, cache_creation_input_tokens: 100, cache_read_input_tokens: 50, output_tokens: 256 },
    };
    const app = await serve(json(body));
    const response = await postJson(app.port, '/v1/messages', { model: 'claude-x', max_tokens: 256, messages: [] });
    expect(JSON.parse(response.body.toString())).toEqual(body);
    await app.ended();
    await expectAppCounts(
      app,
      { outputTokens: 256, inputTokens: 162, cachedTokens: 50, ended: { endpoint: 'anthropic_messages', request_type: 'unary', status: 'success' }, finishReason: 'length' },
      { model: 'claude-x' },
    );
  });

  it('takes the model from message_start without a body parser, and from the request body with express.json()', async () => {
    const bytes = Buffer.from(toSse(anthropicStream({ ...ANTHROPIC_SHAPE, model: 'claude-served' })));
    const proxy = await serve(streamPieces([bytes]));
    await postJson(proxy.port, '/v1/messages', { model: 'claude-asked', stream: true });
    await proxy.ended();
    expect(await proxy.get('output_tokens_total', { model: 'claude-served' })).toBe(88);
    expect(await proxy.get('requests_started_total', { model: 'claude-served', endpoint: 'anthropic_messages', request_type: 'stream' })).toBe(1);

    const parsed = await serve(streamPieces([bytes]), { parseBody: true });
    await postJson(parsed.port, '/v1/messages', { model: 'claude-asked', stream: true });
    await parsed.ended();
    expect(await parsed.get('output_tokens_total', { model: 'claude-asked' })).toBe(88);
    expect(await parsed.get('output_tokens_total', { model: 'claude-served' })).toBe(0);
    expect(await parsed.get('input_tokens_total', { model: 'claude-asked' })).toBe(2325);
  });

  it('many text deltas of the same shape (the fast path) count like the parsed ones', async () => {
    const pieces = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? ' wörd' : i % 3 === 1 ? ' 天' : ' 🌍x'));
    const events = anthropicStream({ ...ANTHROPIC_SHAPE, thinking: [], text: [], outputTokens: [] });
    const stop = events.findIndex((e) => e.event === 'content_block_stop' && e.data.index === 1);
    events.splice(stop, 0, ...pieces.map((p) => textDelta(1, p)));
    const app = await serve(streamPieces([Buffer.from(toSse(events))]));
    await postJson(app.port, '/v1/messages', { model: 'claude-x', stream: true });
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe(countOf(pieces));
  });
});

// ---- cached tokens from OpenAI chat ---------------------------------------------------------------------------

describe('cached_tokens from OpenAI chat prompt_tokens_details.cached_tokens', () => {
  it('streamed (usage on every chunk) and unary', async () => {
    const stream = await serve(streamPieces([Buffer.from(continuousUsageStream('m'))]));
    await postJson(stream.port, '/v1/chat/completions', { model: 'm', stream: true, messages: [] });
    await stream.ended();
    expect(await stream.get('cached_tokens', { model: 'm' }, 'count')).toBe(1);
    expect(await stream.get('cached_tokens', { model: 'm' }, 'sum')).toBe(3);
    expect(await stream.get('input_tokens_total', { model: 'm' })).toBe(11);
    expect(await stream.get('output_tokens_total', { model: 'm' })).toBe(6);

    const unary = await serve(
      json({
        id: 'c',
        object: 'chat.completion',
        model: 'm',
        choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 500, completion_tokens: 2, total_tokens: 502, prompt_tokens_details: { cached_tokens: 448 } },
      }),
    );
    await postJson(unary.port, '/v1/chat/completions', { model: 'm', messages: [] });
    await unary.ended();
    expect(await unary.get('cached_tokens', { model: 'm' }, 'sum')).toBe(448);
    expect(await unary.get('input_tokens_total', { model: 'm' })).toBe(500);
    const text = await unary.scrape();
    expect(valueFromText(text, m('cached_tokens_bucket'), { model: 'm', le: '430' })).toBe(0);
    expect(valueFromText(text, m('cached_tokens_bucket'), { model: 'm', le: '870' })).toBe(1);
  });
});

// ---- bad input on the wire ---------------------------------------------------------------------------------------

describe('bad input on a real server: the response goes on untouched, the problem is ignored or counted', () => {
  it('Responses: malformed JSON, unknown events and invalid usage', async () => {
    const events = responsesStream({ ...RESPONSES_SHAPE, usage: { input_tokens: -3, output_tokens: '75', cached: 'x', reasoning: 1.5 } });
    const bytes = Buffer.from(
      toSse(events.slice(0, 4)) +
        'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"ab\n\n' +
        'event: response.future.delta\ndata: {"type":"response.future.delta","delta":"hello"}\n\n' +
        'data: [DONE]\n\n' +
        toSse(events.slice(4)),
    );
    const app = await serve(streamPieces(cutAtRandom(bytes, 40, seededRandom(5))));
    const response = await postJson(app.port, '/v1/responses', { model: 'gpt-x', stream: true });
    expect(response.body.equals(bytes)).toBe(true);
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(RESPONSES_LIVE);
    // The cut event is malformed; a gateway's `[DONE]` is not.
    expect(await app.get('parse_errors_total', { endpoint: 'responses', reason: 'invalid_json' })).toBe(1);
    expect(await app.get('parse_errors_total', { endpoint: 'responses', reason: 'invalid_usage' })).toBeGreaterThanOrEqual(2);
    expect(await app.get('input_tokens_total')).toBe(0);
    expect(await app.get('cached_tokens', {}, 'count')).toBe(0);
    expect(await app.get('requests_total', { model: 'gpt-x', status: 'success' })).toBe(1);
  });

  it('Anthropic: malformed JSON, unknown events and invalid usage', async () => {
    const events = anthropicStream({ ...ANTHROPIC_SHAPE, outputTokens: [40, -88] });
    const bytes = Buffer.from(
      toSse(events.slice(0, 3)) +
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":NaN}}\n\n' +
        'event: brand_new_event\ndata: {"type":"brand_new_event","text":"zzz"}\n\n' +
        toSse(events.slice(3)),
    );
    const app = await serve(streamPieces(cutAtRandom(bytes, 40, seededRandom(6))));
    const response = await postJson(app.port, '/v1/messages', { model: 'claude-x', stream: true });
    expect(response.body.equals(bytes)).toBe(true);
    await app.ended();
    // 40 stated, then −88 rejected: the count stays at max(live, 40).
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe(Math.max(ANTHROPIC_LIVE, 40));
    expect(await app.get('parse_errors_total', { endpoint: 'anthropic_messages', reason: 'invalid_json' })).toBe(1);
    expect(await app.get('parse_errors_total', { endpoint: 'anthropic_messages', reason: 'invalid_usage' })).toBe(1);
    expect(await app.get('requests_total', { model: 'claude-x', status: 'success' })).toBe(1);
  });

  it('Anthropic error bodies: 529 and a 200 body of type error both count as overload', async () => {
    const errorBody = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
    const overloaded = await serve((_req, res) => {
      res.status(529).json(errorBody);
    });
    await postJson(overloaded.port, '/v1/messages', { model: 'claude-x' });
    await overloaded.ended();
    expect(await overloaded.get('requests_total', { endpoint: 'anthropic_messages', status: 'error', error_type: 'overload' })).toBe(1);

    const inBody = await serve(json(errorBody), { parseBody: true });
    await postJson(inBody.port, '/v1/messages', { model: 'claude-x' });
    await inBody.ended();
    expect(await inBody.get('requests_total', { model: 'claude-x', endpoint: 'anthropic_messages', request_type: 'unary', status: 'error', error_type: 'overload' })).toBe(1);
  });

  it('Responses: a response.created without a model does not hide the model a later event names', async () => {
    const events = responsesStream(RESPONSES_SHAPE);
    const created = events[0] as TypedEvent;
    delete (created.data.response as Record<string, unknown>).model;
    const app = await serve(streamPieces([Buffer.from(toSse(events))]));
    await postJson(app.port, '/v1/responses', { stream: true });
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(75);
  });
});

// ---- real time, timing and lifecycle -----------------------------------------------------------------------------

/** Sends the head at once, then each step: bytes are written, a promise is waited on. */
function steps(list: (Buffer | string | Promise<void>)[]): Handler {
  return async (_req, res) => {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream');
    res.flushHeaders();
    for (const step of list) {
      if (step instanceof Promise) await step;
      else res.write(step);
    }
    res.end();
  };
}

describe('live lifecycle on a real server: gauges, model label, queued, first token, usage before the end marker', () => {
  it('Responses: in flight under unknown_model until response.created names the model, queued until the first delta', async () => {
    const events = responsesStream(RESPONSES_SHAPE);
    const firstDelta = events.findIndex((e) => e.event === 'response.reasoning_summary_text.delta');
    const completed = events.length - 1;
    const gates = [signal(), signal(), signal()];
    const app = await serve(
      steps([
        (gates[0] as ReturnType<typeof signal>).wait,
        toSse(events.slice(0, firstDelta)),
        (gates[1] as ReturnType<typeof signal>).wait,
        toSse(events.slice(firstDelta, firstDelta + 1)),
        (gates[2] as ReturnType<typeof signal>).wait,
        toSse(events.slice(firstDelta + 1, completed)),
        toSse(events.slice(completed)),
      ]),
    );
    const open = await openStream(app.port, '/v1/responses', { model: 'gpt-x', stream: true });
    const gauge = async (name: string, model: string): Promise<number | undefined> => valueFromText(await app.scrape(), m(name), { model });
    try {
      // Head sent, no event yet: in flight and queued, under unknown_model; not yet counted as started.
      expect(await gauge('inflight_requests', 'unknown_model')).toBe(1);
      expect(await gauge('queued_requests', 'unknown_model')).toBe(1);
      expect(await app.get('requests_started_total')).toBe(0);
      gates[0]?.release();
      await open.waitFor('"response.in_progress"');
      expect(await gauge('inflight_requests', 'unknown_model')).toBe(0);
      expect(await gauge('inflight_requests', 'gpt-x')).toBe(1);
      expect(await gauge('active_requests', 'gpt-x')).toBe(1);
      expect(await gauge('queued_requests', 'gpt-x')).toBe(1);
      expect(await app.get('requests_started_total', { model: 'gpt-x', endpoint: 'responses', request_type: 'stream' })).toBe(1);
      expect(await app.get('time_to_first_token_seconds', {}, 'count')).toBe(0);
      gates[1]?.release();
      await open.waitFor(JSON.stringify(events[firstDelta]?.data));
      expect(await gauge('queued_requests', 'gpt-x')).toBe(0);
      expect(await gauge('output_tokens_total', 'gpt-x')).toBe(codePoints(REASONING_PIECES[0] as string));
      expect(await app.get('time_to_first_token_seconds', { model: 'gpt-x' }, 'count')).toBe(1);
    } finally {
      for (const gate of gates) gate.release();
    }
    await open.done;
    await app.ended();
    expect(await gauge('inflight_requests', 'gpt-x')).toBe(0);
    expect(await gauge('active_requests', 'gpt-x')).toBe(0);
    expect(await gauge('queued_requests', 'gpt-x')).toBe(0);
    expect(await app.get('time_to_first_token_seconds', { model: 'gpt-x' }, 'count')).toBe(1);
    // Every live token after the first chunk's is an inter-token sample; the usage correction at the end is not.
    const firstChunk = codePoints(REASONING_PIECES[0] as string);
    expect(await app.get('inter_token_latency_seconds', { model: 'gpt-x' }, 'count')).toBe(RESPONSES_LIVE - firstChunk);
    expect(await app.get('request_duration_seconds', { model: 'gpt-x' }, 'count')).toBe(1);
  });

  it('Anthropic: the cumulative message_delta usage shows at once, before message_stop; ITL counts live chunks only', async () => {
    const events = anthropicStream(ANTHROPIC_SHAPE);
    const stop = events.length - 1;
    const gate = signal();
    const app = await serve(steps([toSse(events.slice(0, stop)), gate.wait, toSse(events.slice(stop))]));
    const open = await openStream(app.port, '/v1/messages', { model: 'claude-x', stream: true });
    try {
      await open.waitFor('"message_delta"');
      const live = await app.scrape();
      expect(valueFromText(live, m('output_tokens_total'), { model: 'claude-x' })).toBe(88);
      expect(valueFromText(live, m('inflight_requests'), { model: 'claude-x' })).toBe(1);
      expect(await app.get('requests_total')).toBe(0);
    } finally {
      gate.release();
    }
    await open.done;
    await app.ended();
    expect(await app.get('requests_total', { model: 'claude-x', status: 'success' })).toBe(1);
    expect(await app.get('time_to_first_token_seconds', { model: 'claude-x' }, 'count')).toBe(1);
    const firstChunk = codePoints(REASONING_PIECES[0] as string);
    expect(await app.get('inter_token_latency_seconds', { model: 'claude-x' }, 'count')).toBe(ANTHROPIC_LIVE - firstChunk);
    expect(await app.get('output_sequence_tokens', { model: 'claude-x' }, 'sum')).toBe(88);
  });

  it('Responses with logprobs: the live count is exact (one per logprobs entry) at every scrape', async () => {
    const e = new ResponsesEvents().created('gpt-x');
    const tokens = [['Hel', 'lo'], [' wor', 'ld', '!'], [' 🌍']];
    for (const group of tokens) {
      e.add('response.output_text.delta', {
        item_id: 'msg_1',
        output_index: 0,
        content_index: 0,
        delta: group.join(''),
        logprobs: group.map((token) => ({ token, logprob: -0.5, top_logprobs: [] })),
      });
    }
    e.add('response.completed', { response: responseObject('gpt-x', 'completed', { usage: responsesUsage({ input_tokens: 4, output_tokens: 6 }) }) });
    const gates = [signal(), signal()];
    const created = toSse(e.events.slice(0, 2));
    const app = await serve(
      steps([
        created + toSse(e.events.slice(2, 3)),
        (gates[0] as ReturnType<typeof signal>).wait,
        toSse(e.events.slice(3, 4)),
        (gates[1] as ReturnType<typeof signal>).wait,
        toSse(e.events.slice(4)),
      ]),
    );
    const open = await openStream(app.port, '/v1/responses', { model: 'gpt-x', stream: true });
    try {
      await open.waitFor('"Hello"');
      expect(valueFromText(await app.scrape(), m('output_tokens_total'), { model: 'gpt-x' })).toBe(2);
      gates[0]?.release();
      await open.waitFor('" world!"');
      expect(valueFromText(await app.scrape(), m('output_tokens_total'), { model: 'gpt-x' })).toBe(5);
    } finally {
      for (const gate of gates) gate.release();
    }
    await open.done;
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(6);
    expect(await app.get('output_tokens_overcount_total')).toBe(0);
  });

  it('a client that leaves mid-stream is cancelled, for both formats, and the gauges return to 0', async () => {
    for (const [path, bytes, model] of [
      ['/v1/responses', toSse(responsesStream(RESPONSES_SHAPE)), 'gpt-x'],
      ['/v1/messages', toSse(anthropicStream(ANTHROPIC_SHAPE)), 'claude-x'],
    ] as const) {
      const half = Buffer.from(bytes).subarray(0, Math.floor(bytes.length / 2));
      const gate = signal();
      const app = await serve(steps([half, gate.wait, Buffer.from(bytes).subarray(half.length)]));
      const open = await openStream(app.port, path, { stream: true });
      await eventually(async () => (await app.get('output_tokens_total', { model })) > 0);
      open.abort();
      await app.ended();
      gate.release();
      const endpoint = path === '/v1/responses' ? 'responses' : 'anthropic_messages';
      expect([path, await app.get('requests_total', { model, endpoint, status: 'error', error_type: 'cancelled' })]).toEqual([path, 1]);
      expect([path, await app.get('disconnected_clients')]).toEqual([path, 1]);
      expect([path, await app.get('model_cancellation_total', { model, endpoint, request_type: 'stream' })]).toEqual([path, 1]);
      expect([path, await app.get('inflight_requests')]).toEqual([path, 0]);
      expect([path, await app.get('queued_requests')]).toEqual([path, 0]);
    }
  });
});

// ---- framing and concurrency -----------------------------------------------------------------------------------

describe('framing variants and concurrency', () => {
  /** One Responses and one Anthropic stream, each written as the pieces `write` makes of its events; both ended. */
  async function bothFormats(write: (events: TypedEvent[]) => Buffer[]): Promise<MeteredApp> {
    const app = await serve((req, res) => streamPieces(write(req.path === '/v1/responses' ? responsesStream(RESPONSES_SHAPE) : anthropicStream(ANTHROPIC_SHAPE)))(req, res));
    await postJson(app.port, '/v1/responses', { stream: true });
    await postJson(app.port, '/v1/messages', { stream: true });
    await app.ended(2);
    return app;
  }

  it('streams without event: lines (data only, as some proxies send them) count the same', async () => {
    const dataOnly = (events: TypedEvent[]): string => events.map((e) => `data: ${JSON.stringify(e.data)}\n\n`).join('');
    const app = await bothFormats((events) => [Buffer.from(dataOnly(events))]);
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(75);
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe(88);
    expect(await app.get('requests_total', { status: 'success' })).toBe(2);
    expect(await app.get('parse_errors_total')).toBe(0);
  });

  it('comments, id: and retry: lines, keep-alive blank lines and a BOM do not change the counts', async () => {
    const noisy = (events: TypedEvent[]): string =>
      '\ufeff: connected\n\nretry: 1000\n\n' + events.map((e, i) => `: ping ${i}\nid: ${i}\nevent: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n\n`).join('');
    const app = await bothFormats((events) => cutAtRandom(Buffer.from(noisy(events)), 80, seededRandom(9)));
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(75);
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe(88);
    expect(await app.get('input_tokens_total', { model: 'claude-x' })).toBe(2325);
    expect(await app.get('parse_errors_total')).toBe(0);
  });

  it('concurrent interleaved streams of both formats are each counted exactly', async () => {
    const gate = signal();
    const random = seededRandom(21);
    const n = 12;
    const app = await serve(async (req, res) => {
      const responses = req.path === '/v1/responses';
      const bytes = Buffer.from(toSse(responses ? responsesStream(RESPONSES_SHAPE) : anthropicStream(ANTHROPIC_SHAPE), random() < 0.5 ? '\n' : '\r\n'));
      await streamPieces(cutAtRandom(bytes, 30, random), { gateAt: 15, gate: gate.wait })(req, res);
    });
    const requests = Array.from({ length: n }, (_, i) => postJson(app.port, i % 2 === 0 ? '/v1/responses' : '/v1/messages', { stream: true }));
    await eventually(async () => (await app.get('inflight_requests')) === n);
    gate.release();
    await Promise.all(requests);
    await app.ended(n);
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe((n / 2) * 75);
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe((n / 2) * 88);
    expect(await app.get('reasoning_tokens_total', { model: 'gpt-x' })).toBe((n / 2) * 30);
    expect(await app.get('input_tokens_total', { model: 'gpt-x' })).toBe((n / 2) * 1200);
    expect(await app.get('input_tokens_total', { model: 'claude-x' })).toBe((n / 2) * 2325);
    expect(await app.get('cached_tokens', {}, 'count')).toBe(n);
    expect(await app.get('requests_total', { status: 'success' })).toBe(n);
    expect(await app.get('inflight_requests')).toBe(0);
  });
});

describe('unary bodies and request-body models, more cases', () => {
  it('a unary Responses body without usage is estimated from its output items', async () => {
    const body = responseObject('gpt-x', 'completed', {
      output: [
        { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Plan' }] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hi 世界' }] },
      ],
    });
    const app = await serve(json(body));
    await postJson(app.port, '/v1/responses', { model: 'gpt-x' });
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'gpt-x' })).toBe(4 + 5);
    expect(await app.get('reasoning_tokens_total', { model: 'gpt-x' })).toBe(4);
    expect(await app.get('requests_total', { model: 'gpt-x', request_type: 'unary', status: 'success' })).toBe(1);
  });

  it('a unary Anthropic body without usage is estimated from its content blocks', async () => {
    const body = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'thinking', thinking: 'Hmm' }, { type: 'text', text: 'Hello' }], stop_reason: 'end_turn' };
    const app = await serve(json(body));
    await postJson(app.port, '/v1/messages', { model: 'claude-x' });
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'claude-x' })).toBe(8);
    expect(await app.get('reasoning_tokens_total', { model: 'claude-x' })).toBe(3);
    expect(await app.get('requests_finished_total', { model: 'claude-x', finish_reason: 'stop' })).toBe(1);
  });

  it('with express.json(), stream:false in the body and a unary reply is unary under the body model; a non-string body model falls back to the response', async () => {
    const body = responseObject('gpt-served', 'completed', { usage: responsesUsage({ input_tokens: 1, output_tokens: 9 }) });
    const app = await serve(json(body), { parseBody: true });
    await postJson(app.port, '/v1/responses', { model: 'gpt-asked', stream: false });
    await postJson(app.port, '/v1/responses', { model: 42, stream: false });
    await app.ended(2);
    expect(await app.get('requests_total', { model: 'gpt-asked', endpoint: 'responses', request_type: 'unary', status: 'success' })).toBe(1);
    expect(await app.get('requests_total', { model: 'gpt-served', endpoint: 'responses', request_type: 'unary', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'gpt-asked' })).toBe(9);
    expect(await app.get('output_tokens_total', { model: 'gpt-served' })).toBe(9);
  });
});

describe('paths and early errors', () => {
  it('recognises /v1/messages?beta=true (Claude Code) and Azure-style /openai/v1/responses?api-version=…', async () => {
    const registry = new Registry();
    const app = express();
    app.use(dynamoMetrics({ registry, countTokens: codePoints }));
    app.post('/v1/messages', (req, res) => streamPieces([Buffer.from(toSse(anthropicStream(ANTHROPIC_SHAPE)))])(req, res));
    app.post(['/openai/v1/responses', '/openai/responses'], (req, res) => streamPieces([Buffer.from(toSse(responsesStream(RESPONSES_SHAPE)))])(req, res));
    const server = await listen(app);
    servers.push(server);
    await postJson(server.port, '/v1/messages?beta=true', { stream: true });
    await postJson(server.port, '/openai/v1/responses?api-version=preview', { stream: true });
    await postJson(server.port, '/openai/responses?api-version=2025-04-01-preview', { stream: true });
    await eventually(async () => (await value(registry, m('requests_total'))) === 3);
    expect(await value(registry, m('requests_total'), { model: 'claude-x', endpoint: 'anthropic_messages', status: 'success' })).toBe(1);
    expect(await value(registry, m('requests_total'), { model: 'gpt-x', endpoint: 'responses', status: 'success' })).toBe(2);
    expect(await value(registry, m('output_tokens_total'), { model: 'gpt-x' })).toBe(150);
  });

  it('an Anthropic error event before message_start: overload, under the body model or unknown_model', async () => {
    const bytes = Buffer.from(toSse([anthropicError('overloaded_error')]));
    const proxy = await serve(streamPieces([bytes]));
    await postJson(proxy.port, '/v1/messages', { model: 'claude-asked', stream: true });
    await proxy.ended();
    expect(await proxy.get('requests_total', { model: 'unknown_model', endpoint: 'anthropic_messages', request_type: 'stream', status: 'error', error_type: 'overload' })).toBe(1);
    expect(await proxy.get('inflight_requests')).toBe(0);

    const parsed = await serve(streamPieces([bytes]), { parseBody: true });
    await postJson(parsed.port, '/v1/messages', { model: 'claude-asked', stream: true });
    await parsed.ended();
    expect(await parsed.get('requests_total', { model: 'claude-asked', endpoint: 'anthropic_messages', request_type: 'stream', status: 'error', error_type: 'overload' })).toBe(1);
  });

  it('a Responses error event with a rate-limit code → overload', async () => {
    const events = new ResponsesEvents().created('gpt-x').add('error', { code: 'rate_limit_exceeded', message: 'Rate limit reached', param: null }).events;
    const app = await serve(streamPieces([Buffer.from(toSse(events))]));
    await postJson(app.port, '/v1/responses', { stream: true });
    await app.ended();
    expect(await app.get('requests_total', { model: 'gpt-x', endpoint: 'responses', status: 'error', error_type: 'overload' })).toBe(1);
  });
});
