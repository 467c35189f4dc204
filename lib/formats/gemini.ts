import { asRecord, bodyObject, estimateText, failedWithError, isCount, isRecord, parseEventObject } from './json';
import type { ChunkCount, ObservationSink, WireFormatReader } from './types';

/**
 * Google Gemini `…/models/{model}:streamGenerateContent?alt=sse` (SSE, CRLF line ends) and `:generateContent`
 * (one JSON body; `streamGenerateContent` without `alt=sse` sends a JSON array of the same chunks).
 *
 * Every chunk is a `GenerateContentResponse` whose `usageMetadata` is cumulative for the request:
 * `candidatesTokenCount` (answer) plus `thoughtsTokenCount` (thinking, counted apart by Gemini) is the output so
 * far, so each chunk's own count is exact; `promptTokenCount` includes `cachedContentTokenCount`. There is no end
 * marker: the chunk with a `finishReason` ends the stream. An error is `{"error": {"code": 429, "status": …}}`.
 * https://ai.google.dev/api/generate-content
 */
export const geminiReader: WireFormatReader = {
  // Chunks restate the cumulative usage, so no chunk repeats another but for its text: not `shapedEvents`.
  readEvent(data, eventType, sink) {
    const chunk = parseEventObject(data, sink, eventType);
    if (chunk !== undefined) readChunk(chunk, sink, true);
    return;
  },

  readBody(body, sink) {
    if (Array.isArray(body)) {
      for (const chunk of body) {
        if (isRecord(chunk)) readChunk(chunk, sink, false);
        else sink.malformed('unexpected_shape', 'array element is not an object');
      }
      return;
    }
    const response = bodyObject(body, sink);
    if (response !== undefined) readChunk(response, sink, false);
  },
};

function readChunk(chunk: Record<string, unknown>, sink: ObservationSink, live: boolean): void {
  if (failedWithError(chunk, sink)) return;
  sink.responseModel(chunk.modelVersion);
  let tokens = 0;
  let reasoning = 0;
  const candidates = Array.isArray(chunk.candidates) ? chunk.candidates : [];
  for (const candidate of candidates) {
    if (!isRecord(candidate)) continue;
    const counted = countParts(asRecord(candidate.content)?.parts, sink);
    tokens += counted.tokens;
    reasoning += counted.reasoning;
    const reason = candidate.finishReason;
    if (typeof reason === 'string' && reason.length > 0) {
      sink.finishReason(reason === 'STOP' && counted.calledTool ? 'tool_calls' : finishReason(reason));
      sink.completed();
    }
  }
  // A prompt blocked before generation has no candidates, only the reason.
  const blocked = asRecord(chunk.promptFeedback)?.blockReason;
  if (candidates.length === 0 && typeof blocked === 'string' && blocked.length > 0) {
    sink.finishReason('content_filter');
    sink.completed();
  }
  readUsage(asRecord(chunk.usageMetadata), { tokens, reasoning }, live && candidates.length > 0, sink);
}

function countParts(parts: unknown, sink: ObservationSink): ChunkCount & { calledTool: boolean } {
  let tokens = 0;
  let reasoning = 0;
  let calledTool = false;
  if (!Array.isArray(parts)) return { tokens, reasoning, calledTool };
  for (const part of parts) {
    if (!isRecord(part)) continue;
    const text = estimateText(part.text, sink);
    tokens += text;
    if (part.thought === true) reasoning += text;
    const call = asRecord(part.functionCall);
    if (call !== undefined) {
      calledTool = true;
      tokens += estimateText(call.name, sink);
      if (call.args !== undefined) tokens += estimateText(JSON.stringify(call.args), sink);
    }
  }
  return { tokens, reasoning, calledTool };
}

/** Output so far = answer + thinking; a malformed count is passed on as it is, for the request state to report. */
function readUsage(usage: Record<string, unknown> | undefined, counted: ChunkCount, live: boolean, sink: ObservationSink): void {
  const answer = usage?.candidatesTokenCount;
  const thoughts = usage?.thoughtsTokenCount;
  if (usage === undefined || (answer === undefined && thoughts === undefined)) {
    // Some chunks state only the prompt; the text is estimated and corrected by the next stated total.
    sink.generatedTokens(counted.tokens, counted.reasoning);
  } else {
    const total = !isCount(answer ?? 0) ? answer : !isCount(thoughts ?? 0) ? thoughts : ((answer as number | undefined) ?? 0) + ((thoughts as number | undefined) ?? 0);
    sink.statedOutputTokens(total, thoughts, counted, live);
  }
  if (usage !== undefined && usage.promptTokenCount !== undefined) {
    const prompt = usage.promptTokenCount;
    const toolPrompt = usage.toolUsePromptTokenCount;
    // Tool-use prompt tokens (results of built-in tools fed back in) are input too, counted apart by Gemini.
    sink.promptTokens(isCount(prompt) && isCount(toolPrompt) ? prompt + toolPrompt : prompt, usage.cachedContentTokenCount);
  }
}

/** Gemini's FinishReason enum in the label vocabulary; anything else becomes `other` in the label. */
function finishReason(reason: string): string {
  switch (reason) {
    case 'STOP':
      return 'stop';
    case 'MAX_TOKENS':
      return 'length';
    case 'SAFETY':
    case 'RECITATION':
    case 'BLOCKLIST':
    case 'PROHIBITED_CONTENT':
    case 'SPII':
    case 'IMAGE_SAFETY':
    case 'LANGUAGE':
      return 'content_filter';
    case 'MALFORMED_FUNCTION_CALL':
    case 'UNEXPECTED_TOOL_CALL':
      return 'error';
    default:
      return 'other';
  }
}
