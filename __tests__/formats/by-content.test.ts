import { anthropicReader } from '../../lib/formats/anthropic';
import { FormatByContent, formatOfFirstLine, mayOpenRelayLine } from '../../lib/formats/by-content';
import { geminiReader } from '../../lib/formats/gemini';
import { ollamaReader } from '../../lib/formats/ollama';
import { openAiReader } from '../../lib/formats/openai';
import { responsesReader } from '../../lib/formats/responses';
import type { WireFormatReader } from '../../lib/formats/types';
import { RecordingSink } from '../support/recording-sink';
import {
  anthropicStream,
  chatChunk,
  geminiChunks,
  ollamaLines,
  PIECES,
  REASONING_PIECES,
  responsesStream,
  TEXT_PIECES,
} from '../support/streams';

type Event = [data: string, eventType: string | undefined];

const typed = (events: { event: string; data: unknown }[], withType: boolean): Event[] =>
  events.map(({ event, data }) => [JSON.stringify(data), withType ? event : undefined]);

const STREAMS: [string, WireFormatReader, Event[]][] = [
  [
    'OpenAI chat chunks',
    openAiReader,
    [
      ...TEXT_PIECES.map((content): Event => [JSON.stringify(chatChunk('gpt-4o-mini', [{ delta: { content } }])), undefined]),
      [JSON.stringify(chatChunk('gpt-4o-mini', [{ delta: {}, finish_reason: 'stop' }])), undefined],
      [JSON.stringify(chatChunk('gpt-4o-mini', [], { prompt_tokens: 4, completion_tokens: 20 })), undefined],
      ['[DONE]', undefined],
    ],
  ],
  [
    "Mistral's SDK chunks, wrapped in data",
    openAiReader,
    [
      ...['Bon', 'jour'].map((content): Event => [JSON.stringify({ data: chatChunk('mistral-small', [{ delta: { content } }]) }), undefined]),
      [JSON.stringify({ data: { model: 'mistral-small', choices: [{ index: 0, delta: {}, finishReason: 'stop' }], usage: { promptTokens: 3, completionTokens: 4 } } }), undefined],
    ],
  ],
  [
    'Anthropic events with their event: lines',
    anthropicReader,
    typed(anthropicStream({ model: 'claude', prompt: { input_tokens: 12 }, thinking: REASONING_PIECES, text: TEXT_PIECES, stopReason: 'end_turn', outputTokens: [40] }), true),
  ],
  [
    'Anthropic events as bare JSON lines (toReadableStream)',
    anthropicReader,
    typed(anthropicStream({ model: 'claude', prompt: { input_tokens: 12 }, thinking: REASONING_PIECES, text: TEXT_PIECES, stopReason: 'end_turn', outputTokens: [40] }), false),
  ],
  ['Responses events', responsesReader, typed(responsesStream({ model: 'gpt-4.1', reasoning: REASONING_PIECES, text: TEXT_PIECES, end: 'completed', usage: { input_tokens: 5, output_tokens: 30 } }), false)],
  ['Gemini chunks', geminiReader, geminiChunks({ model: 'gemini-2.5-flash', pieces: PIECES, thoughts: ['Let', ' me'] }).map((chunk): Event => [JSON.stringify(chunk), undefined])],
  ['Ollama lines', ollamaReader, ollamaLines({ model: 'llama3', pieces: PIECES, evalCount: 12, promptEvalCount: 3 }).map((line): Event => [JSON.stringify(line), undefined])],
];

function readAll(reader: WireFormatReader, events: readonly Event[]): RecordingSink['seen'] {
  const sink = new RecordingSink();
  for (const [data, eventType] of events) reader.readEvent(data, eventType, sink);
  return sink.seen;
}

