import type { ErrorType } from '../labels';

/**
 * What a wire-format reader reports about one response. Readers are stateless: everything a request has seen so
 * far lives behind this interface (in the request state), so a reader is a pure function of (event, sink).
 */
export interface ObservationSink {
  /** The `model` field of the response (used when the request body did not name one). */
  responseModel(model: unknown): void;
  /** Tokens generated in this chunk, counted or estimated by the reader; `reasoning` is the part of them that is reasoning. */
  generatedTokens(tokens: number, reasoning: number): void;
  /**
   * The stream states the request's cumulative output tokens (usage on a chunk, final usage, Anthropic's
   * `message_delta`), and its cumulative reasoning tokens when it reports them. `chunk` is what the reader counted
   * in this chunk's own text (its reasoning part is used when no reasoning total is stated). `live` is true when
   * the event is a generation chunk (continuous usage), so the increase is that chunk's tokens and is timed; false
   * for a usage-only or terminal event, where the increase corrects earlier estimates (so is a generation chunk
   * with no text that states usage for the first time, such as a finish chunk carrying it). `choice`: the count
   * is that choice's own (vLLM and SGLang state each choice's running count on its chunks when `n > 1`); the
   * request's is the sum over its choices.
   */
  statedOutputTokens(total: unknown, reasoningTotal: unknown, chunk: ChunkCount, live: boolean, choice?: number): void;
  /** Prompt token count (input including cache reads), and cached prompt tokens when reported. */
  promptTokens(input: unknown, cached: unknown): void;
  finishReason(reason: unknown): void;
  /** The format's end marker was seen (`[DONE]`, a finish reason, `response.completed`, `message_stop`). */
  completed(): void;
  /** The response reported an error in its body or stream. */
  failed(errorType: ErrorType): void;
  /** Something in the response could not be read; the reason becomes the `reason` label of `parse_errors_total`. */
  malformed(reason: string, detail?: string): void;
  /** Token estimate for a piece of generated text (the configured `countTokens`, or the default estimator). */
  estimate(text: string): number;
  /**
   * A text field of this chunk was an empty string. Engines send a token that ends inside a UTF-8 character as
   * `""`; the sink decides, when the chunk's count arrives, whether it was one.
   */
  emptyText?(): void;
  /**
   * This chunk's count is exact and not its text's (one logprobs entry per token): the text it also estimates
   * only splits that count into reasoning and the rest.
   */
  countedExactly?(): void;
}

/** Tokens a reader counted in one chunk's text, and the reasoning part of them. */
export interface ChunkCount {
  tokens: number;
  reasoning: number;
}

/** Reads one wire format. */
export interface WireFormatReader {
  /** One SSE event's data (or NDJSON line), with its `event:` type if any. */
  readEvent(data: string, eventType: string | undefined, sink: ObservationSink): void;
  /**
   * Its token events can repeat byte for byte but for their text (no per-event counter, timestamp or usage), so
   * the chunk shape may learn them (see chunk-shape.ts).
   */
  readonly shapedEvents?: true | undefined;
  /**
   * Its streams need not name the model before their text (the AI SDK's name it in message metadata, if at all):
   * tokens are not held back waiting for a name.
   */
  readonly modelNotInStream?: true;
  /**
   * An event too large to read, known only by its `event:` type: a terminal event still ends the stream as
   * completed (its usage is lost, so the live count stands) rather than making the request look cut.
   */
  readOversizedEvent?(eventType: string | undefined, sink: ObservationSink): void;
  /** A whole unary (non-stream) JSON body, already parsed. */
  readBody(body: unknown, sink: ObservationSink): void;
}
