import { asRecord, estimateText, parseStreamChunk } from './json';
import type { ObservationSink, WireFormatReader } from './types';

const NO_TEXT = { tokens: 0, reasoning: 0 };

/**
 * The Vercel AI SDK's UI message stream (`pipeUIMessageStreamToResponse`, `toUIMessageStreamResponse`): SSE with
 * header `x-vercel-ai-ui-message-stream: v1`, one JSON chunk per event (`text-delta`, `reasoning-delta`,
 * `tool-input-delta`, …, `finish`), then `[DONE]`. It names no model and states no usage unless the app sends
 * `messageMetadata`; the usual pattern puts the step's `totalUsage` (the SDK's `LanguageModelUsage`) there on
 * `finish`, and then that count is exact.
 * https://ai-sdk.dev/docs/ai-sdk-ui/stream-protocol
 */
export const aiSdkUiReader: WireFormatReader = {
  shapedEvents: true,
  modelNotInStream: true,
  readEvent(data, eventType, sink) {
    const chunk = parseStreamChunk(data, sink, eventType);
    if (chunk === undefined) return;
    switch (chunk.type) {
      case 'text-delta':
      case 'reasoning-delta': {
        const reasoning = chunk.type === 'reasoning-delta';
        const tokens = estimateText(chunk.delta, sink);
        sink.generatedTokens(tokens, reasoning ? tokens : 0);
        return;
      }
      case 'tool-input-delta':
        sink.generatedTokens(estimateText(chunk.inputTextDelta, sink), 0);
        return;
      case 'start':
      case 'message-metadata':
        readMetadata(chunk.messageMetadata, sink);
        return;
      case 'finish':
        readMetadata(chunk.messageMetadata, sink);
        if (typeof chunk.finishReason === 'string') sink.finishReason(aiSdkFinishReason(chunk.finishReason));
        sink.completed();
        return;
      case 'error':
        // `errorText` is free text (by default "An error occurred."), so it says nothing about the kind.
        sink.failed('internal');
        return;
      case 'abort':
        sink.failed('cancelled');
        return;
      default:
        // text-start/end, tool-input-available (its input was counted from the deltas), sources, files, steps.
        return;
    }
  },

  // The UI message stream has no unary form; a JSON body on such a route is the app's own format.
  readBody(_body, sink) {
    sink.completed();
  },
};

/**
 * The app's `messageMetadata`: a model name when it sends one (`model` or `modelId`), and usage as the SDK's
 * `LanguageModelUsage` under `totalUsage` or `usage` (or the metadata itself).
 */
function readMetadata(value: unknown, sink: ObservationSink): void {
  const metadata = asRecord(value);
  if (metadata === undefined) return;
  sink.responseModel(typeof metadata.model === 'string' ? metadata.model : metadata.modelId);
  const usage = asRecord(metadata.totalUsage) ?? asRecord(metadata.usage) ?? (metadata.outputTokens !== undefined ? metadata : undefined);
  if (usage === undefined) return;
  if (usage.outputTokens !== undefined && usage.outputTokens !== null) {
    // Reasoning is in outputTokenDetails since AI SDK 6; `reasoningTokens` is the older field.
    const reasoning = asRecord(usage.outputTokenDetails)?.reasoningTokens ?? usage.reasoningTokens;
    sink.statedOutputTokens(usage.outputTokens, reasoning, NO_TEXT, false);
  }
  if (usage.inputTokens !== undefined && usage.inputTokens !== null) {
    sink.promptTokens(usage.inputTokens, asRecord(usage.inputTokenDetails)?.cacheReadTokens ?? usage.cachedInputTokens);
  }
}

/** The SDK's finish reasons (every version) are kebab-case versions of the label vocabulary. */
export function aiSdkFinishReason(reason: string): string {
  switch (reason) {
    case 'tool-calls':
      return 'tool_calls';
    case 'content-filter':
      return 'content_filter';
    default:
      return reason;
  }
}
