import { geminiReader } from '../../lib/formats/gemini';
import { seededRandom } from '../support/prng';
import { RecordingSink } from '../support/recording-sink';
import { mangle, runThroughState } from '../support/request-state';
import { geminiBody, geminiChunks, PIECES, THOUGHT_PIECES } from '../support/streams';

function read(chunk: unknown): RecordingSink {
  const sink = new RecordingSink();
  expect(geminiReader.readEvent(typeof chunk === 'string' ? chunk : JSON.stringify(chunk), undefined, sink)).toBeUndefined();
  return sink;
}

const asEvents = (chunks: unknown[]): [string, undefined][] => chunks.map((chunk) => [JSON.stringify(chunk), undefined]);

// A chunk captured from gemini-2.5-flash with thinking on: thoughts are counted apart from the answer.
const CAPTURED = {
  candidates: [{ content: { parts: [{ text: 'Okay, let us' }], role: 'model' }, index: 0 }],
  usageMetadata: { promptTokenCount: 4, candidatesTokenCount: 49, totalTokenCount: 2095, promptTokensDetails: [{ modality: 'TEXT', tokenCount: 4 }], thoughtsTokenCount: 2042 },
  modelVersion: 'gemini-2.5-flash',
  responseId: 'IZI2acSKMoWl0-kPmYj2yQc',
};

