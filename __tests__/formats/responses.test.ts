import { responsesReader } from '../../lib/formats/responses';
import { seededRandom } from '../support/prng';
import { RecordingSink } from '../support/recording-sink';
import { mangle, runThroughState } from '../support/request-state';
import { ARG_PIECES, countOf, REASONING_PIECES, responseObject, ResponsesEvents, responsesStream, responsesUsage, TEXT_PIECES } from '../support/streams';
import type { TypedEvent } from '../support/streams';

/** Reads one event (an object is serialized; a string is passed as raw data) with its `event:` type. */
function read(payload: unknown, eventType?: string): RecordingSink {
  const sink = new RecordingSink();
  const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const type = eventType ?? (typeof payload === 'object' && payload !== null ? ((payload as { type?: unknown }).type as string | undefined) : undefined);
  expect(responsesReader.readEvent(data, type, sink)).toBeUndefined();
  return sink;
}

function readAll(events: TypedEvent[]): RecordingSink {
  const sink = new RecordingSink();
  for (const event of events) responsesReader.readEvent(JSON.stringify(event.data), event.event, sink);
  return sink;
}

function readBody(body: unknown): RecordingSink {
  const sink = new RecordingSink();
  responsesReader.readBody(body, sink);
  return sink;
}

const asPairs = (events: TypedEvent[]): [string, string][] => events.map((e) => [JSON.stringify(e.data), e.event]);

const delta = (type: string, text: unknown, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  type,
  sequence_number: 7,
  item_id: 'item_1',
  output_index: 0,
  content_index: 0,
  delta: text,
  ...extra,
});

const terminal = (type: 'completed' | 'incomplete' | 'failed', extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  type: `response.${type}`,
  sequence_number: 99,
  response: responseObject('gpt-x', type, extra),
});

const NO_CHUNK = { tokens: 0, reasoning: 0 };

describe('responsesReader.readEvent: deltas', () => {
  it('counts response.output_text.delta as generated text', () => {
    expect(read(delta('response.output_text.delta', 'Héllo 🌍')).seen).toEqual([['tokens', 7, 0]]);
  });

  it('counts one token per logprobs entry of an output_text delta, over the text estimate', () => {
    const logprobs = [
      { token: 'Hel', logprob: -0.1, top_logprobs: [] },
      { token: 'lo', logprob: -0.2, top_logprobs: [] },
    ];
    expect(read(delta('response.output_text.delta', 'Hello', { logprobs })).seen).toEqual([['tokens', 2, 0]]);
    // An empty logprobs array says nothing: the text is estimated.
    expect(read(delta('response.output_text.delta', 'Hello', { logprobs: [] })).seen).toEqual([['tokens', 5, 0]]);
  });

  it('counts reasoning_text and reasoning_summary_text deltas as reasoning', () => {
    expect(read(delta('response.reasoning_text.delta', 'think')).seen).toEqual([['tokens', 5, 5]]);
    expect(read(delta('response.reasoning_summary_text.delta', '天气 ok')).seen).toEqual([['tokens', 5, 5]]);
  });

  it('counts function-call argument and refusal deltas as (non-reasoning) output', () => {
    expect(read(delta('response.function_call_arguments.delta', '{"city":')).seen).toEqual([['tokens', 8, 0]]);
    expect(read(delta('response.refusal.delta', "I can't")).seen).toEqual([['tokens', 7, 0]]);
  });

  it('reads the type from the event: line when the data has none', () => {
    const sink = new RecordingSink();
    responsesReader.readEvent(JSON.stringify({ delta: 'abc' }), 'response.output_text.delta', sink);
    expect(sink.seen).toEqual([['tokens', 3, 0]]);
  });

  it('counts nothing for .done events and other events that repeat text already streamed', () => {
    const repeats = [
      { type: 'response.output_text.done', item_id: 'm', output_index: 0, content_index: 0, text: 'Hello world' },
      { type: 'response.reasoning_summary_text.done', item_id: 'r', output_index: 0, summary_index: 0, text: 'thinking' },
      { type: 'response.function_call_arguments.done', item_id: 'f', output_index: 0, arguments: '{"a":1}' },
      { type: 'response.refusal.done', item_id: 'm', output_index: 0, content_index: 0, refusal: 'no' },
      { type: 'response.content_part.done', item_id: 'm', output_index: 0, content_index: 0, part: { type: 'output_text', text: 'Hello' } },
      {
        type: 'response.output_item.done',
        output_index: 0,
        item: { type: 'message', content: [{ type: 'output_text', text: 'Hello world' }] },
      },
      { type: 'response.output_item.added', output_index: 0, item: { type: 'message', content: [] } },
      { type: 'response.content_part.added', item_id: 'm', output_index: 0, content_index: 0, part: { type: 'output_text', text: '' } },
    ];
    for (const event of repeats) {
      const sink = read(event);
      expect(sink.tokens().tokens).toBe(0);
      expect(sink.of('stated')).toEqual([]);
      expect(sink.of('completed')).toEqual([]);
    }
  });
});

