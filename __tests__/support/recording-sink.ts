import type { ErrorType } from '../../lib/labels';
import type { ChunkCount, ObservationSink } from '../../lib/formats/types';
import { codePoints } from './streams';

export type Observation =
  | ['model', unknown]
  | ['tokens', number, number]
  | ['stated', unknown, unknown, ChunkCount, boolean]
  | ['prompt', unknown, unknown]
  | ['finish', unknown]
  | ['completed']
  | ['failed', ErrorType]
  | ['malformed', string];

/** Records what the reader reports; estimates one token per code point so counts are exact. */
export class RecordingSink implements ObservationSink {
  readonly seen: Observation[] = [];
  readonly estimated: string[] = [];
  /** The choice each stated count was for (undefined: the request's). */
  readonly statedFor: (number | undefined)[] = [];
  responseModel(model: unknown): void {
    this.seen.push(['model', model]);
  }
  generatedTokens(tokens: number, reasoning: number): void {
    this.seen.push(['tokens', tokens, reasoning]);
  }
  statedOutputTokens(total: unknown, reasoningTotal: unknown, chunk: ChunkCount, live: boolean, choice?: number): void {
    this.seen.push(['stated', total, reasoningTotal, chunk, live]);
    this.statedFor.push(choice);
  }
  promptTokens(input: unknown, cached: unknown): void {
    this.seen.push(['prompt', input, cached]);
  }
  finishReason(reason: unknown): void {
    this.seen.push(['finish', reason]);
  }
  completed(): void {
    this.seen.push(['completed']);
  }
  failed(errorType: ErrorType): void {
    this.seen.push(['failed', errorType]);
  }
  malformed(reason: string): void {
    this.seen.push(['malformed', reason]);
  }
  estimate(text: string): number {
    this.estimated.push(text);
    return codePoints(text);
  }
  of<K extends Observation[0]>(kind: K): Extract<Observation, [K, ...unknown[]]>[] {
    return this.seen.filter((o) => o[0] === kind) as Extract<Observation, [K, ...unknown[]]>[];
  }
  /** Sum of the generated tokens reported, and of their reasoning part. */
  tokens(): { tokens: number; reasoning: number } {
    let tokens = 0;
    let reasoning = 0;
    for (const [, n, r] of this.of('tokens')) {
      tokens += n;
      reasoning += r;
    }
    return { tokens, reasoning };
  }
}
