import { anthropicReader } from './anthropic';
import { openAiReader } from './openai';
import { responsesReader } from './responses';
import type { WireFormatReader } from './types';

/**
 * The reader for an endpoint label. Adding a wire format means adding its reader file and one line here.
 * Labels a custom `endpoint()` option invents are read as OpenAI chat/completions, the format most servers speak.
 */
const READERS: Readonly<Record<string, WireFormatReader>> = {
  chat_completions: openAiReader,
  completions: openAiReader,
  embeddings: openAiReader,
  responses: responsesReader,
  anthropic_messages: anthropicReader,
};

export function readerFor(endpoint: string): WireFormatReader {
  return READERS[endpoint] ?? openAiReader;
}
