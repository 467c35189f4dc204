import { performance } from 'node:perf_hooks';
import type { ResponseListener } from './hook';
import { aiSdkStreamLabel } from '../formats/recognise';
import { pathOf } from '../labels';
import type { ResponseOutcome } from './hook';

/**
 * The AI SDK's text protocol (`pipeTextStreamToResponse`) on `useCompletion`'s default route: bare text/plain, which
 * only the route tells apart from any other text.
 */
function isCompletionTextStream(url: string | undefined, statusCode: number, header: (name: string) => string | undefined): boolean {
  if (url === undefined || !(statusCode >= 200 && statusCode < 300)) return false;
  const path = pathOf(url).toLowerCase().replace(/\/+$/, '');
  return path.endsWith('/api/completion') && (header('content-type') ?? '').toLowerCase().startsWith('text/plain');
}

/**
 * A request whose path names no LLM format, watched until its response head: an AI SDK stream (a UI message
 * stream, or AI SDK 4's data stream) says what it is by its header, on whatever route the app chose, and its text
 * protocol by `useCompletion`'s route. Only then does it become an LLM request (counted from its arrival); any other
 * response is left alone, its later writes passing through at the cost of one check.
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
    private readonly url?: string,
  ) {}

  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    const endpoint = aiSdkStreamLabel(statusCode, header) ?? (isCompletionTextStream(this.url, statusCode, header) ? 'ai_sdk_text' : undefined);
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
