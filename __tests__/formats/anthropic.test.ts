import { anthropicReader } from '../../lib/formats/anthropic';
import { seededRandom } from '../support/prng';
import { plainTextOf } from '../support/plain-text';
import type { PlainText } from '../support/plain-text';
import { RecordingSink } from '../support/recording-sink';
import { mangle, runThroughState } from '../support/request-state';
import { anthropicError, anthropicStream, ARG_PIECES, blockDelta, codePoints, countOf, jsonDelta, messageDelta, messageStart, messageStop, ping, REASONING_PIECES, signatureDelta, TEXT_PIECES, textDelta, thinkingDelta } from '../support/streams';
import type { AnthropicStreamShape, TypedEvent } from '../support/streams';

/** Reads one event as the middleware does; `plain`: what the chunk shape learned from it (see plainTextOf). */
function readEvent(event: TypedEvent | string, eventType?: string): { sink: RecordingSink; plain: PlainText | undefined } {
  const sink = new RecordingSink();
  const plain =
    typeof event === 'string'
      ? plainTextOf(anthropicReader, event, eventType, sink)
      : plainTextOf(anthropicReader, JSON.stringify(event.data), eventType ?? event.event, sink);
  return { sink, plain };
}

const read = (event: TypedEvent | string, eventType?: string): RecordingSink => readEvent(event, eventType).sink;

function readBody(body: unknown): RecordingSink {
  const sink = new RecordingSink();
  anthropicReader.readBody(body, sink);
  return sink;
}

const asPairs = (events: TypedEvent[]): [string, string][] => events.map((e) => [JSON.stringify(e.data), e.event]);

const NO_CHUNK = { tokens: 0, reasoning: 0 };

const SHAPE: AnthropicStreamShape = {
  model: 'claude-x',
  prompt: { input_tokens: 25, cache_creation_input_tokens: 7, cache_read_input_tokens: 100 },
  thinking: REASONING_PIECES,
  text: TEXT_PIECES,
  toolJson: ARG_PIECES,
  stopReason: 'tool_use',
  outputTokens: [30, 90],
};
const LIVE = countOf(REASONING_PIECES) + countOf(TEXT_PIECES) + countOf(ARG_PIECES);

describe('anthropicReader.readEvent: content deltas', () => {
  it('counts text_delta text and offers it as a plain text delta', () => {
    const { sink, plain } = readEvent(textDelta(1, 'Hello wörld 🌍'));
    expect(sink.seen).toEqual([['tokens', 13, 0]]);
    expect(plain).toEqual({ text: 'Hello wörld 🌍', reasoning: false });
  });

  it('counts thinking_delta as reasoning and offers it as a reasoning plain delta', () => {
    const { sink, plain } = readEvent(thinkingDelta(0, 'Let me think'));
    expect(sink.seen).toEqual([['tokens', 12, 12]]);
    expect(plain).toEqual({ text: 'Let me think', reasoning: true });
  });

  it('counts input_json_delta partial_json as (tool input) output', () => {
    const { sink, plain } = readEvent(jsonDelta(2, '{"city": "Zü'));
    expect(sink.tokens()).toEqual({ tokens: 12, reasoning: 0 });
    expect(plain).toBeUndefined();
  });

  it('counts no tokens for signature_delta', () => {
    const { sink, plain } = readEvent(signatureDelta(0));
    expect(sink.tokens().tokens).toBe(0);
    expect(sink.estimated).toEqual([]);
    expect(plain).toBeUndefined();
  });

  it('a returned plain text delta means exactly "these tokens of this text" (the fast-path contract)', () => {
    for (const event of anthropicStream(SHAPE)) {
      const { sink, plain } = readEvent(event);
      if (plain === undefined) continue;
      const n = codePoints(plain.text);
      expect(sink.seen).toEqual([['tokens', n, plain.reasoning ? n : 0]]);
      expect(Object.values(event.data.delta as Record<string, unknown>)).toContain(plain.text);
    }
  });

  it('reads the type from the event: line when the data has none', () => {
    const sink = read(JSON.stringify({ index: 0, delta: { type: 'text_delta', text: 'abc' } }), 'content_block_delta');
    expect(sink.tokens().tokens).toBe(3);
  });
});