describe('responsesReader.readEvent: lifecycle events', () => {
  it('reports the model of response.created and response.in_progress, and nothing else', () => {
    for (const type of ['response.created', 'response.in_progress']) {
      const sink = read({ type, sequence_number: 0, response: responseObject('gpt-4.1-mini', 'in_progress') });
      expect(sink.seen).toEqual([['model', 'gpt-4.1-mini']]);
    }
  });

  it('reads response.completed: model, stop, end marker, stated output and reasoning, prompt and cached tokens', () => {
    const sink = read(terminal('completed', { usage: responsesUsage({ input_tokens: 120, output_tokens: 42, cached: 64, reasoning: 17 }) }));
    expect(sink.of('model')).toEqual([['model', 'gpt-x']]);
    expect(sink.of('finish')).toEqual([['finish', 'stop']]);
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.of('stated')).toEqual([['stated', 42, 17, NO_CHUNK, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 120, 64]]);
    expect(sink.of('failed')).toEqual([]);
    // The terminal event's output repeats streamed text: nothing is estimated from it.
    expect(sink.tokens().tokens).toBe(0);
  });

  it('reports tool_calls when the completed response holds a function_call item', () => {
    const output = [
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Let me check.' }] },
      { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"a":1}' },
    ];
    const sink = read(terminal('completed', { output, usage: responsesUsage({ input_tokens: 5, output_tokens: 9 }) }));
    expect(sink.of('finish')).toEqual([['finish', 'tool_calls']]);
    expect(sink.tokens().tokens).toBe(0);
  });

  it('reads response.incomplete: incomplete_details.reason becomes the finish reason, with usage', () => {
    const sink = read(
      terminal('incomplete', { incomplete_details: { reason: 'max_output_tokens' }, usage: responsesUsage({ input_tokens: 3, output_tokens: 16 }) }),
    );
    expect(sink.of('finish')).toEqual([['finish', 'max_output_tokens']]);
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.of('stated')).toEqual([['stated', 16, 0, NO_CHUNK, false]]);
    expect(sink.of('failed')).toEqual([]);
    const filtered = read(terminal('incomplete', { incomplete_details: { reason: 'content_filter' } }));
    expect(filtered.of('finish')).toEqual([['finish', 'content_filter']]);
  });

  it('reads response.failed as failed with the mapped error type, still taking its usage', () => {
    const sink = read(
      terminal('failed', { error: { code: 'server_error', message: 'boom' }, usage: responsesUsage({ input_tokens: 8, output_tokens: 4 }) }),
    );
    expect(sink.of('failed')).toEqual([['failed', 'internal']]);
    expect(sink.of('stated')).toEqual([['stated', 4, 0, NO_CHUNK, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 8, 0]]);
    const limited = read(terminal('failed', { error: { code: 'rate_limit_exceeded', message: 'slow down' } }));
    expect(limited.of('failed')).toEqual([['failed', 'overload']]);
  });

  it('reads error events as failed, with the mapped error type, and not as an end marker', () => {
    const top = read({ type: 'error', sequence_number: 3, code: 'rate_limit_exceeded', message: 'Rate limit reached', param: null });
    expect(top.seen).toEqual([['failed', 'overload']]);
    const serverError = read({ type: 'error', sequence_number: 3, code: 'server_error', message: 'boom', param: null });
    expect(serverError.seen).toEqual([['failed', 'internal']]);
    const nested = read({ type: 'error', error: { type: 'invalid_request_error', message: 'bad' } });
    expect(nested.seen).toEqual([['failed', 'validation']]);
    const noCode = read({ type: 'error', message: 'something' });
    expect(noCode.seen).toEqual([['failed', 'internal']]);
  });
});

