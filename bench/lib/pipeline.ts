import type { IncomingMessage } from 'node:http';
import { Registry } from 'prom-client';
import { CHAT_REQUEST, compiledInternals, readerSettings, requestContext, RequestState as RequestStateSource, ResponseReader as ResponseReaderSource } from './internals';

/**
 * The response reader's whole per-event path (decode, SSE, chunk shape, reader, request state, metric cells) over
 * given writes, as the middleware drives it for one response after another; no HTTP, no hook.
 */
export function pipelineReader(model: string, libDir?: string): (writes: readonly (string | Buffer)[], responses: number) => number {
  const lib = libDir === undefined ? undefined : compiledInternals(libDir);
  const context = requestContext(new Registry(), undefined, lib);
  const { RequestState, ResponseReader } = lib ?? { RequestState: RequestStateSource, ResponseReader: ResponseReaderSource };
  const settings = readerSettings(lib);
  const hints = { model, stream: true };
  // A request whose parsed body names the model, as when express.json() runs before the middleware.
  const request = { body: { model, stream: true } } as unknown as IncomingMessage;
  const header = (name: string): string | undefined => (name === 'content-type' ? 'text/event-stream; charset=utf-8' : undefined);
  return (writes, responses) => {
    for (let k = 0; k < responses; k++) {
      const state = new RequestState(context, hints);
      const reader = new ResponseReader(state, CHAT_REQUEST, settings, request);
      reader.onHead(200, header);
      for (let i = 0; i < writes.length; i++) reader.onBody(writes[i], undefined);
      reader.onBodyEnd();
      reader.onDone('finished', 200);
    }
    return responses;
  };
}
