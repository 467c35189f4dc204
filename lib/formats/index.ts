import { aiSdkUiReader } from './ai-sdk';
import { aiSdkDataReader } from './ai-sdk-data';
import { anthropicReader } from './anthropic';
import { geminiReader } from './gemini';
import { ollamaReader } from './ollama';
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
  gemini_generate_content: geminiReader,
  ollama_chat: ollamaReader,
  ollama_generate: ollamaReader,
  ai_sdk_ui: aiSdkUiReader,
  ai_sdk_text: aiSdkUiReader,
  ai_sdk_data: aiSdkDataReader,
};

/** The reader of one of our endpoint labels, else undefined. */
export function knownReader(endpoint: string): WireFormatReader | undefined {
  return Object.prototype.hasOwnProperty.call(READERS, endpoint) ? READERS[endpoint] : undefined;
}

export function readerFor(endpoint: string): WireFormatReader {
  return knownReader(endpoint) ?? openAiReader;
}
