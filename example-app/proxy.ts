import { ServerResponse } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { RequestHandler } from 'http-proxy-middleware';
import { RequestError, sendError } from './openai-error';

export interface UpstreamOptions {
  /** Root of the upstream server, without `/v1` (e.g. `http://127.0.0.1:8000`, or Ollama's `http://127.0.0.1:11434`). */
  url: string;
  /** Idle time after which the upstream is given up on: 504 before its headers arrive, a broken stream after. */
  timeoutMs: number;
  /** Sent as `Authorization: Bearer …` when set, so clients of the example need no key of their own. */
  apiKey?: string | undefined;
}

const rawBodies = new WeakMap<IncomingMessage, Buffer>();

/**
 * `verify` hook for `express.json()`: keeps the bytes the client sent, so the proxy forwards them unchanged instead
 * of re-serialising `req.body` (which would reorder nothing but could still change numbers, whitespace and escapes).
 */
export function rememberRawBody(req: IncomingMessage, _res: ServerResponse, body: Buffer): void {
  rawBodies.set(req, body);
}

class UpstreamTimeoutError extends Error {
  readonly code = 'UPSTREAM_TIMEOUT';
}

function replayBody(proxyReq: ClientRequest, req: IncomingMessage): void {
  const body = rawBodies.get(req);
  if (body === undefined) return;
  // The body parser already consumed (and, if it was compressed, inflated) the stream: send the bytes it saw.
  proxyReq.removeHeader('Transfer-Encoding');
  proxyReq.removeHeader('Content-Encoding');
  proxyReq.setHeader('Content-Length', body.length);
  proxyReq.write(body);
}

function onProxyReq(options: UpstreamOptions) {
  return (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse): void => {
    if (options.apiKey) proxyReq.setHeader('Authorization', `Bearer ${options.apiKey}`);
    replayBody(proxyReq, req);
    proxyReq.setTimeout(options.timeoutMs, () => {
      proxyReq.destroy(new UpstreamTimeoutError(`upstream sent nothing for ${options.timeoutMs} ms`));
    });
    // http-proxy only cancels the upstream on the request's 'aborted', which never fires once a body parser has
    // read the body: without this, a client that leaves would keep the model generating for nobody.
    res.once('close', () => {
      if (!res.writableFinished) proxyReq.destroy();
    });
  };
}

function onProxyRes(proxyRes: IncomingMessage, _req: IncomingMessage, res: ServerResponse): void {
  // proxyRes is piped into res, and pipe() does not end its destination when the source breaks: an upstream
  // that dies mid-stream would leave the client waiting forever. Destroying res tells the client the stream broke
  // (a clean end would look like a complete, if short, answer).
  const broken = (): void => {
    if (!res.destroyed) res.destroy();
  };
  proxyRes.once('error', broken);
  proxyRes.once('close', () => {
    if (!proxyRes.complete) broken();
  });
}

function onError(error: Error, _req: IncomingMessage, res: ServerResponse | NodeJS.WritableStream): void {
  if (!(res instanceof ServerResponse)) return;
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof UpstreamTimeoutError) {
    sendError(res, new RequestError(504, error.message, null, 'upstream_timeout', 'server_error'));
    return;
  }
  const code = (error as NodeJS.ErrnoException).code ?? 'upstream_error';
  sendError(res, new RequestError(502, `upstream unreachable: ${error.message}`, null, code, 'server_error'));
}

/**
 * Forwards `/v1/*`, `/v1beta/*` (Gemini) and `/api/chat`, `/api/generate` (Ollama) to the upstream, streaming each
 * upstream chunk through as it arrives.
 */
export function upstreamProxy(options: UpstreamOptions): RequestHandler {
  if (!/^https?:\/\//.test(options.url)) {
    throw new TypeError(`UPSTREAM_URL must start with http:// or https:// (got ${options.url})`);
  }
  if (!(options.timeoutMs > 0)) throw new TypeError(`upstream timeout must be > 0 ms (got ${options.timeoutMs})`);
  return createProxyMiddleware<IncomingMessage, ServerResponse>({
    target: options.url,
    // OpenAI and Anthropic under /v1, Gemini under /v1beta (and /v1), Ollama's native API under /api.
    pathFilter: ['/v1', '/v1beta', '/api/chat', '/api/generate'],
    changeOrigin: true,
    on: { proxyReq: onProxyReq(options), proxyRes: onProxyRes, error: onError },
  });
}