describe('geminiReader: stream chunks', () => {
  it('states answer + thoughts as the cumulative output, thoughts as reasoning, live; names modelVersion; reads the prompt', () => {
    const sink = read(CAPTURED);
    expect(sink.of('model')).toEqual([['model', 'gemini-2.5-flash']]);
    expect(sink.of('stated')).toEqual([['stated', 49 + 2042, 2042, { tokens: 12, reasoning: 0 }, true]]);
    expect(sink.of('prompt')).toEqual([['prompt', 4, undefined]]);
    expect(sink.of('completed')).toEqual([]);
  });

  it('finishReason ends the stream and maps onto the label set', () => {
    const cases: [string, string][] = [
      ['STOP', 'stop'],
      ['MAX_TOKENS', 'length'],
      ['SAFETY', 'content_filter'],
      ['RECITATION', 'content_filter'],
      ['MALFORMED_FUNCTION_CALL', 'error'],
      ['FINISH_REASON_UNSPECIFIED', 'other'],
    ];
    for (const [gemini, label] of cases) {
      const sink = read({ candidates: [{ content: { parts: [{ text: 'x' }] }, finishReason: gemini, index: 0 }] });
      expect(sink.of('finish')).toEqual([['finish', label]]);
      expect(sink.of('completed')).toHaveLength(1);
    }
  });

  it('a function call finishing with STOP finishes as tool_calls; its name and args are counted', () => {
    const sink = read({
      candidates: [{ content: { parts: [{ functionCall: { name: 'getWeather', args: { location: 'Tokyo' } } }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    });
    expect(sink.of('finish')).toEqual([['finish', 'tool_calls']]);
    expect(sink.tokens().tokens).toBe('getWeather'.length + JSON.stringify({ location: 'Tokyo' }).length);
  });

  it('thought parts are reasoning; a chunk stating only the prompt has its text estimated', () => {
    const sink = read({ candidates: [{ content: { parts: [{ text: 'hmm', thought: true }, { text: 'ok' }] } }], usageMetadata: { promptTokenCount: 3, totalTokenCount: 3 } });
    expect(sink.tokens()).toEqual({ tokens: 5, reasoning: 3 });
  });

  it('input = promptTokenCount + toolUsePromptTokenCount; cached = cachedContentTokenCount', () => {
    const sink = read({ candidates: [], usageMetadata: { promptTokenCount: 100, toolUsePromptTokenCount: 20, cachedContentTokenCount: 64 } });
    expect(sink.of('prompt')).toEqual([['prompt', 120, 64]]);
  });

  it('a blocked prompt (promptFeedback, no candidates) finishes as content_filter', () => {
    const sink = read({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 8 } });
    expect(sink.of('finish')).toEqual([['finish', 'content_filter']]);
    expect(sink.of('completed')).toHaveLength(1);
  });

  it('error objects map by their HTTP-like code', () => {
    expect(read({ error: { code: 429, message: 'Resource has been exhausted', status: 'RESOURCE_EXHAUSTED' } }).seen).toEqual([['failed', 'overload']]);
    expect(read({ error: { code: 503, message: 'The model is overloaded.', status: 'UNAVAILABLE' } }).seen).toEqual([['failed', 'unavailable']]);
    expect(read({ error: { code: 400, message: 'bad', status: 'INVALID_ARGUMENT' } }).seen).toEqual([['failed', 'validation']]);
  });
});

describe('geminiReader: through a real request state', () => {
  const shape = { model: 'gemini-2.5-flash', pieces: PIECES, thoughts: THOUGHT_PIECES, thoughtsTokens: 30, prompt: 12, cached: 8 };

  it('a whole stream: output = final answer + thoughts exactly, reasoning = thoughts, input, cached, finish', async () => {
    const run = runThroughState(geminiReader, 'gemini_generate_content', { events: asEvents(geminiChunks(shape)) });
    expect(await run.output('gemini-2.5-flash')).toBe(2 * PIECES.length + 30);
    expect(await run.reasoning('gemini-2.5-flash')).toBe(30);
    expect(await run.input('gemini-2.5-flash')).toBe(12);
    expect(await run.cachedSum('gemini-2.5-flash')).toBe(8);
    expect(await run.finished('stop')).toBe(1);
    expect(await run.overcount('gemini-2.5-flash')).toBe(0);
    expect(run.malformed).toEqual([]);
  });

  it('unary :generateContent, and the JSON array streamGenerateContent sends without alt=sse', async () => {
    const body = runThroughState(geminiReader, 'gemini_generate_content', { body: geminiBody(shape) });
    expect(await body.output('gemini-2.5-flash')).toBe(2 * PIECES.length + 30);
    expect(await body.input('gemini-2.5-flash')).toBe(12);
    const array = runThroughState(geminiReader, 'gemini_generate_content', { body: geminiChunks(shape) });
    expect(await array.output('gemini-2.5-flash')).toBe(2 * PIECES.length + 30);
    expect(await array.finished('stop')).toBe(1);
  });

  it('usage that goes backwards is reported and not believed; what was counted stays', async () => {
    const chunks = geminiChunks({ model: 'g', pieces: ['a', 'b', 'c'], answerTokens: [5, 3, 6] });
    const run = runThroughState(geminiReader, 'gemini_generate_content', { events: asEvents(chunks) });
    expect(run.malformed).toEqual(['usage_backwards']);
    expect(await run.output('g')).toBe(6);
  });

  it("ignores a gateway's trailing [DONE]: not a chunk of this format, not malformed, not the end marker", () => {
    expect(read('[DONE]').seen).toEqual([]);
  });

  it('bad input: JSON that is not an object, invalid JSON, malformed counts, array elements that are not objects', async () => {
    const run = runThroughState(geminiReader, 'gemini_generate_content', {
      events: [['[1]', undefined], ['"text"', undefined], ['{"candidates":[', undefined], [JSON.stringify({ candidates: [], usageMetadata: { candidatesTokenCount: -3, promptTokenCount: 'x' } }), undefined]],
    });
    expect(run.malformed).toEqual(['unexpected_shape', 'unexpected_shape', 'invalid_json', 'invalid_usage', 'invalid_usage']);
    const body = runThroughState(geminiReader, 'gemini_generate_content', { body: [1, geminiBody(shape)] });
    expect(body.malformed).toEqual(['unexpected_shape']);
    expect(await body.output('gemini-2.5-flash')).toBe(2 * PIECES.length + 30);
  });

  it('fields of the wrong type or range anywhere are skipped or reported, never thrown', () => {
    const random = seededRandom(21);
    const chunks = geminiChunks(shape);
    for (let round = 0; round < 200; round++) {
      const mangled = chunks.map((chunk) => mangle(chunk, random));
      expect(() => runThroughState(geminiReader, 'gemini_generate_content', { events: asEvents(mangled) })).not.toThrow();
      expect(() => runThroughState(geminiReader, 'gemini_generate_content', { body: mangled })).not.toThrow();
    }
  });
});

