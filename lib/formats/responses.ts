import { errorTypeForErrorObject } from '../labels';
import { asRecord, bodyObject, estimateText, isRecord, parseEventObject } from './json';
import type { ObservationSink, WireFormatReader } from './types';

/**
 * OpenAI Responses API (`…/responses`): typed events (`response.output_text.delta`, …) ending in one of
 * `response.completed`, `response.incomplete` or `response.failed`, whose `response.usage` is authoritative.
 */
export const responsesReader: WireFormatReader = {
  // Responses events carry a changing sequence_number, so none repeats another but for its text: not `shapedEvents`.
  readEvent(data, eventType, sink) {
    const event = parseEventObject(data, sink, eventType);
    if (event === undefined) return;
    const type = typeof event.type === 'string' ? event.type : eventType;
    switch (type) {
      case 'response.output_text.delta': {
        // One logprobs entry per token, when the client asked for them: exact.
        const tokens = Array.isArray(event.logprobs) && event.logprobs.length > 0 ? event.logprobs.length : estimateText(event.delta, sink);
        sink.generatedTokens(tokens, 0);
        return;
      }
      case 'response.reasoning_text.delta':
      case 'response.reasoning_summary_text.delta': {
        const tokens = estimateText(event.delta, sink);
        sink.generatedTokens(tokens, tokens);
        return;
      }
      case 'response.function_call_arguments.delta':
      case 'response.refusal.delta':
      case 'response.custom_tool_call_input.delta':
        sink.generatedTokens(estimateText(event.delta, sink), 0);
        return;
      case 'response.created':
      case 'response.in_progress':
        sink.responseModel(asRecord(event.response)?.model);
        return;
      case 'response.completed':
      case 'response.incomplete':
      case 'response.failed':
        readFinalResponse(asRecord(event.response), sink, false);
        return;
      case 'error':
        sink.failed(errorTypeForErrorObject(isRecord(event.error) ? event.error : event));
        return;
      default:
        // `.done` events repeat text already counted from its deltas; other events carry no tokens.
        return;
    }
  },

  // response.completed repeats the whole output, so a long answer can exceed maxEventBytes.
  readOversizedEvent(eventType, sink) {
    if (eventType === 'response.completed' || eventType === 'response.incomplete') {
      sink.finishReason(eventType === 'response.completed' ? 'stop' : 'length');
      sink.completed();
    } else if (eventType === 'response.failed') {
      sink.failed('internal');
      sink.completed();
    }
  },

  readBody(body, sink) {
    const response = bodyObject(body, sink);
    if (response === undefined) return;
    if (response.object !== 'response' && isRecord(response.error)) {
      sink.failed(errorTypeForErrorObject(response.error));
      return;
    }
    readFinalResponse(response, sink, true);
  },
};

/** A terminal response object (stream end or unary body): model, status, usage; for a body, its text too. */
function readFinalResponse(response: Record<string, unknown> | undefined, sink: ObservationSink, isBody: boolean): void {
  if (response === undefined) {
    sink.malformed('unexpected_shape', 'terminal event without a response object');
    return;
  }
  sink.responseModel(response.model);
  const output = Array.isArray(response.output) ? response.output : [];
  const estimated = isBody ? estimateOutput(output, sink) : { tokens: 0, reasoning: 0 };

  const status = response.status;
  if (status === 'failed' || isRecord(response.error)) {
    sink.failed(errorTypeForErrorObject(response.error));
  } else if (status === 'incomplete') {
    sink.finishReason(asRecord(response.incomplete_details)?.reason ?? 'length');
  } else {
    const calledTool = output.some((item) => isRecord(item) && item.type === 'function_call');
    sink.finishReason(calledTool ? 'tool_calls' : 'stop');
  }
  sink.completed();

  const usage = asRecord(response.usage);
  if (usage === undefined || usage.output_tokens === undefined) {
    sink.generatedTokens(estimated.tokens, estimated.reasoning);
  } else {
    sink.statedOutputTokens(usage.output_tokens, asRecord(usage.output_tokens_details)?.reasoning_tokens, { tokens: 0, reasoning: 0 }, false);
  }
  if (usage !== undefined && usage.input_tokens !== undefined) {
    sink.promptTokens(usage.input_tokens, asRecord(usage.input_tokens_details)?.cached_tokens);
  }
}

/** Generated text of a unary response's output items: messages, reasoning, function-call arguments. */
function estimateOutput(output: unknown[], sink: ObservationSink): { tokens: number; reasoning: number } {
  let tokens = 0;
  let reasoning = 0;
  for (const item of output) {
    if (!isRecord(item)) continue;
    if (item.type === 'function_call') tokens += estimateText(item.arguments, sink);
    const parts = [...(Array.isArray(item.content) ? item.content : []), ...(Array.isArray(item.summary) ? item.summary : [])];
    for (const part of parts) {
      if (!isRecord(part)) continue;
      const count = estimateText(part.text, sink) + estimateText(part.refusal, sink);
      tokens += count;
      if (item.type === 'reasoning') reasoning += count;
    }
  }
  return { tokens, reasoning };
}