describe('anthropicReader.readEvent: message events', () => {
  it('message_start: model; input = input + cache creation + cache reads; cached = cache reads; output placeholder ignored', () => {
    const sink = read(messageStart('claude-x', { input_tokens: 25, cache_creation_input_tokens: 7, cache_read_input_tokens: 100 }, 1));
    expect(sink.of('model')).toEqual([['model', 'claude-x']]);
    expect(sink.of('prompt')).toEqual([['prompt', 132, 100]]);
    expect(sink.of('stated')).toEqual([]);
    expect(sink.tokens().tokens).toBe(0);
  });

  it('message_start with only input_tokens reports it alone, with no cached count', () => {
    const sink = read(messageStart('claude-x', { input_tokens: 25 }));
    expect(sink.of('prompt')).toEqual([['prompt', 25, undefined]]);
  });

  it('message_start with null cache fields (as some proxies send) counts input_tokens alone', () => {
    const sink = read(messageStart('claude-x', { input_tokens: 25, cache_creation_input_tokens: null, cache_read_input_tokens: null }));
    expect(sink.of('prompt')).toHaveLength(1);
    expect(sink.of('prompt')[0]?.[1]).toBe(25);
  });

  it('message_delta: stop_reason becomes the finish reason and usage.output_tokens the stated cumulative total', () => {
    const sink = read(messageDelta('end_turn', 15));
    expect(sink.of('finish')).toEqual([['finish', 'end_turn']]);
    expect(sink.of('stated')).toEqual([['stated', 15, undefined, NO_CHUNK, false]]);
    expect(sink.of('completed')).toEqual([]);
  });

  it('message_delta with stop_reason null reports no finish reason', () => {
    const sink = read(messageDelta(null, 4));
    expect(sink.of('finish')).toEqual([]);
    expect(sink.of('stated')).toEqual([['stated', 4, undefined, NO_CHUNK, false]]);
  });

  it('message_stop is the end marker; ping, content_block_start/stop are nothing', () => {
    expect(read(messageStop()).seen).toEqual([['completed']]);
    expect(read(ping()).seen).toEqual([]);
    expect(read({ event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: 'Hi' } } }).seen).toEqual([]);
    expect(read({ event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } }).seen).toEqual([]);
  });

  it('error events are failed with the mapped error type, not an end marker', () => {
    expect(read(anthropicError('overloaded_error')).seen).toEqual([['failed', 'overload']]);
    expect(read(anthropicError('rate_limit_error')).seen).toEqual([['failed', 'overload']]);
    expect(read(anthropicError('api_error')).seen).toEqual([['failed', 'internal']]);
    expect(read(anthropicError('invalid_request_error')).seen).toEqual([['failed', 'validation']]);
    expect(read(anthropicError('not_found_error')).seen).toEqual([['failed', 'not_found']]);
  });
});

