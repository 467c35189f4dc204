import type { IncomingMessage } from 'node:http';
import { pathOf } from '../labels';
import type { RequestType } from '../metrics';

/** What the request itself says, when a body parser ran before us or by the time the response starts. */
export interface RequestHints {
  model: unknown;
  stream: unknown;
}

/** What the request body says, when a body parser has run (before us, or by the time the response starts). */
export function requestHints(req: IncomingMessage): RequestHints | undefined {
  const body = (req as IncomingMessage & { body?: unknown }).body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined;
  const fields = body as Record<string, unknown>;
  return { model: fields.model, stream: fields.stream };
}

/**
 * request_type from an explicit `stream` flag in the request body, which predicts the response; without one the
 * response head decides (a server may stream by default), and `requests_started_total` waits for it.
 */
export function requestTypeOf(hints: RequestHints): RequestType | undefined {
  return hints.stream === true ? 'stream' : hints.stream === false ? 'unary' : undefined;
}

/**
 * What a request names, for its labels: the `model` option's answer when it gives one, else the body's `model`,
 * else the model in the path (Gemini's `…/models/gemini-2.5-flash:streamGenerateContent`, Claude on Vertex AI's
 * `…/models/claude-…:streamRawPredict`). Throws only what the `model` option throws; the caller reports it.
 */
export function requestModelHints(req: IncomingMessage, endpoint: string, modelOption: ((req: IncomingMessage) => unknown) | undefined): RequestHints | undefined {
  const hints = requestHints(req);
  if (modelOption !== undefined) {
    const chosen = modelOption(req);
    if (typeof chosen === 'string' && chosen.length > 0) return { model: chosen, stream: hints?.stream };
  }
  if ((endpoint === 'gemini_generate_content' || endpoint === 'anthropic_messages') && typeof hints?.model !== 'string') {
    const model = modelFromPath((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url);
    if (model !== undefined) return { model, stream: hints?.stream };
  }
  return hints;
}

/** `…/models/{model}:method` (Gemini API and Vertex AI), with `{model}` percent-decoded; else undefined. */
export function modelFromPath(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const path = pathOf(url);
  const colon = path.lastIndexOf(':');
  const start = path.lastIndexOf('/models/', colon);
  if (colon === -1 || start === -1) return undefined;
  const name = path.slice(start + '/models/'.length, colon);
  if (name.length === 0 || name.includes('/')) return undefined;
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
