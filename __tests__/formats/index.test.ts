/**
 * Which reader reads an endpoint label: each of ours its own wire format, anything a custom `endpoint` option
 * invents as OpenAI chat/completions, and no label can reach something that is not a reader.
 */
import { knownReader, readerFor } from '../../lib/formats';
import { aiSdkUiReader } from '../../lib/formats/ai-sdk';
import { aiSdkDataReader } from '../../lib/formats/ai-sdk-data';
import { anthropicReader } from '../../lib/formats/anthropic';
import { geminiReader } from '../../lib/formats/gemini';
import { ollamaReader } from '../../lib/formats/ollama';
import { openAiReader } from '../../lib/formats/openai';
import { responsesReader } from '../../lib/formats/responses';
import { RecordingSink } from '../support/recording-sink';

describe('knownReader and readerFor', () => {
  it.each([
    ['chat_completions', openAiReader],
    ['completions', openAiReader],
    ['embeddings', openAiReader],
    ['responses', responsesReader],
    ['anthropic_messages', anthropicReader],
    ['gemini_generate_content', geminiReader],
    ['ollama_chat', ollamaReader],
    ['ollama_generate', ollamaReader],
    ['ai_sdk_ui', aiSdkUiReader],
    ['ai_sdk_text', aiSdkUiReader],
    ['ai_sdk_data', aiSdkDataReader],
  ])('reads %s with its own format', (label, reader) => {
    expect(knownReader(label)).toBe(reader);
    expect(readerFor(label)).toBe(reader);
  });

  it('reads a label of its own invention as OpenAI chat/completions', () => {
    expect(knownReader('my_llm')).toBeUndefined();
    const sink = new RecordingSink();
    readerFor('my_llm').readEvent('{"model":"m","choices":[{"delta":{"content":"abc"}}]}', undefined, sink);
    expect(sink.seen).toEqual([
      ['model', 'm'],
      ['tokens', 3, 0],
    ]);
  });

  it('never hands out an inherited property as a reader', () => {
    for (const label of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expect(knownReader(label)).toBeUndefined();
      expect(readerFor(label)).toBe(openAiReader);
    }
  });
});
