import type { ServerResponse } from 'node:http';

/** The error body OpenAI's API (and vLLM, SGLang, llama.cpp in OpenAI mode) send, so SDKs raise typed errors. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A client mistake found while reading a request; the route turns it into an OpenAI-style error response. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = 'invalid_request_error',
  ) {
    super(message);
    this.name = 'RequestError';
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function sendError(res: ServerResponse, error: RequestError): void {
  const body = JSON.stringify(error.toBody());
  res.writeHead(error.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
