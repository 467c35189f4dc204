/**
 * A POST on a path that names no LLM format is watched until its response head: only an AI SDK UI message stream
 * (its header and an SSE content type) is claimed, as `ai_sdk_ui`, counted from the request's arrival; everything
 * after the head then goes to the claiming listener, and any other response is left alone.
 */
import { performance } from 'node:perf_hooks';
import type { ResponseListener, ResponseOutcome } from '../../lib/http/hook';
import { UnmatchedResponse } from '../../lib/http/unmatched-response';
import { sleep } from '../support/http';

class RecordingListener implements ResponseListener {
  readonly calls: unknown[][] = [];
  onHead(statusCode: number, header: (name: string) => string | undefined): void {
    this.calls.push(['head', statusCode, header('content-type')]);
  }
  onBody(chunk: unknown, encoding: unknown): void {
    this.calls.push(['body', chunk, encoding]);
  }
  onBodyEnd(): void {
    this.calls.push(['bodyEnd']);
  }
  onDone(outcome: ResponseOutcome, statusCode: number): void {
    this.calls.push(['done', outcome, statusCode]);
  }
  onListenerError(error: unknown): void {
    this.calls.push(['error', error]);
  }
}

interface Watch {
  unmatched: UnmatchedResponse;
  claims: { endpoint: string; arrivedAt: number }[];
  listener: RecordingListener;
  internalErrors: unknown[];
}

function watch(claimable = true): Watch {
  const claims: Watch['claims'] = [];
  const listener = new RecordingListener();
  const internalErrors: unknown[] = [];
  const unmatched = new UnmatchedResponse(
    (endpoint, arrivedAt) => {
      claims.push({ endpoint, arrivedAt });
      return claimable ? listener : undefined;
    },
    (error) => internalErrors.push(error),
  );
  return { unmatched, claims, listener, internalErrors };
}

const headers =
  (values: Record<string, string>) =>
  (name: string): string | undefined =>
    values[name];

function runResponse(unmatched: UnmatchedResponse, head: Record<string, string>): void {
  unmatched.onHead(200, headers(head));
  unmatched.onBody('data: {"type":"text-delta","delta":"hi"}\n\n', 'utf8');
  unmatched.onBodyEnd();
  unmatched.onDone('finished', 200);
}

describe('UnmatchedResponse', () => {
  it('claims an AI SDK UI message stream as ai_sdk_ui and hands it everything from the head on', () => {
    const { unmatched, claims, listener } = watch();
    runResponse(unmatched, { 'content-type': 'Text/Event-Stream; charset=utf-8', 'x-vercel-ai-ui-message-stream': 'v1' });
    expect(claims.map((claim) => claim.endpoint)).toEqual(['ai_sdk_ui']);
    expect(listener.calls).toEqual([
      ['head', 200, 'Text/Event-Stream; charset=utf-8'],
      ['body', 'data: {"type":"text-delta","delta":"hi"}\n\n', 'utf8'],
      ['bodyEnd'],
      ['done', 'finished', 200],
    ]);
  });

  it('counts a claimed request from its arrival, not from its head', async () => {
    const before = performance.now();
    const { unmatched, claims } = watch();
    await sleep(30);
    const headAt = performance.now();
    runResponse(unmatched, { 'content-type': 'text/event-stream', 'x-vercel-ai-ui-message-stream': 'v1' });
    const arrivedAt = claims[0]?.arrivedAt as number;
    expect(arrivedAt).toBeGreaterThanOrEqual(before);
    expect(arrivedAt).toBeLessThan(headAt - 20);
  });

  it.each([
    ['an SSE stream without the AI SDK header', { 'content-type': 'text/event-stream' }],
    ['the AI SDK header on a JSON body', { 'content-type': 'application/json', 'x-vercel-ai-ui-message-stream': 'v1' }],
    ['the AI SDK header without a content type', { 'x-vercel-ai-ui-message-stream': 'v1' }],
    ['an HTML page', { 'content-type': 'text/html' }],
  ])('leaves %s alone', (_name, head) => {
    const { unmatched, claims, listener } = watch();
    runResponse(unmatched, head);
    expect(claims).toEqual([]);
    expect(listener.calls).toEqual([]);
  });

  it('forwards nothing when another observer already has the response', () => {
    const { unmatched, claims, listener } = watch(false);
    runResponse(unmatched, { 'content-type': 'text/event-stream', 'x-vercel-ai-ui-message-stream': 'v1' });
    expect(claims).toHaveLength(1);
    expect(listener.calls).toEqual([]);
  });

  it('reports a listener error itself until a listener has claimed the response, then passes it on', () => {
    const unclaimed = watch();
    const early = new Error('before the head');
    unclaimed.unmatched.onListenerError(early);
    expect(unclaimed.internalErrors).toEqual([early]);

    const claimed = watch();
    claimed.unmatched.onHead(200, headers({ 'content-type': 'text/event-stream', 'x-vercel-ai-ui-message-stream': 'v1' }));
    const late = new Error('after the head');
    claimed.unmatched.onListenerError(late);
    expect(claimed.internalErrors).toEqual([]);
    expect(claimed.listener.calls.at(-1)).toEqual(['error', late]);
  });
});
