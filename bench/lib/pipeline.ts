import type { IncomingMessage } from 'node:http';
import { Registry } from 'prom-client';
import { CHAT_REQUEST, RequestState, ResponseReader, readerSettings, requestContext } from './internals';

/**
 * The response reader's whole per-event path (decode, SSE, chunk shape, reader, request state, metric cells) over
 * given writes, as the middleware drives it for one response after another; no HTTP, no hook.
 */
export function pipelineReader(model: string): (writes: readonly (string | Buffer)[], responses: number) => number {
  const context = requestContext(new Registry());
  const hints = { model, stream: true };
  // A request whose parsed body names the model, as when express.json() runs before the middleware.
  const request = { body: { model, stream: true } } as unknown as IncomingMessage;
  const header = (name: string): string | undefined => (name === 'content-type' ? 'text/event-stream; charset=utf-8' : undefined);
  return (writes, responses) => {
    for (let k = 0; k < responses; k++) {
      const state = new RequestState(context, hints);
      const reader = new ResponseReader(state, CHAT_REQUEST, readerSettings(), request);
      reader.onHead(200, header);
      for (let i = 0; i < writes.length; i++) reader.onBody(writes[i], undefined);
      reader.onBodyEnd();
      reader.onDone('finished', 200);
    }
    return responses;
  };
}
