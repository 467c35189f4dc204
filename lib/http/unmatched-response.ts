import { performance } from 'node:perf_hooks';
import type { ResponseListener } from './hook';
import { aiSdkStreamLabel } from '../formats/recognise';
import type { ResponseOutcome } from './hook';

/**
 * A request whose path names no LLM format, watched until its response head: an AI SDK stream (a UI message
 * stream, or AI SDK 4's data stream) says what it is by its header, on whatever route the app chose. Only then
 * does it become an LLM request (counted from its arrival); any other response is left alone, its later writes
 * passing through at the cost of one check.
 */
export class UnmatchedResponse implements ResponseListener {
  private readonly arrivedAt = performance.now();
  private observer: ResponseListener | undefined;

  /**
   * `observe` starts observing the request as `endpoint` and returns the listener for the rest of the response, or
   * undefined when another observer already has it.
   */
  constructor(
    private readonly observe: (endpoint: string, arrivedAt: number) => ResponseListener | undefined,
    private readonly internalError: (error: unknown) => void,
  ) {}

  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    const endpoint = aiSdkStreamLabel(statusCode, header);
    if (endpoint === undefined) return;
    this.observer = this.observe(endpoint, this.arrivedAt);
    this.observer?.onHead(statusCode, header);
  }

  onBody(chunk: unknown, encoding: unknown): void {
    this.observer?.onBody(chunk, encoding);
  }

  onBodyEnd(): void {
    this.observer?.onBodyEnd();
  }

  onDone(outcome: ResponseOutcome, statusCode: number): void {
    this.observer?.onDone(outcome, statusCode);
  }

  onListenerError(error: unknown): void {
    if (this.observer !== undefined) this.observer.onListenerError(error);
    else this.internalError(error);
  }
}
