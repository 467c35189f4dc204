import { aiSdkFinishReason } from './ai-sdk';
import { asRecord, estimateText } from './json';
import type { ObservationSink, WireFormatReader } from './types';

const NO_TEXT = { tokens: 0, reasoning: 0 };

/**
 * The Vercel AI SDK 4 data stream (`pipeDataStreamToResponse`, `toDataStreamResponse`, and the Python and Go
 * servers that speak it to `useChat`): `text/plain` with header `x-vercel-ai-data-stream: v1`, one part per line,
 * `<type>:<JSON>`. `0:` is a text delta (a JSON string), `g:` a reasoning delta, `c:` a streamed tool call's
 * argument delta, `3:` an error, `e:` the end of a step with that step's usage, and `d:` the end of the message
 * with its finish reason and the usage of all its steps (`promptTokens`, `completionTokens`; `null` when the
 * provider stated none). It names no model.
 * https://v4.ai-sdk.dev/docs/ai-sdk-ui/stream-protocol
 */
export const aiSdkDataReader: WireFormatReader = {
  shapedEvents: true,
  modelNotInStream: true,
  readEvent(data, _eventType, sink) {
    const colon = data.indexOf(':');
    if (colon < 1) {
      sink.malformed('unexpected_shape', 'a data stream line without a part type');
      return;
    }
    const type = data.slice(0, colon);
    let value: unknown;
    try {
      value = JSON.parse(data.slice(colon + 1));
    } catch {
      sink.malformed('invalid_json', data.length > 120 ? `${data.slice(0, 120)}…` : data);
      return;
    }
    switch (type) {
      case '0':
      case 'g': {
        if (typeof value !== 'string') return sink.malformed('unexpected_shape', `a ${type}: part that is not a string`);
        // An empty part says nothing (the SDK never sends one; it is not a token cut inside a character).
        if (value.length === 0) return;
        const tokens = sink.estimate(value);
        sink.generatedTokens(tokens, type === 'g' ? tokens : 0);
        return;
      }
      case 'c': {
        const delta = asRecord(value);
        if (delta === undefined) return sink.malformed('unexpected_shape', 'a c: part that is not an object');
        sink.generatedTokens(estimateText(delta.argsTextDelta, sink), 0);
        return;
      }
      case '3':
        // Free text (by default "An error occurred."), so it says nothing about the kind.
        sink.failed('internal');
        return;
      case 'd':
        readFinish(asRecord(value), sink);
        return;
      default:
        // Step starts and ends (a step's usage is part of the message's), tool calls whose arguments came as
        // deltas or are the app's, tool results, data, annotations, sources, files.
        return;
    }
  },

  // The data stream has no unary form; a JSON body on such a route is the app's own format.
  readBody(_body, sink) {
    sink.completed();
  },
};

/** `d:`, the message's end: the usage of all its steps, exact when stated, and its finish reason. */
function readFinish(finish: Record<string, unknown> | undefined, sink: ObservationSink): void {
  // Still the end of the message, whatever its value.
  if (finish === undefined) sink.malformed('unexpected_shape', 'a d: part that is not an object');
  const usage = asRecord(finish?.usage);
  if (usage !== undefined) {
    if (usage.completionTokens !== undefined && usage.completionTokens !== null) {
      sink.statedOutputTokens(usage.completionTokens, undefined, NO_TEXT, false);
    }
    if (usage.promptTokens !== undefined && usage.promptTokens !== null) sink.promptTokens(usage.promptTokens, undefined);
  }
  if (typeof finish?.finishReason === 'string') sink.finishReason(aiSdkFinishReason(finish.finishReason));
  sink.completed();
}
