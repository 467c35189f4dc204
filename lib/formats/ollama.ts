import { asRecord, bodyObject, estimateText, failedWithError, isRecord, parseEventObject } from './json';
import type { ChunkCount, ObservationSink, WireFormatReader } from './types';

/**
 * Ollama's native API (`/api/chat`, `/api/generate`): NDJSON, one object per line and about one token per line
 * (`message.content` / `message.thinking` for chat, `response` / `thinking` for generate), ending with a line that
 * has `done: true`, `done_reason` and the exact `eval_count` (output) and `prompt_eval_count` (input). With
 * `stream: false` the same final object is the whole body. An error after the stream started is a line
 * `{"error": "…"}` (the status is already 200).
 * https://github.com/ollama/ollama/blob/main/docs/api.md
 */
export const ollamaReader: WireFormatReader = {
  // Every line carries a new `created_at`, so no line repeats another but for its text: not `shapedEvents`.
  readEvent(data, eventType, sink) {
    // A relay that writes Ollama's lines as SSE often ends with OpenAI's `[DONE]`: not a line of Ollama's.
    const line = parseEventObject(data, sink, eventType);
    if (line !== undefined) readObject(line, sink, true);
    return;
  },

  readBody(body, sink) {
    const object = bodyObject(body, sink);
    if (object !== undefined) readObject(object, sink, false);
  },
};

function readObject(object: Record<string, unknown>, sink: ObservationSink, live: boolean): void {
  if (failedWithError(object, sink)) return;
  sink.responseModel(object.model);
  const counted = countGenerated(object, sink);
  if (object.done !== true) {
    sink.generatedTokens(counted.tokens, counted.reasoning);
    return;
  }
  sink.finishReason(typeof object.done_reason === 'string' && object.done_reason.length > 0 ? object.done_reason : 'stop');
  sink.completed();
  if (object.eval_count === undefined) {
    sink.generatedTokens(counted.tokens, counted.reasoning);
  } else {
    // eval_count covers thinking too; Ollama does not state the thinking part, so the text estimate stands for it.
    sink.statedOutputTokens(object.eval_count, undefined, counted, live && counted.tokens > 0);
  }
  if (object.prompt_eval_count !== undefined) sink.promptTokens(object.prompt_eval_count, undefined);
}

/** Generated text of one line or body: content, thinking, tool calls. */
function countGenerated(object: Record<string, unknown>, sink: ObservationSink): ChunkCount {
  const message = asRecord(object.message);
  const source = message ?? object;
  const text = message === undefined ? object.response : message.content;
  const reasoning = estimateText(source.thinking, sink);
  let tokens = estimateText(text, sink) + reasoning;
  const toolCalls = message?.tool_calls;
  if (Array.isArray(toolCalls)) {
    for (const call of toolCalls) {
      const fn = isRecord(call) ? asRecord(call.function) : undefined;
      if (fn === undefined) continue;
      tokens += estimateText(fn.name, sink);
      // Ollama sends arguments as an object, not as JSON text.
      if (fn.arguments !== undefined) tokens += estimateText(typeof fn.arguments === 'string' ? fn.arguments : JSON.stringify(fn.arguments), sink);
    }
  }
  return { tokens, reasoning };
}