describe('FormatByContent', () => {
  it.each(STREAMS)('reads %s as their own reader does, whatever the fallback', (_name, reader, events) => {
    const expected = readAll(reader, events);
    expect(expected.some(([kind]) => kind === 'tokens' || kind === 'stated')).toBe(true);
    for (const fallback of [openAiReader, ollamaReader]) {
      const byContent = new FormatByContent(fallback);
      expect(readAll(byContent, events)).toEqual(expected);
      expect(byContent.shapedEvents).toBe(reader.shapedEvents);
    }
  });

  it('hands events that show no format to the fallback until one does, then keeps the format it showed', () => {
    const byContent = new FormatByContent(openAiReader);
    expect(byContent.shapedEvents).toBeUndefined();
    const error = JSON.stringify({ error: { message: 'slow down', code: 429 } });
    expect(readAll(byContent, [[error, undefined], ['not json', undefined]])).toEqual(readAll(openAiReader, [[error, undefined], ['not json', undefined]]));
    const ollama = ollamaLines({ model: 'llama3', pieces: ['Hi'], evalCount: 1 }).map((line): Event => [JSON.stringify(line), undefined]);
    expect(readAll(byContent, ollama)).toEqual(readAll(ollamaReader, ollama));
    // Decided: a later line in another format's shape is read as Ollama's.
    const chunk: Event = [JSON.stringify(chatChunk('m', [{ delta: { content: 'abc' } }])), undefined];
    expect(readAll(byContent, [chunk])).toEqual(readAll(ollamaReader, [chunk]));
  });

  it('reads a unary body in the format it shows', () => {
    const sink = new RecordingSink();
    new FormatByContent(ollamaReader).readBody({ model: 'gpt', choices: [{ message: { content: 'hello' }, finish_reason: 'stop' }] }, sink);
    expect(sink.of('tokens')).toEqual([['tokens', 5, 0]]);
  });
});

describe('formatOfFirstLine', () => {
  it('tells a relay\'s NDJSON by a whole first line that is an event of a known format, and nothing else', () => {
    const chunk = JSON.stringify(chatChunk('m', [{ delta: { content: 'Hi' } }]));
    expect(formatOfFirstLine(`${chunk}\n${chunk}\n`)).toBe(openAiReader);
    expect(formatOfFirstLine(`${JSON.stringify({ type: 'message_start', message: { model: 'claude' } })}\n`)).toBe(anthropicReader);
    // Text, a JSON document a model writes (streamObject), a line not yet whole.
    expect(formatOfFirstLine('Hello there\n')).toBeUndefined();
    expect(formatOfFirstLine('{"name":"Ada","languages":["en"]}\n')).toBeUndefined();
    expect(formatOfFirstLine(chunk)).toBeUndefined();
  });
});

describe('mayOpenRelayLine', () => {
  it("holds text that begins as an SDK's first event, and lets go of other JSON as soon as it shows it is not one", () => {
    const firstLines = [
      JSON.stringify(chatChunk('gpt-4o', [{ delta: { role: 'assistant', content: '' } }])),
      JSON.stringify({ data: chatChunk('mistral-large', [{ delta: { content: 'Hi' } }]) }),
      JSON.stringify(anthropicStream({ model: 'claude', prompt: { input_tokens: 12 }, thinking: REASONING_PIECES, text: TEXT_PIECES, stopReason: 'end_turn', outputTokens: [40] })[0]?.data),
      JSON.stringify(responsesStream({ model: 'gpt-4.1', reasoning: REASONING_PIECES, text: TEXT_PIECES, end: 'completed', usage: { input_tokens: 5, output_tokens: 30 } })[0]?.data),
      JSON.stringify(geminiChunks({ model: 'gemini-2.5-flash', pieces: PIECES, thoughts: ['Let', ' me'] })[0]),
    ];
    for (const line of firstLines) {
      // Every beginning of it, up to the whole line.
      for (let end = 1; end <= line.length; end += 7) expect([line.slice(0, end), mayOpenRelayLine(line.slice(0, end))]).toEqual([line.slice(0, end), true]);
    }
    for (const generated of ['{"recipe":', '{"id":"42","title":"Bread"', `{"id":"${'x'.repeat(120)}`, '[{"id":"1"}', '{ "id": "chatcmpl-1"', 'Hello']) {
      expect([generated, mayOpenRelayLine(generated)]).toEqual([generated, false]);
    }
  });
});