describe('anthropicReader over a whole stream', () => {
  it('reports each delta once, the model, the finish reason and one end marker', () => {
    const sink = new RecordingSink();
    for (const event of anthropicStream(SHAPE)) anthropicReader.readEvent(JSON.stringify(event.data), event.event, sink);
    expect(sink.tokens()).toEqual({ tokens: LIVE, reasoning: countOf(REASONING_PIECES) });
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.of('finish')).toEqual([['finish', 'tool_use']]);
    expect(sink.of('stated').map(([, total]) => total)).toEqual([30, 90]);
    expect(sink.of('prompt')).toEqual([['prompt', 132, 100]]);
  });

  it('through a request state: output = the last cumulative message_delta, input and cached from message_start', async () => {
    expect(LIVE).toBeLessThan(90);
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(anthropicStream(SHAPE)) });
    expect(await run.output('claude-x')).toBe(90);
    expect(await run.reasoning('claude-x')).toBe(countOf(REASONING_PIECES));
    expect(await run.input('claude-x')).toBe(132);
    expect(await run.cachedCount('claude-x')).toBe(1);
    expect(await run.cachedSum('claude-x')).toBe(100);
    expect(await run.overcount()).toBe(0);
    expect(await run.finished('tool_calls')).toBe(1);
    expect(await run.requests({ model: 'claude-x', endpoint: 'anthropic_messages', status: 'success', error_type: '' })).toBe(1);
    expect(run.malformed).toEqual([]);
  });

  it('a message_delta that repeats the prompt usage (newer API) does not count the input twice', async () => {
    const events = anthropicStream({ ...SHAPE, outputTokens: [] });
    events.splice(events.length - 1, 0, messageDelta('end_turn', 90, { input_tokens: 25, cache_creation_input_tokens: 7, cache_read_input_tokens: 100 }));
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
    expect(await run.input('claude-x')).toBe(132);
    expect(await run.cachedCount('claude-x')).toBe(1);
    expect(await run.output('claude-x')).toBe(90);
  });

  it.each([
    ['end_turn', 'stop'],
    ['max_tokens', 'length'],
    ['tool_use', 'tool_calls'],
    ['stop_sequence', 'stop'],
    ['pause_turn', 'pause_turn'],
    ['refusal', 'refusal'],
  ])('maps stop_reason %s to finish_reason %s', async (stopReason, finish) => {
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(anthropicStream({ ...SHAPE, stopReason })) });
    expect(await run.finished(finish)).toBe(1);
  });

  it('the message_start output placeholder is never counted, even when the stream is cut before message_delta', async () => {
    const events = anthropicStream({ ...SHAPE, end: 'before_delta' });
    events[0] = messageStart('claude-x', SHAPE.prompt, 500);
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
    expect(await run.output('claude-x')).toBe(LIVE);
    expect(await run.requests({ status: 'error', error_type: 'internal' })).toBe(1);
  });

  it('a live overshoot over the final usage goes to overcount', async () => {
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(anthropicStream({ ...SHAPE, outputTokens: [LIVE - 12] })) });
    expect(await run.output('claude-x')).toBe(LIVE);
    expect(await run.overcount('claude-x')).toBe(12);
  });

  it('an overloaded_error event mid-stream counts the request as error_type overload', async () => {
    const events = anthropicStream({ ...SHAPE, end: 'before_delta' });
    events.push(anthropicError('overloaded_error'));
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
    expect(await run.requests({ status: 'error', error_type: 'overload' })).toBe(1);
    expect(await run.output('claude-x')).toBe(LIVE);
  });

  it('a stream cut after message_delta but before message_stop is internal', async () => {
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(anthropicStream({ ...SHAPE, end: 'before_stop' })) });
    expect(await run.requests({ status: 'error', error_type: 'internal' })).toBe(1);
    expect(await run.output('claude-x')).toBe(90);
  });
});

describe('anthropicReader.readBody (unary)', () => {
  const content = [
    { type: 'thinking', thinking: 'Hmm ok', signature: 'sig' },
    { type: 'text', text: 'Hello 世界' },
    { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Zürich' } },
  ];
  const body = (usage?: Record<string, unknown>, stopReason: string | null = 'tool_use'): Record<string, unknown> => ({
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    ...(usage === undefined ? {} : { usage }),
  });

  it('states usage.output_tokens, the prompt with cache fields, the stop reason and the end marker', () => {
    const sink = readBody(body({ input_tokens: 10, cache_creation_input_tokens: 2, cache_read_input_tokens: 30, output_tokens: 44 }));
    expect(sink.of('model')).toEqual([['model', 'claude-x']]);
    expect(sink.of('stated')).toEqual([['stated', 44, undefined, NO_CHUNK, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 42, 30]]);
    expect(sink.of('finish')).toEqual([['finish', 'tool_use']]);
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.tokens().tokens).toBe(0);
  });

  it('estimates thinking, text and tool input when there is no usage', () => {
    const sink = readBody(body());
    const toolInput = JSON.stringify({ city: 'Zürich' });
    expect(sink.tokens()).toEqual({ tokens: 6 + 8 + codePoints(toolInput), reasoning: 6 });
  });

  it('reports an error body as failed', () => {
    expect(readBody({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }).seen).toEqual([['failed', 'overload']]);
  });

  it('through a request state, a unary body is counted exactly from its usage', async () => {
    const run = runThroughState(anthropicReader, 'anthropic_messages', {
      body: body({ input_tokens: 10, cache_creation_input_tokens: 2, cache_read_input_tokens: 30, output_tokens: 44 }, 'max_tokens'),
    });
    expect(await run.output('claude-x')).toBe(44);
    expect(await run.input('claude-x')).toBe(42);
    expect(await run.cachedSum('claude-x')).toBe(30);
    expect(await run.finished('length')).toBe(1);
    expect(await run.requests({ model: 'claude-x', request_type: 'unary', status: 'success' })).toBe(1);
  });

  it('reports a body that is not an object as malformed', () => {
    for (const value of [null, 3, 'text', [1, 2]]) expect(readBody(value).of('malformed')).toHaveLength(1);
  });
});

