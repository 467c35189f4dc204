import { aiSdkDataReader } from '../../lib/formats/ai-sdk-data';
import { seededRandom } from '../support/prng';
import { plainTextOf } from '../support/plain-text';
import type { PlainText } from '../support/plain-text';
import { RecordingSink } from '../support/recording-sink';
import { mangle, runThroughState } from '../support/request-state';

/** One AI SDK 4 data stream part as it is written: `<type>:<JSON>`. */
const part = (type: string, value: unknown): string => `${type}:${JSON.stringify(value)}`;

/** Reads one line as the middleware does; `plain`: what the chunk shape learned from it (see plainTextOf). */
function read(line: string): { sink: RecordingSink; plain: PlainText | undefined } {
  const sink = new RecordingSink();
  const plain = plainTextOf(aiSdkDataReader, line, undefined, sink);
  return { sink, plain };
}

// What AI SDK 4's `streamText(...).pipeDataStreamToResponse(res)` writes for reasoning, text and a streamed tool call.
const STREAM = [
  part('f', { messageId: 'msg-1' }),
  part('g', 'Thïnk'),
  part('0', 'Hello'),
  part('0', ', wörld 🌍'),
  part('b', { toolCallId: 'call-1', toolName: 'weather' }),
  part('c', { toolCallId: 'call-1', argsTextDelta: '{"city":"Zü' }),
  part('c', { toolCallId: 'call-1', argsTextDelta: 'rich"}' }),
  part('9', { toolCallId: 'call-1', toolName: 'weather', args: { city: 'Zürich' } }),
  part('e', { finishReason: 'tool-calls', usage: { promptTokens: 9, completionTokens: 40 }, isContinued: false }),
];
const STREAM_TOKENS = 5 + 5 + 9 + 11 + 6;
const finish = (usage: unknown, finishReason = 'tool-calls'): string => part('d', { finishReason, usage });

describe('aiSdkDataReader: parts', () => {
  it('text (0:) and reasoning (g:) are counted and offered as plain deltas (the fast-path contract)', () => {
    const text = read(part('0', 'Hé 🌍'));
    expect(text.sink.seen).toEqual([['tokens', 4, 0]]);
    expect(text.plain).toEqual({ text: 'Hé 🌍', reasoning: false });
    const reasoning = read(part('g', 'hmm'));
    expect(reasoning.sink.seen).toEqual([['tokens', 3, 3]]);
    expect(reasoning.plain).toEqual({ text: 'hmm', reasoning: true });
    // An empty part says nothing: it is not a token cut inside a character, as an engine's empty delta is.
    expect(read(part('0', '')).sink.seen).toEqual([]);
  });

  it('a part whose value has the wrong type is reported, never counted; a d: of any value still ends the message', () => {
    for (const line of [part('0', 123), part('0', { text: 'hi' }), part('0', null), part('g', ['x']), part('c', 'str')]) {
      expect(read(line).sink.seen).toEqual([['malformed', 'unexpected_shape']]);
    }
    expect(read(part('d', 'done')).sink.seen).toEqual([['malformed', 'unexpected_shape'], ['completed']]);
  });

  it("a tool call's argument deltas (c:) are counted; the whole call (9:), step parts and tool results are not", () => {
    expect(read(part('c', { toolCallId: 'c', argsTextDelta: '{"a":1}' })).sink.tokens().tokens).toBe(7);
    for (const line of [part('9', { toolCallId: 'c', toolName: 't', args: { a: 1 } }), part('a', { toolCallId: 'c', result: 'sunny' }), STREAM[0] as string, STREAM[8] as string, part('2', [{ x: 1 }])]) {
      expect(read(line).sink.seen).toEqual([]);
    }
  });

  it("the message's end (d:) states the usage of all steps exactly, the prompt, its finish reason, and completes", () => {
    expect(read(finish({ promptTokens: 120, completionTokens: 57 })).sink.seen).toEqual([
      ['stated', 57, undefined, { tokens: 0, reasoning: 0 }, false],
      ['prompt', 120, undefined],
      ['finish', 'tool_calls'],
      ['completed'],
    ]);
    // A provider that states no usage: AI SDK 4 sends NaN, which JSON writes as null.
    expect(read(finish({ promptTokens: null, completionTokens: null }, 'stop')).sink.seen).toEqual([['finish', 'stop'], ['completed']]);
  });

  it('an error part (3:) fails the request', () => {
    expect(read(part('3', 'An error occurred.')).sink.seen).toEqual([['failed', 'internal']]);
  });
});

describe('aiSdkDataReader: through a real request state', () => {
  const asLines = (lines: string[]): [string, undefined][] => lines.map((line) => [line, undefined]);

  it('without a message end: every delta estimated live, reasoning apart, the request cut', async () => {
    const run = runThroughState(aiSdkDataReader, 'ai_sdk_data', { events: asLines(STREAM) });
    expect(await run.output('unknown_model')).toBe(STREAM_TOKENS);
    expect(await run.reasoning('unknown_model')).toBe(5);
    expect(await run.requests({ endpoint: 'ai_sdk_data', status: 'success' })).toBe(0);
  });

  it('with the message end: the total is exact (corrected upward), input counted, finish reason, success', async () => {
    const run = runThroughState(aiSdkDataReader, 'ai_sdk_data', { events: asLines([...STREAM, finish({ promptTokens: 120, completionTokens: 57 })]) });
    expect(await run.output('unknown_model')).toBe(57);
    expect(await run.input('unknown_model')).toBe(120);
    expect(await run.finished('tool_calls')).toBe(1);
    expect(await run.requests({ endpoint: 'ai_sdk_data', status: 'success' })).toBe(1);
  });

  it('bad input: a line without a type, invalid JSON, usage of the wrong type; never a throw', () => {
    const run = runThroughState(aiSdkDataReader, 'ai_sdk_data', {
      events: asLines(['hello', ':"x"', '0:"unterminated', finish({ completionTokens: 'many', promptTokens: -1 })]),
    });
    expect(run.malformed).toEqual(['unexpected_shape', 'unexpected_shape', 'invalid_json', 'invalid_usage', 'invalid_usage']);
    const random = seededRandom(7);
    for (let round = 0; round < 200; round++) {
      const mangled = [...STREAM, finish({ promptTokens: 120, completionTokens: 57 })].map((line) => {
        const colon = line.indexOf(':');
        return `${line.slice(0, colon)}:${JSON.stringify(mangle(JSON.parse(line.slice(colon + 1)), random, true)) ?? ''}`;
      });
      expect(() => runThroughState(aiSdkDataReader, 'ai_sdk_data', { events: asLines(mangled) })).not.toThrow();
    }
  });
});
