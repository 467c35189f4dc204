import type { ChunkCount, ObservationSink } from '../formats/types';
import type { ErrorType } from '../labels';

const NO_SINK: ObservationSink = {
  responseModel: () => undefined,
  generatedTokens: () => undefined,
  statedOutputTokens: () => undefined,
  promptTokens: () => undefined,
  finishReason: () => undefined,
  completed: () => undefined,
  failed: () => undefined,
  malformed: () => undefined,
  estimate: () => 0,
};

/**
 * Passes a reader's reports on to the request state while watching them: the event was plain text when it
 * reported one non-empty text's estimate and those tokens (all reasoning, or none), and nothing else but the
 * response's model name (reported again by every event, and decided by the first).
 */
export class PlainTextProbe implements ObservationSink {
  /** One probe serves every response: an event is read synchronously. */
  static readonly shared = new PlainTextProbe();

  reasoning = false;
  private sink: ObservationSink = NO_SINK;
  private text: string | undefined;
  private estimated = 0;
  private texts = 0;
  private generated = 0;
  private other = false;

  /** Watches one event's reports to `sink`. */
  start(sink: ObservationSink): void {
    this.sink = sink;
    this.text = undefined;
    this.texts = 0;
    this.generated = 0;
    this.other = false;
  }

  /** The text, when the event was plain text (`reasoning` says whether it was reasoning); lets go of the sink. */
  plainText(): string | undefined {
    this.sink = NO_SINK;
    return this.other || this.texts !== 1 || this.generated !== 1 ? undefined : this.text;
  }

  responseModel(model: unknown): void {
    this.sink.responseModel(model);
  }

  estimate(text: string): number {
    const tokens = this.sink.estimate(text);
    this.texts++;
    this.text = text;
    this.estimated = tokens;
    return tokens;
  }

  generatedTokens(tokens: number, reasoning: number): void {
    this.generated++;
    if (tokens !== this.estimated || !(tokens > 0) || (reasoning !== 0 && reasoning !== tokens)) this.other = true;
    this.reasoning = reasoning === tokens;
    this.sink.generatedTokens(tokens, reasoning);
  }

  statedOutputTokens(total: unknown, reasoningTotal: unknown, chunk: ChunkCount, live: boolean, choice?: number): void {
    this.other = true;
    this.sink.statedOutputTokens(total, reasoningTotal, chunk, live, choice);
  }

  promptTokens(input: unknown, cached: unknown): void {
    this.other = true;
    this.sink.promptTokens(input, cached);
  }

  finishReason(reason: unknown): void {
    this.other = true;
    this.sink.finishReason(reason);
  }

  completed(): void {
    this.other = true;
    this.sink.completed();
  }

  failed(errorType: ErrorType): void {
    this.other = true;
    this.sink.failed(errorType);
  }

  malformed(reason: string, detail?: string): void {
    this.other = true;
    this.sink.malformed(reason, detail);
  }

  emptyText(): void {
    this.other = true;
    this.sink.emptyText?.();
  }

  countedExactly(): void {
    this.other = true;
    this.sink.countedExactly?.();
  }
}
