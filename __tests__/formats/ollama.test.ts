import { ollamaReader } from '../../lib/formats/ollama';
import { seededRandom } from '../support/prng';
import { RecordingSink } from '../support/recording-sink';
import { mangle, runThroughState } from '../support/request-state';
import { countOf, ollamaBody, ollamaLines, PIECES, THOUGHT_PIECES } from '../support/streams';

function read(line: unknown): RecordingSink {
  const sink = new RecordingSink();
  expect(ollamaReader.readEvent(typeof line === 'string' ? line : JSON.stringify(line), undefined, sink)).toBeUndefined();
  return sink;
}

const asEvents = (lines: unknown[]): [string, undefined][] => lines.map((line) => [JSON.stringify(line), undefined]);

describe('ollamaReader: streamed lines', () => {
  it('counts /api/chat message.content, names the model, and reports nothing else on a line that is not done', () => {
    const sink = read({ model: 'llama3.2', created_at: '2023-08-04T08:52:19.385406455-07:00', message: { role: 'assistant', content: 'Hé wörld' }, done: false });
    expect(sink.seen).toEqual([
      ['model', 'llama3.2'],
      ['tokens', 8, 0],
    ]);
  });

  it('counts /api/generate response text and thinking (as reasoning)', () => {
    expect(read({ model: 'm', response: 'abc', done: false }).tokens()).toEqual({ tokens: 3, reasoning: 0 });
    expect(read({ model: 'm', response: '', thinking: 'hmm', done: false }).tokens()).toEqual({ tokens: 3, reasoning: 3 });
    expect(read({ model: 'm', message: { role: 'assistant', content: '', thinking: 'why' }, done: false }).tokens()).toEqual({ tokens: 3, reasoning: 3 });
  });

  it('counts tool calls, whose arguments Ollama sends as an object', () => {
    const sink = read({ model: 'm', message: { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get', arguments: { city: 'Tokyo' } } }] }, done: false });
    expect(sink.tokens().tokens).toBe(3 + JSON.stringify({ city: 'Tokyo' }).length);
  });

  it('the done line: finish reason, end marker, eval_count as the stated total and prompt_eval_count as input', () => {
    const lines = ollamaLines({ model: 'm', pieces: ['x'], evalCount: 282, promptEvalCount: 26, doneReason: 'length' });
    const sink = read(lines[lines.length - 1]);
    expect(sink.of('finish')).toEqual([['finish', 'length']]);
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.of('stated')).toEqual([['stated', 282, undefined, { tokens: 0, reasoning: 0 }, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 26, undefined]]);
  });

  it('a done line that still carries text (as the streaming docs show) counts it live, with the stated total', () => {
    const sink = read({ model: 'gemma4', created_at: 't', response: '!', done: true, done_reason: 'stop', eval_count: 7 });
    expect(sink.of('stated')).toEqual([['stated', 7, undefined, { tokens: 1, reasoning: 0 }, true]]);
  });

  it('a done line without done_reason (older servers) finishes as stop; without eval_count the text estimate stands', () => {
    const sink = read({ model: 'm', response: 'ab', done: true });
    expect(sink.of('finish')).toEqual([['finish', 'stop']]);
    expect(sink.of('tokens')).toEqual([['tokens', 2, 0]]);
  });

  it("ignores the [DONE] a relay writing Ollama's lines as SSE ends with: not a line of Ollama's, not malformed", () => {
    expect(read('[DONE]').seen).toEqual([]);
  });

  it('an {"error": "…"} line mid-stream fails the request as internal', () => {
    const sink = read({ error: 'an error was encountered while running the model' });
    expect(sink.seen).toEqual([['failed', 'internal']]);
  });
});

describe('ollamaReader: through a real request state', () => {
  it('a whole chat stream: live estimates, corrected to eval_count; reasoning from thinking; input; finish', async () => {
    const lines = ollamaLines({ model: 'llama3.2', pieces: PIECES, thinking: THOUGHT_PIECES, evalCount: 40, promptEvalCount: 26 });
    const run = runThroughState(ollamaReader, 'ollama_chat', { events: asEvents(lines) });
    expect(await run.output('llama3.2')).toBe(40);
    expect(await run.reasoning('llama3.2')).toBe(countOf(THOUGHT_PIECES));
    expect(await run.input('llama3.2')).toBe(26);
    expect(await run.finished('stop')).toBe(1);
    expect(await run.requests({ model: 'llama3.2', endpoint: 'ollama_chat', status: 'success' })).toBe(1);
    expect(run.malformed).toEqual([]);
  });

  it('eval_count below what was estimated: the excess is published as overcount, nothing is taken back', async () => {
    const lines = ollamaLines({ model: 'm', pieces: PIECES, evalCount: 5 });
    const run = runThroughState(ollamaReader, 'ollama_chat', { events: asEvents(lines) });
    expect(await run.output('m')).toBe(countOf(PIECES));
    expect(await run.overcount('m')).toBe(countOf(PIECES) - 5);
  });

  it('stream: false bodies of /api/chat and /api/generate', async () => {
    for (const kind of ['chat', 'generate'] as const) {
      const run = runThroughState(ollamaReader, `ollama_${kind}`, { body: ollamaBody({ model: 'm', pieces: PIECES, kind, evalCount: 17, promptEvalCount: 4 }) });
      expect(await run.output('m')).toBe(17);
      expect(await run.input('m')).toBe(4);
      expect(await run.finished('stop')).toBe(1);
    }
    const estimated = runThroughState(ollamaReader, 'ollama_generate', { body: ollamaBody({ model: 'm', pieces: PIECES, kind: 'generate' }) });
    expect(await estimated.output('m')).toBe(countOf(PIECES));
  });

  it('done_reason values outside the label set (load, unload) finish as other', async () => {
    const run = runThroughState(ollamaReader, 'ollama_chat', { events: asEvents(ollamaLines({ model: 'm', pieces: [], doneReason: 'load' })) });
    expect(await run.finished('other')).toBe(1);
  });

  it('bad input: lines that are not JSON objects, a body that is not an object, malformed counts; never a throw', async () => {
    const run = runThroughState(ollamaReader, 'ollama_chat', {
      events: asEvents([[1, 2], 'text', null, 42]).concat([['{"model":', undefined]], asEvents([{ model: 'm', done: true, eval_count: '12', prompt_eval_count: -1 }])),
    });
    expect(run.malformed).toEqual(['unexpected_shape', 'unexpected_shape', 'unexpected_shape', 'unexpected_shape', 'invalid_json', 'invalid_usage', 'invalid_usage']);
    expect(await run.parseErrors('unexpected_shape')).toBe(4);
    expect(await run.parseErrors('invalid_usage')).toBe(2);
    const body = runThroughState(ollamaReader, 'ollama_chat', { body: [ollamaBody({ model: 'm', pieces: PIECES })] });
    expect(body.malformed).toEqual(['unexpected_shape']);
  });

  it('fields of the wrong type or range anywhere in a stream are skipped or reported, never thrown', () => {
    const random = seededRandom(15);
    const lines = ollamaLines({ model: 'm', pieces: PIECES, thinking: THOUGHT_PIECES, evalCount: 40, promptEvalCount: 26 });
    for (let round = 0; round < 200; round++) {
      const mangled = lines.map((line) => mangle(line, random));
      expect(() => runThroughState(ollamaReader, 'ollama_chat', { events: asEvents(mangled) })).not.toThrow();
      expect(() => runThroughState(ollamaReader, 'ollama_chat', { body: mangled[mangled.length - 1] })).not.toThrow();
    }
  });
});