describe('responsesReader over a whole stream', () => {
  const shape = {
    model: 'gpt-x',
    reasoning: REASONING_PIECES,
    text: TEXT_PIECES,
    args: ARG_PIECES,
    end: 'completed' as const,
    usage: { input_tokens: 300, output_tokens: 120, cached: 256, reasoning: 20 },
  };
  const live = countOf(REASONING_PIECES) + countOf(TEXT_PIECES) + countOf(ARG_PIECES);

  it('reports every delta once, the model, and one end marker', () => {
    const sink = readAll(responsesStream(shape));
    expect(sink.tokens()).toEqual({ tokens: live, reasoning: countOf(REASONING_PIECES) });
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.of('finish')).toEqual([['finish', 'tool_calls']]);
    expect(new Set(sink.of('model').map(([, model]) => model))).toEqual(new Set(['gpt-x']));
  });

  it('through a request state, the output counter ends at the stated usage and reasoning at reasoning_tokens', async () => {
    expect(live).toBeLessThan(120);
    const run = runThroughState(responsesReader, 'responses', { events: asPairs(responsesStream(shape)) });
    expect(await run.output('gpt-x')).toBe(120);
    expect(await run.reasoning('gpt-x')).toBe(20);
    expect(await run.input('gpt-x')).toBe(300);
    expect(await run.cachedCount('gpt-x')).toBe(1);
    expect(await run.cachedSum('gpt-x')).toBe(256);
    expect(await run.overcount()).toBe(0);
    expect(await run.finished('tool_calls')).toBe(1);
    expect(await run.requests({ model: 'gpt-x', status: 'success', error_type: '' })).toBe(1);
    expect(run.malformed).toEqual([]);
  });

  it('publishes a live overshoot as overcount', async () => {
    const run = runThroughState(responsesReader, 'responses', {
      events: asPairs(responsesStream({ ...shape, usage: { input_tokens: 3, output_tokens: live - 9, reasoning: 1 } })),
    });
    expect(await run.output('gpt-x')).toBe(live);
    expect(await run.overcount('gpt-x')).toBe(9);
  });

  it('maps response.incomplete with max_output_tokens to finish_reason="length"', async () => {
    const run = runThroughState(responsesReader, 'responses', {
      events: asPairs(responsesStream({ ...shape, args: undefined, end: 'incomplete', usage: { input_tokens: 3, output_tokens: 64 } })),
    });
    expect(await run.finished('length')).toBe(1);
    expect(await run.output('gpt-x')).toBe(64);
    expect(await run.requests({ status: 'success' })).toBe(1);
  });

  it('counts response.failed as an error request with its usage', async () => {
    const run = runThroughState(responsesReader, 'responses', {
      events: asPairs(responsesStream({ ...shape, args: undefined, end: 'failed', usage: { input_tokens: 3, output_tokens: 60 } })),
    });
    expect(await run.requests({ status: 'error', error_type: 'internal' })).toBe(1);
    expect(await run.output('gpt-x')).toBe(60);
  });

  it('counts a stream cut before its terminal event as internal, keeping the live count', async () => {
    const run = runThroughState(responsesReader, 'responses', {
      events: asPairs(responsesStream({ ...shape, args: undefined, end: 'none' })),
    });
    expect(await run.requests({ status: 'error', error_type: 'internal' })).toBe(1);
    expect(await run.output('gpt-x')).toBe(countOf(REASONING_PIECES) + countOf(TEXT_PIECES));
  });
});

