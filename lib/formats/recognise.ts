import { endpointFromPath } from '../labels';
import { aiSdkUiReader } from './ai-sdk';
import { aiSdkDataReader } from './ai-sdk-data';
import { FormatByContent } from './by-content';
import { ollamaReader } from './ollama';
import { openAiReader } from './openai';
import { knownReader, readerFor } from '.';
import type { WireFormatReader } from './types';

/** The header the AI SDK sets on every UI message stream, whatever the route. */
export const AI_SDK_UI_HEADER = 'x-vercel-ai-ui-message-stream';
/** The header AI SDK 4 sets on every data stream (`text/plain` lines), whatever the route. */
export const AI_SDK_DATA_HEADER = 'x-vercel-ai-data-stream';

/**
 * The AI SDK stream a response head declares by its header, on whatever route the app chose: a UI message stream
 * (SSE) or an AI SDK 4 data stream (text lines); undefined for anything else.
 */
export function aiSdkStreamLabel(statusCode: number, header: (name: string) => string | undefined): 'ai_sdk_ui' | 'ai_sdk_data' | undefined {
  const contentType = (header('content-type') ?? '').toLowerCase();
  if (header(AI_SDK_UI_HEADER) !== undefined && contentType.startsWith('text/event-stream')) return 'ai_sdk_ui';
  if (header(AI_SDK_DATA_HEADER) !== undefined && isDataStreamHead(statusCode, contentType)) return 'ai_sdk_data';
  return undefined;
}

/**
 * A head that carries an AI SDK 4 data stream under its header: a 2xx with a body, in text/plain (or untyped). An
 * error page an error handler sent after the route had set the header (HTML, JSON, a redirect) is not one.
 */
function isDataStreamHead(statusCode: number, contentType: string): boolean {
  return statusCode >= 200 && statusCode < 300 && statusCode !== 204 && (contentType === '' || contentType.startsWith('text/plain'));
}

/** How a body is read: SSE events, NDJSON lines, one JSON value at its end, plain generated text, or not at all. */
export type BodyMode = 'events' | 'lines' | 'json' | 'text' | 'ignore';

/** What the request told us before its response started. */
export interface RequestFormat {
  /** The endpoint label: from the path, or from the `endpoint` option. */
  endpoint: string;
  /** The `endpoint` option chose the label: it stands whatever the response turns out to be. */
  byOption: boolean;
  /** The request path, for a reader when the option's label names none of ours. */
  url: string | undefined;
}

export interface ResponseFormat {
  endpoint: string;
  reader: WireFormatReader;
  body: BodyMode;
  /** The response is a stream (SSE, NDJSON or streamed text): token timing applies, `request_type` is `stream`. */
  streaming: boolean;
}

/**
 * Recognises a response by what it is, once its head is known. The head is stronger evidence than the path: an AI
 * SDK stream on `/api/chat` is an AI SDK stream, not Ollama's API. Where the framing leaves the format open (NDJSON,
 * SSE on Ollama's routes), the events tell it. The endpoint label follows the head only when the path chose it; a
 * label from the `endpoint` option stands.
 */
export function responseFormat(request: RequestFormat, statusCode: number, contentType: string, header: (name: string) => string | undefined): ResponseFormat {
  const isEventStream = contentType.startsWith('text/event-stream');
  const isNdjson = contentType.startsWith('application/x-ndjson') || contentType.startsWith('application/ndjson');
  const aiSdk = aiSdkStreamLabel(statusCode, header);
  // AI SDK 4's data stream: one `<type>:<JSON>` part per line.
  if (aiSdk === 'ai_sdk_data') {
    return { endpoint: request.byOption ? request.endpoint : aiSdk, reader: aiSdkDataReader, body: 'lines', streaming: true };
  }
  let endpoint = request.endpoint;
  let reader: WireFormatReader;
  if (aiSdk === 'ai_sdk_ui') {
    if (!request.byOption) endpoint = aiSdk;
    reader = aiSdkUiReader;
  } else {
    reader = knownReader(endpoint) ?? readerFor(request.byOption ? (endpointFromPath(request.url) ?? endpoint) : endpoint);
    // NDJSON is Ollama's framing, and the OpenAI and Anthropic SDKs' `toReadableStream()`; SSE on Ollama's routes
    // is never Ollama's: the events tell which format they are in.
    if (isNdjson) reader = new FormatByContent(knownReader(endpoint) ?? ollamaReader);
    else if (isEventStream && reader === ollamaReader) reader = new FormatByContent(openAiReader);
  }
  const ok = statusCode >= 200 && statusCode < 300;
  // The AI SDK's text protocol (`pipeTextStreamToResponse`) is bare text/plain: read as such only where an LLM
  // response is expected, on the routes AI SDK apps use for it or under the label that names it.
  if (!isEventStream && !isNdjson && ok && contentType.startsWith('text/plain') && (endpoint === 'ai_sdk_text' || (!request.byOption && isOllamaLabel(endpoint)))) {
    return { endpoint: 'ai_sdk_text', reader, body: 'text', streaming: true };
  }
  let body: BodyMode = 'ignore';
  if (isEventStream) body = 'events';
  else if (isNdjson) body = 'lines';
  else if (statusCode !== 204 && statusCode !== 304 && (contentType.includes('json') || contentType === '')) body = 'json';
  return { endpoint, reader, body, streaming: isEventStream || isNdjson };
}

function isOllamaLabel(endpoint: string): boolean {
  return endpoint === 'ollama_chat' || endpoint === 'ollama_generate';
}
