import { aiSdkUiReader } from '../../lib/formats/ai-sdk';
import { seededRandom } from '../support/prng';
import { plainTextOf } from '../support/plain-text';
import type { PlainText } from '../support/plain-text';
import { RecordingSink } from '../support/recording-sink';
import { mangle, runThroughState } from '../support/request-state';

/** Reads one event as the middleware does; `plain`: what the chunk shape learned from it (see plainTextOf). */
function read(chunk: unknown): { sink: RecordingSink; plain: PlainText | undefined } {
  const sink = new RecordingSink();
  const plain = plainTextOf(aiSdkUiReader, typeof chunk === 'string' ? chunk : JSON.stringify(chunk), undefined, sink);
  return { sink, plain };
}

// AI SDK 6's LanguageModelUsage, as `messageMetadata: ({ part }) => part.type === 'finish' ? { totalUsage: part.totalUsage } : undefined` sends it.
const TOTAL_USAGE = {
  inputTokens: 120,
  inputTokenDetails: { noCacheTokens: 20, cacheReadTokens: 100 },
  outputTokens: 57,
  outputTokenDetails: { textTokens: 45, reasoningTokens: 12 },
  totalTokens: 177,
};

const STREAM: unknown[] = [
  { type: 'start', messageId: 'msg-1' },
  { type: 'start-step' },
  { type: 'reasoning-start', id: 'r-0' },
  { type: 'reasoning-delta', id: 'r-0', delta: 'Thïnk' },
  { type: 'reasoning-end', id: 'r-0' },
  { type: 'text-start', id: 'txt-0' },
  { type: 'text-delta', id: 'txt-0', delta: 'Hello' },
  { type: 'text-delta', id: 'txt-0', delta: ', wörld 🌍' },
  { type: 'text-end', id: 'txt-0' },
  { type: 'tool-input-start', toolCallId: 'call-1', toolName: 'weather' },
  { type: 'tool-input-delta', toolCallId: 'call-1', inputTextDelta: '{"city":"Zü' },
  { type: 'tool-input-delta', toolCallId: 'call-1', inputTextDelta: 'rich"}' },
  { type: 'tool-input-available', toolCallId: 'call-1', toolName: 'weather', input: { city: 'Zürich' } },
  { type: 'finish-step' },
  { type: 'finish', finishReason: 'tool-calls' },
];
const STREAM_TOKENS = 5 + 5 + 9 + 11 + 6;

describe('aiSdkUiReader: chunks', () => {
  it('text-delta and reasoning-delta are counted and offered as plain deltas (the fast-path contract)', () => {
    const text = read({ type: 'text-delta', id: 'txt-0', delta: 'Hé 🌍' });
    expect(text.sink.seen).toEqual([['tokens', 4, 0]]);
    expect(text.plain).toEqual({ text: 'Hé 🌍', reasoning: false });
    const reasoning = read({ type: 'reasoning-delta', id: 'r-0', delta: 'hmm' });
    expect(reasoning.sink.seen).toEqual([['tokens', 3, 3]]);
    expect(reasoning.plain).toEqual({ text: 'hmm', reasoning: true });
    expect(read({ type: 'text-delta', id: 'txt-0', delta: '' }).plain).toBeUndefined();
  });

  it('tool-input-delta is counted; tool-input-available (the same input again) is not', () => {
    expect(read({ type: 'tool-input-delta', toolCallId: 'c', inputTextDelta: '{"a":1}' }).sink.tokens().tokens).toBe(7);
    expect(read({ type: 'tool-input-available', toolCallId: 'c', toolName: 't', input: { a: 1 } }).sink.seen).toEqual([]);
  });

  it('finish: its finish reason in the label vocabulary and the end marker; [DONE] is an end marker too', () => {
    expect(read({ type: 'finish', finishReason: 'tool-calls' }).sink.seen).toEqual([['finish', 'tool_calls'], ['completed']]);
    expect(read({ type: 'finish', finishReason: 'content-filter' }).sink.of('finish')).toEqual([['finish', 'content_filter']]);
    expect(read({ type: 'finish' }).sink.seen).toEqual([['completed']]);
    expect(read('[DONE]').sink.seen).toEqual([['completed']]);
  });

  it('messageMetadata: model, totalUsage (AI SDK 6 details) stated exactly, input with cache reads', () => {
    const { sink } = read({ type: 'finish', finishReason: 'stop', messageMetadata: { model: 'gpt-4o', totalUsage: TOTAL_USAGE } });
    expect(sink.of('model')).toEqual([['model', 'gpt-4o']]);
    expect(sink.of('stated')).toEqual([['stated', 57, 12, { tokens: 0, reasoning: 0 }, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 120, 100]]);
  });

  it('messageMetadata: AI SDK 5 usage fields (reasoningTokens, cachedInputTokens), on a message-metadata chunk', () => {
    const { sink } = read({ type: 'message-metadata', messageMetadata: { usage: { inputTokens: 9, outputTokens: 4, totalTokens: 13, reasoningTokens: 1, cachedInputTokens: 2 } } });
    expect(sink.of('stated')).toEqual([['stated', 4, 1, { tokens: 0, reasoning: 0 }, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 9, 2]]);
  });

  it('error and abort chunks fail the request', () => {
    expect(read({ type: 'error', errorText: 'An error occurred.' }).sink.seen).toEqual([['failed', 'internal']]);
    expect(read({ type: 'abort' }).sink.seen).toEqual([['failed', 'cancelled']]);
  });
});