describe('responsesReader.readBody (unary)', () => {
  const output = [
    { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: 'Plan it' }] },
    { id: 'msg_1', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hello 世界', annotations: [] }] },
  ];

  it('states usage and prompt tokens, reports model, stop and the end marker', () => {
    const sink = readBody(responseObject('gpt-x', 'completed', { output, usage: responsesUsage({ input_tokens: 11, output_tokens: 33, cached: 4, reasoning: 9 }) }));
    expect(sink.of('model')).toEqual([['model', 'gpt-x']]);
    expect(sink.of('stated')).toEqual([['stated', 33, 9, NO_CHUNK, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 11, 4]]);
    expect(sink.of('finish')).toEqual([['finish', 'stop']]);
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.tokens().tokens).toBe(0);
  });

  it('estimates the output items when there is no usage: text, reasoning summary, function-call arguments, refusal', () => {
    const items = [
      ...output,
      { type: 'message', role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] },
      { type: 'function_call', call_id: 'c', name: 'f', arguments: '{"a":1}' },
    ];
    const sink = readBody(responseObject('gpt-x', 'completed', { output: items }));
    // 'Plan it' 7 (reasoning) + 'Hello 世界' 8 + 'No.' 3 + '{"a":1}' 7
    expect(sink.tokens()).toEqual({ tokens: 25, reasoning: 7 });
    expect(sink.of('finish')).toEqual([['finish', 'tool_calls']]);
  });

  it('reads an incomplete body and a failed body', () => {
    const incomplete = readBody(responseObject('gpt-x', 'incomplete', { incomplete_details: { reason: 'max_output_tokens' }, usage: responsesUsage({ input_tokens: 1, output_tokens: 2 }) }));
    expect(incomplete.of('finish')).toEqual([['finish', 'max_output_tokens']]);
    const failed = readBody(responseObject('gpt-x', 'failed', { error: { code: 'server_error', message: 'x' } }));
    expect(failed.of('failed')).toEqual([['failed', 'internal']]);
  });

  it('reports an error body as failed', () => {
    expect(readBody({ error: { message: 'bad model', type: 'invalid_request_error', param: 'model', code: 'model_not_found' } }).of('failed')).toEqual([
      ['failed', 'validation'],
    ]);
  });

  it('through a request state, a unary body is counted exactly from its usage', async () => {
    const run = runThroughState(responsesReader, 'responses', {
      body: responseObject('gpt-x', 'completed', { output, usage: responsesUsage({ input_tokens: 11, output_tokens: 33, cached: 4, reasoning: 9 }) }),
    });
    expect(await run.output('gpt-x')).toBe(33);
    expect(await run.reasoning('gpt-x')).toBe(9);
    expect(await run.input('gpt-x')).toBe(11);
    expect(await run.cachedSum('gpt-x')).toBe(4);
    expect(await run.requests({ model: 'gpt-x', request_type: 'unary', status: 'success' })).toBe(1);
  });

  it('reports a body that is not an object as malformed', () => {
    for (const body of [null, 3, 'text', [1, 2]]) {
      expect(readBody(body).of('malformed')).toHaveLength(1);
    }
  });
});