describe('anthropicReader: bad input never throws and is ignored or reported', () => {
  it('ignores unknown event types and unknown delta types', () => {
    for (const event of [
      { event: 'future_event', data: { type: 'future_event', text: 'hello' } },
      { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'citations_delta', citation: { cited_text: 'abc' } } } },
      { event: 'mystery', data: { type: 17, delta: { text: 'abc' } } },
      { event: 'mystery', data: {} },
    ]) {
      const sink = read(event);
      expect(sink.tokens().tokens).toBe(0);
      expect(sink.of('completed')).toEqual([]);
      expect(sink.of('failed')).toEqual([]);
    }
  });

  it('counts nothing for deltas that are missing or of the wrong type', () => {
    for (const delta of [undefined, null, 'text', 5, [], {}, { type: 'text_delta' }, { type: 'text_delta', text: 5 }, { type: 'thinking_delta', thinking: ['x'] }, { type: 'input_json_delta', partial_json: {} }]) {
      const { sink, plain } = readEvent({ event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta } });
      expect(sink.tokens().tokens).toBe(0);
      expect(plain).toBeUndefined();
    }
    expect(read(blockDelta(0, { type: 'text_delta', text: '' })).tokens().tokens).toBe(0);
  });

  it("ignores a gateway's trailing [DONE]: not an event of this format, not malformed, not the end marker", () => {
    expect(read('[DONE]').seen).toEqual([]);
  });

  it('reports malformed JSON and non-object JSON without throwing', () => {
    expect(read('{"type":"content_block_delta","delta":{"type":"text_delta","text":"ab', 'content_block_delta').seen).toEqual([['malformed', 'invalid_json']]);
    expect(read('{"type":"message_delta","usage":{"output_tokens":NaN}}', 'message_delta').seen).toEqual([['malformed', 'invalid_json']]);
    expect(read('', 'message_stop').seen).toEqual([['malformed', 'invalid_json']]);
    for (const data of ['42', '"text"', 'null', '[1]', 'false']) expect(read(data, 'message_delta').of('malformed')).toHaveLength(1);
  });

  it('survives message_start and message_delta with missing or mistyped parts', () => {
    for (const data of [
      { type: 'message_start' },
      { type: 'message_start', message: 'msg' },
      { type: 'message_start', message: { model: 'claude-x', usage: 'lots' } },
      { type: 'message_start', message: { model: 'claude-x', usage: { output_tokens: 1 } } },
      { type: 'message_delta' },
      { type: 'message_delta', delta: 'x', usage: 5 },
      { type: 'message_delta', delta: { stop_reason: 42 }, usage: {} },
      { type: 'error' },
      { type: 'error', error: 'overloaded' },
    ]) {
      const sink = read(JSON.stringify(data), data.type);
      expect(sink.tokens().tokens).toBe(0);
      expect(sink.of('stated')).toEqual([]);
      expect(sink.of('prompt')).toEqual([]);
    }
  });

  const badCounts: [string, unknown][] = [
    ['a string', '90'],
    ['a negative number', -90],
    ['a non-integer', 90.5],
    ['1e308', 1e308],
    ['beyond 1e8', 100_000_001],
    ['null', null],
    ['an object', { n: 90 }],
  ];

  it.each(badCounts)('message_delta output_tokens as %s: invalid_usage, the live count stays', async (_name, bad) => {
    const events = anthropicStream({ ...SHAPE, outputTokens: [bad as number] });
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
    expect(await run.output('claude-x')).toBe(LIVE);
    expect(await run.parseErrors('invalid_usage')).toBe(1);
    expect(await run.overcount()).toBe(0);
    expect(await run.requests({ status: 'success' })).toBe(1);
  });

  it.each(badCounts)('message_start input_tokens as %s: the prompt is not counted, reported as invalid_usage', async (_name, bad) => {
    const events = anthropicStream({ ...SHAPE, prompt: { input_tokens: bad, cache_creation_input_tokens: 7, cache_read_input_tokens: 100 } });
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
    expect(await run.input()).toBe(0);
    expect(await run.parseErrors('invalid_usage')).toBeGreaterThanOrEqual(1);
    expect(await run.output('claude-x')).toBe(90);
  });

  it.each(badCounts.filter(([name]) => name !== 'null'))(
    'cache_creation_input_tokens as %s: never added into the prompt count (ignored, or the prompt rejected as invalid_usage)',
    async (_name, bad) => {
      const events = anthropicStream({ ...SHAPE, prompt: { input_tokens: 25, cache_creation_input_tokens: bad, cache_read_input_tokens: 100 } });
      const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
      const input = await run.input();
      const rejected = input === 0 && (await run.parseErrors('invalid_usage')) >= 1;
      expect({ input, rejected, ok: rejected || input === 125 }).toEqual(expect.objectContaining({ ok: true }));
    },
  );

  it.each(badCounts.filter(([name]) => name !== 'null'))(
    'cache_read_input_tokens as %s: never added into the prompt count, and no cached_tokens observation',
    async (_name, bad) => {
      const events = anthropicStream({ ...SHAPE, prompt: { input_tokens: 25, cache_creation_input_tokens: 7, cache_read_input_tokens: bad } });
      const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
      const input = await run.input();
      const rejected = input === 0 && (await run.parseErrors('invalid_usage')) >= 1;
      expect({ input, rejected, ok: rejected || input === 32 }).toEqual(expect.objectContaining({ ok: true }));
      expect(await run.cachedCount()).toBe(0);
    },
  );

  it('a negative input_tokens is not masked by positive cache fields', async () => {
    const events = anthropicStream({ ...SHAPE, prompt: { input_tokens: -5, cache_creation_input_tokens: 0, cache_read_input_tokens: 10 } });
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(events) });
    expect(await run.input()).not.toBe(5);
    expect(await run.parseErrors('invalid_usage')).toBeGreaterThanOrEqual(1);
  });

  it('does not believe a cumulative output count that goes backwards', async () => {
    const run = runThroughState(anthropicReader, 'anthropic_messages', { events: asPairs(anthropicStream({ ...SHAPE, outputTokens: [90, 60] })) });
    expect(await run.output('claude-x')).toBe(90);
    expect(await run.parseErrors('usage_backwards')).toBe(1);
    expect(await run.overcount()).toBe(0);
  });

  it('a fuzzed stream of mangled events and bodies never throws and never reports an invalid token count', () => {
    const random = seededRandom(11);
    const sink = new RecordingSink();
    for (const event of anthropicStream(SHAPE)) {
      for (let round = 0; round < 20; round++) {
        const data = JSON.stringify(mangle(event.data, random, true));
        expect(() => anthropicReader.readEvent(data, event.event, sink)).not.toThrow();
        expect(() => anthropicReader.readBody(JSON.parse(data), sink)).not.toThrow();
        expect(() => anthropicReader.readBody(mangle({ ...(event.data.message as object), content: [{ type: 'text', text: 'x' }] }, random), sink)).not.toThrow();
      }
    }
    for (const [, n, r] of sink.of('tokens')) {
      expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
      expect(r >= 0 && r <= n).toBe(true);
    }
  });
});