describe('aiSdkUiReader: through a real request state', () => {
  const asEvents = (chunks: unknown[]): [string, undefined][] => chunks.map((c) => [typeof c === 'string' ? c : JSON.stringify(c), undefined]);

  it('without metadata: every delta estimated live, reasoning apart, the finish reason, success', async () => {
    const run = runThroughState(aiSdkUiReader, 'ai_sdk_ui', { events: asEvents([...STREAM, '[DONE]']) });
    expect(await run.output('unknown_model')).toBe(STREAM_TOKENS);
    expect(await run.reasoning('unknown_model')).toBe(5);
    expect(await run.finished('tool_calls')).toBe(1);
    expect(await run.requests({ endpoint: 'ai_sdk_ui', status: 'success' })).toBe(1);
  });

  it('with totalUsage on finish: the total is exact (corrected upward) and the model comes from the metadata', async () => {
    const finish = { type: 'finish', finishReason: 'stop', messageMetadata: { model: 'gpt-4o', totalUsage: TOTAL_USAGE } };
    const run = runThroughState(aiSdkUiReader, 'ai_sdk_ui', { events: asEvents([{ type: 'start', messageMetadata: { model: 'gpt-4o' } }, ...STREAM.slice(1, -1), finish, '[DONE]']) });
    expect(await run.output('gpt-4o')).toBe(57);
    expect(await run.reasoning('gpt-4o')).toBe(12);
    expect(await run.input('gpt-4o')).toBe(120);
    expect(await run.cachedSum('gpt-4o')).toBe(100);
  });

  it('an error chunk ends the request as an internal error', async () => {
    const run = runThroughState(aiSdkUiReader, 'ai_sdk_ui', { events: asEvents([STREAM[0], { type: 'error', errorText: 'boom' }, '[DONE]']) });
    expect(await run.requests({ status: 'error', error_type: 'internal' })).toBe(1);
  });

  it('bad input: JSON that is not an object, invalid JSON, usage of the wrong type; never a throw', () => {
    const run = runThroughState(aiSdkUiReader, 'ai_sdk_ui', {
      events: asEvents(['[]', '7', '{"type":"text-delta"', { type: 'finish', messageMetadata: { totalUsage: { outputTokens: 'many', inputTokens: -1 } } }]),
    });
    expect(run.malformed).toEqual(['unexpected_shape', 'unexpected_shape', 'invalid_json', 'invalid_usage', 'invalid_usage']);
    const random = seededRandom(6);
    for (let round = 0; round < 200; round++) {
      const mangled = [...STREAM, { type: 'finish', messageMetadata: { totalUsage: TOTAL_USAGE } }].map((chunk) => mangle(chunk, random, true));
      expect(() => runThroughState(aiSdkUiReader, 'ai_sdk_ui', { events: asEvents(mangled) })).not.toThrow();
    }
  });
});