describe('responsesReader: bad input never throws and is ignored or reported', () => {
  it('ignores unknown event types, also ones that look like deltas', () => {
    for (const event of [
      { type: 'response.future_feature.delta', delta: 'hello' },
      { type: 'response.output_text.annotation.added', annotation: { type: 'url_citation' } },
      { type: 'response.web_search_call.searching', output_index: 0 },
      { type: 42, delta: 'abc' },
      {},
    ]) {
      const sink = read(event, 'mystery');
      expect(sink.tokens().tokens).toBe(0);
      expect(sink.of('completed')).toEqual([]);
      expect(sink.of('failed')).toEqual([]);
    }
  });

  it('counts nothing for deltas without text or with text of the wrong type', () => {
    for (const text of [undefined, null, 5, true, { text: 'x' }, ['a'], '']) {
      for (const type of ['response.output_text.delta', 'response.reasoning_text.delta', 'response.function_call_arguments.delta', 'response.refusal.delta']) {
        const sink = read(delta(type, text));
        expect(sink.tokens().tokens).toBe(0);
        expect(sink.estimated).toEqual([]);
      }
    }
  });

  it('estimates the text when logprobs is not an array', () => {
    expect(read(delta('response.output_text.delta', 'abcd', { logprobs: 'many' })).seen).toEqual([['tokens', 4, 0]]);
    expect(read(delta('response.output_text.delta', 'abcd', { logprobs: { content: [1, 2] } })).seen).toEqual([['tokens', 4, 0]]);
  });

  it("ignores a gateway's trailing [DONE]: not an event of this format, not malformed, not the end marker", () => {
    expect(read('[DONE]').seen).toEqual([]);
  });

  it('reports malformed JSON and non-object JSON without throwing', () => {
    expect(read('{"type":"response.output_text.delta","delta":"ab', 'response.output_text.delta').seen).toEqual([['malformed', 'invalid_json']]);
    expect(read('{"type":"response.completed","response":{"usage":{"output_tokens":NaN}}}', 'response.completed').seen).toEqual([['malformed', 'invalid_json']]);
    expect(read('{"output_tokens": Infinity}', 'response.completed').seen).toEqual([['malformed', 'invalid_json']]);
    expect(read('', 'response.output_text.delta').seen).toEqual([['malformed', 'invalid_json']]);
    for (const data of ['42', '"text"', 'null', '[1]', 'true']) {
      expect(read(data, 'response.output_text.delta').of('malformed')).toHaveLength(1);
    }
  });

  it('reports a terminal event without a response object as malformed, and does not count it as the end', () => {
    for (const response of [undefined, null, 'done', 7, []]) {
      const sink = read({ type: 'response.completed', sequence_number: 1, response });
      expect(sink.of('malformed')).toHaveLength(1);
      expect(sink.of('completed')).toEqual([]);
      expect(sink.of('stated')).toEqual([]);
    }
  });

  it('survives usage of the wrong shape in a terminal event (string, array, missing counts)', () => {
    for (const usage of ['80', [80], null, {}, { input_tokens: 5 }, { output_tokens_details: 'x', input_tokens_details: 4 }]) {
      const sink = read(terminal('completed', { usage }));
      expect(sink.of('completed')).toHaveLength(1);
      expect(sink.tokens().tokens).toBe(0);
    }
  });

  const usageCases: [string, unknown][] = [
    ['a string', '80'],
    ['a negative number', -80],
    ['a non-integer', 80.5],
    ['1e308', 1e308],
    ['beyond 1e8', 100_000_001],
    ['null', null],
    ['a boolean', true],
    ['an object', { value: 80 }],
  ];

  it.each(usageCases)('output_tokens as %s: parse_errors_total{reason="invalid_usage"}, the live count stays', async (_name, bad) => {
    const events = responsesStream({
      model: 'gpt-x',
      reasoning: [],
      text: ['abc', 'de'],
      end: 'completed',
      usage: { input_tokens: 7, output_tokens: bad },
    });
    const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
    expect(await run.output('gpt-x')).toBe(5);
    expect(await run.parseErrors('invalid_usage')).toBeGreaterThanOrEqual(1);
    expect(await run.input('gpt-x')).toBe(7);
    expect(await run.requests({ status: 'success' })).toBe(1);
  });

  it.each(usageCases)('input_tokens as %s: not counted, reported as invalid_usage', async (_name, bad) => {
    const events = responsesStream({ model: 'gpt-x', reasoning: [], text: ['abc'], end: 'completed', usage: { input_tokens: bad, output_tokens: 3 } });
    const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
    expect(await run.input()).toBe(0);
    expect(await run.parseErrors('invalid_usage')).toBeGreaterThanOrEqual(1);
    expect(await run.output('gpt-x')).toBe(3);
  });

  it.each(usageCases)('cached_tokens as %s: no cached_tokens observation, the prompt still counts', async (_name, bad) => {
    const events = responsesStream({ model: 'gpt-x', reasoning: [], text: ['abc'], end: 'completed', usage: { input_tokens: 9, output_tokens: 3, cached: bad } });
    const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
    expect(await run.cachedCount()).toBe(0);
    expect(await run.input('gpt-x')).toBe(9);
  });

  it.each(usageCases)('reasoning_tokens as %s: reasoning counter keeps its live count; invalid_usage unless null (absent)', async (_name, bad) => {
    const events = responsesStream({ model: 'gpt-x', reasoning: ['ab'], text: ['abc'], end: 'completed', usage: { input_tokens: 9, output_tokens: 10, reasoning: bad } });
    const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
    expect(await run.reasoning('gpt-x')).toBe(2);
    expect(await run.output('gpt-x')).toBe(10);
    expect(await run.parseErrors('invalid_usage')).toBe(bad === null ? 0 : 1);
  });

  it('accepts counts up to 1e8 exactly, and nothing above', async () => {
    for (const [count, counted] of [
      [100_000_000, 100_000_000],
      [100_000_001, 3],
    ]) {
      const events = responsesStream({ model: 'gpt-x', reasoning: [], text: ['abc'], end: 'completed', usage: { input_tokens: count, output_tokens: count } });
      const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
      expect([count, await run.output('gpt-x')]).toEqual([count, counted]);
      expect([count, await run.input()]).toEqual([count, counted === 3 ? 0 : count]);
    }
  });

  it('does not believe usage that goes backwards (a second terminal event with a smaller count)', async () => {
    const events = new ResponsesEvents()
      .created('gpt-x')
      .text('abc')
      .add('response.completed', { response: responseObject('gpt-x', 'completed', { usage: responsesUsage({ input_tokens: 2, output_tokens: 20 }) }) })
      .add('response.completed', { response: responseObject('gpt-x', 'completed', { usage: responsesUsage({ input_tokens: 2, output_tokens: 10 }) }) }).events;
    const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
    expect(await run.output('gpt-x')).toBe(20);
    expect(await run.parseErrors('usage_backwards')).toBe(1);
    expect(await run.overcount()).toBe(0);
  });

  it('a response.created without its response object does not decide the model label; a later event names it', async () => {
    const events = new ResponsesEvents()
      .add('response.created', {})
      .add('response.in_progress', { response: responseObject('gpt-x', 'in_progress') })
      .text('abc')
      .add('response.completed', { response: responseObject('gpt-x', 'completed', { usage: responsesUsage({ input_tokens: 2, output_tokens: 3 }) }) }).events;
    const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
    expect(await run.output('gpt-x')).toBe(3);
    expect(await run.output('unknown_model')).toBe(0);
  });

  it('a response.created whose response has no model (or a non-string one) does not decide the model label', async () => {
    for (const model of [undefined, null, 42]) {
      const created = responseObject('x', 'in_progress');
      if (model === undefined) delete created.model;
      else created.model = model;
      const events = new ResponsesEvents()
        .add('response.created', { response: created })
        .text('abc')
        .add('response.completed', { response: responseObject('gpt-x', 'completed', { usage: responsesUsage({ input_tokens: 2, output_tokens: 3 }) }) }).events;
      const run = runThroughState(responsesReader, 'responses', { events: asPairs(events) });
      expect(await run.output('gpt-x')).toBe(3);
    }
  });

  it('an error event whose error is not an object maps to internal', () => {
    for (const error of ['boom', 5, null, []]) {
      expect(read({ type: 'error', error }).of('failed')).toEqual([['failed', 'internal']]);
    }
  });

  it('incomplete_details of the wrong type still ends the request', () => {
    for (const details of ['max_output_tokens', 5, { reason: 7 }, { reason: null }]) {
      const sink = read(terminal('incomplete', { incomplete_details: details }));
      expect(sink.of('completed')).toHaveLength(1);
      expect(sink.of('failed')).toEqual([]);
    }
  });

  it('a fuzzed stream of mangled events never throws and never reports an invalid token count', () => {
    const base = responsesStream({ model: 'gpt-x', reasoning: ['ab'], text: TEXT_PIECES, args: ['{"a":1}'], end: 'completed', usage: { input_tokens: 1, output_tokens: 99 } });
    const sink = new RecordingSink();
    const random = seededRandom(4);
    for (const event of base) {
      for (let round = 0; round < 20; round++) {
        const data = JSON.stringify(mangle(event.data, random, true));
        expect(() => responsesReader.readEvent(data, event.event, sink)).not.toThrow();
        expect(() => responsesReader.readBody(JSON.parse(data), sink)).not.toThrow();
      }
    }
    for (const [, n, r] of sink.of('tokens')) {
      expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
      expect(r >= 0 && r <= n).toBe(true);
    }
  });
});
