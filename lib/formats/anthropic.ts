import { errorTypeForErrorObject } from '../labels';
import { asRecord, bodyObject, estimateText, isCount, isRecord, parseEventObject } from './json';
import type { ObservationSink, WireFormatReader } from './types';

const NO_TEXT = { tokens: 0, reasoning: 0 };

/**
 * Anthropic Messages (`…/messages`). `message_start` carries the prompt usage (its `output_tokens` is a
 * placeholder, not a count); `message_delta.usage.output_tokens` is cumulative and authoritative; the stream ends
 * at `message_stop`. Text deltas often hold several tokens, so each is estimated as a whole.
 */
export const anthropicReader: WireFormatReader = {
  shapedEvents: true,
  readEvent(data, eventType, sink) {
    const event = parseEventObject(data, sink, eventType);
    if (event === undefined) return;
    const type = typeof event.type === 'string' ? event.type : eventType;
    switch (type) {
      case 'content_block_delta': {
        const delta = asRecord(event.delta);
        if (delta === undefined) return;
        if (delta.type === 'thinking_delta') {
          const tokens = estimateText(delta.thinking, sink);
          sink.generatedTokens(tokens, tokens);
          return;
        }
        // text_delta, input_json_delta (tool input); signature_delta carries no tokens.
        sink.generatedTokens(estimateText(delta.text, sink) + estimateText(delta.partial_json, sink), 0);
        return;
      }
      case 'message_start': {
        const message = asRecord(event.message);
        if (message === undefined) return;
        sink.responseModel(message.model);
        readPromptUsage(asRecord(message.usage), sink, true);
        return;
      }
      case 'message_delta': {
        const stopReason = asRecord(event.delta)?.stop_reason;
        if (stopReason !== undefined && stopReason !== null) sink.finishReason(stopReason);
        const usage = asRecord(event.usage);
        if (usage !== undefined && usage.output_tokens !== undefined) {
          sink.statedOutputTokens(usage.output_tokens, undefined, NO_TEXT, false);
        }
        readPromptUsage(usage, sink);
        return;
      }
      case 'message_stop':
        sink.completed();
        return;
      case 'error':
        sink.failed(errorTypeForErrorObject(event.error));
        return;
      default:
        // ping, content_block_start/stop: no tokens.
        return;
    }
  },

  readBody(body, sink) {
    const message = bodyObject(body, sink);
    if (message === undefined) return;
    if (message.type === 'error') {
      sink.failed(errorTypeForErrorObject(message.error));
      return;
    }
    sink.responseModel(message.model);
    if (message.stop_reason !== undefined && message.stop_reason !== null) sink.finishReason(message.stop_reason);
    sink.completed();
    const usage = asRecord(message.usage);
    if (usage !== undefined && usage.output_tokens !== undefined) {
      sink.statedOutputTokens(usage.output_tokens, undefined, NO_TEXT, false);
    } else {
      let tokens = 0;
      let reasoning = 0;
      for (const block of Array.isArray(message.content) ? message.content : []) {
        if (!isRecord(block)) continue;
        const thinking = estimateText(block.thinking, sink);
        tokens += estimateText(block.text, sink) + thinking;
        reasoning += thinking;
        if (block.type === 'tool_use' && block.input !== undefined) tokens += estimateText(JSON.stringify(block.input), sink);
      }
      sink.generatedTokens(tokens, reasoning);
    }
    readPromptUsage(usage, sink);
  },
};

/** Anthropic's prompt size is split over three fields; cache reads are the cached part. */
function readPromptUsage(usage: Record<string, unknown> | undefined, sink: ObservationSink, atStart = false): void {
  if (usage === undefined || usage.input_tokens === undefined) return;
  const input = usage.input_tokens;
  // Only well-formed cache counts are added: a malformed one must neither mask nor corrupt the input count,
  // which the request state validates (and reports) on its own.
  const total = isCount(input) ? input + countOrZero(usage.cache_creation_input_tokens) + countOrZero(usage.cache_read_input_tokens) : input;
  // Some compatible servers (SGLang, mlx) send 0 in message_start and the real count in message_delta.
  if (atStart && total === 0) return;
  sink.promptTokens(total, usage.cache_read_input_tokens);
}

function countOrZero(value: unknown): number {
  return isCount(value) ? value : 0;
}
