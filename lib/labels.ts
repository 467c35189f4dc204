/** Label values of the contract: endpoint, error_type, finish_reason, and the bounded model label. */

export type Endpoint =
  | 'chat_completions'
  | 'completions'
  | 'responses'
  | 'anthropic_messages'
  | 'embeddings'
  | 'gemini_generate_content'
  | 'ollama_chat'
  | 'ollama_generate'
  | 'ai_sdk_ui'
  | 'ai_sdk_text'
  | 'ai_sdk_data';

export type ErrorType =
  | 'validation'
  | 'not_found'
  | 'overload'
  | 'unavailable'
  | 'cancelled'
  | 'response_timeout'
  | 'internal'
  | 'not_implemented';

export const UNKNOWN_MODEL = 'unknown_model';

/**
 * The path part of a request target: up to its query or fragment (no browser sends a fragment, but a raw client can,
 * and Express routes the path without it).
 */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/**
 * Endpoint label from the request path, by suffix, so `/v1/chat/completions`, `/openai/v1/chat/completions` and a
 * mounted sub-router all count. Anything else is not an LLM request by its path (its response head may still say
 * it is one).
 */
export function endpointFromPath(url: string | undefined): Endpoint | undefined {
  if (!url) return undefined;
  const target = pathOf(url);
  let end = target.length;
  while (end > 1 && target.charCodeAt(end - 1) === 47 /* / */) end--;
  // Express matches routes case-insensitively, so `/v1/Chat/Completions` reaches the same handler.
  const path = target.slice(0, end).toLowerCase();
  if (path.endsWith('/chat/completions')) return 'chat_completions';
  if (path.endsWith('/completions')) return 'completions';
  if (path.endsWith('/responses')) return 'responses';
  if (path.endsWith('/messages')) return 'anthropic_messages';
  if (path.endsWith('/embeddings')) return 'embeddings';
  // Gemini names the model and the method in the last segment: `…/models/gemini-2.5-flash:streamGenerateContent`.
  if (path.endsWith(':streamgeneratecontent') || path.endsWith(':generatecontent')) return 'gemini_generate_content';
  // Claude on Vertex AI: Anthropic's Messages API at `…/publishers/anthropic/models/claude-…:streamRawPredict`.
  if ((path.endsWith(':streamrawpredict') || path.endsWith(':rawpredict')) && path.includes('/publishers/anthropic/models/')) return 'anthropic_messages';
  // Ollama's native API; an AI SDK app's `/api/chat` is told apart by its response head (see recognise.ts).
  if (path.endsWith('/api/chat')) return 'ollama_chat';
  if (path.endsWith('/api/generate')) return 'ollama_generate';
  return undefined;
}

/** Dynamo's HTTP status → error_type mapping. */
export function errorTypeForStatus(status: number): ErrorType {
  switch (status) {
    case 400:
      return 'validation';
    case 404:
      return 'not_found';
    case 429:
    case 529:
      return 'overload';
    case 499:
      return 'cancelled';
    case 501:
      return 'not_implemented';
    case 503:
      return 'unavailable';
    default:
      return status >= 400 && status < 500 ? 'validation' : 'internal';
  }
}

const ERROR_TYPE_BY_NAME: Readonly<Record<string, ErrorType>> = {
  invalid_request_error: 'validation',
  invalid_request: 'validation',
  bad_request: 'validation',
  BadRequestError: 'validation',
  validation: 'validation',
  authentication_error: 'validation',
  permission_error: 'validation',
  not_found_error: 'not_found',
  not_found: 'not_found',
  NotFoundError: 'not_found',
  model_not_found: 'not_found',
  rate_limit_error: 'overload',
  rate_limit_exceeded: 'overload',
  overloaded_error: 'overload',
  overloaded: 'overload',
  server_overloaded: 'overload',
  service_unavailable: 'unavailable',
  unavailable: 'unavailable',
  timeout: 'response_timeout',
  timeout_error: 'response_timeout',
  request_timeout: 'response_timeout',
  cancelled: 'cancelled',
  not_implemented: 'not_implemented',
};

/**
 * error_type of an error object sent inside a stream or body (`{"error": {...}}`, Anthropic's `error` event,
 * Responses' `error`/`response.failed`). A numeric `code`/`status` maps like an HTTP status; a known `type`/`code`
 * name maps by name; anything else is `internal`.
 */
export function errorTypeForErrorObject(error: unknown): ErrorType {
  if (error === null || typeof error !== 'object') return 'internal';
  const fields = error as Record<string, unknown>;
  for (const key of ['code', 'status', 'status_code']) {
    const value = fields[key];
    const status = typeof value === 'string' && /^\d{3}$/.test(value) ? Number(value) : value;
    if (typeof status === 'number' && status >= 400 && status < 600) return errorTypeForStatus(status);
  }
  for (const key of ['type', 'code']) {
    const value = fields[key];
    if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_TYPE_BY_NAME, value)) {
      return ERROR_TYPE_BY_NAME[value] as ErrorType;
    }
  }
  return 'internal';
}

const FINISH_REASONS: Readonly<Record<string, string>> = {
  stop: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  function_call: 'function_call',
  content_filter: 'content_filter',
  error: 'error',
  abort: 'abort',
  cancelled: 'cancelled',
  // Anthropic stop_reason values, mapped onto OpenAI's vocabulary where one exists.
  end_turn: 'stop',
  stop_sequence: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  pause_turn: 'pause_turn',
  refusal: 'refusal',
  // Responses API incomplete_details.reason.
  max_output_tokens: 'length',
  // The end-of-sequence token: Together's `eos`, TGI's `eos_token` before it spoke OpenAI's word.
  eos: 'stop',
  eos_token: 'stop',
};

/** finish_reason label: known values (Anthropic's mapped), anything else `other`, so upstreams cannot mint series. */
export function finishReasonLabel(reason: string): string {
  return Object.prototype.hasOwnProperty.call(FINISH_REASONS, reason) ? (FINISH_REASONS[reason] as string) : 'other';
}

/** Longest model name kept as a label value; longer names are not model names a client should be able to mint. */
export const MAX_MODEL_NAME_LENGTH = 256;

/**
 * A name as it will print: well-formed Unicode (a lone surrogate, legal in a JSON escape, prints as U+FFFD, so
 * `"\ud800"` and `"\udbff"` would be two series inside and one line in the text, where Prometheus keeps one value),
 * non-empty and of bounded length; anything else is no name.
 */
export function normalizeModelName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_MODEL_NAME_LENGTH) return undefined;
  return LONE_SURROGATE.test(name) ? name.replace(LONE_SURROGATES, '\ufffd') : name;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/**
 * Bounds the `model` label as Dynamo does (a name gets its own label only once it is known to be served): a name
 * is admitted when it is in the allow-list, or when a response for it succeeded; until then, and for names outside
 * the allow-list, beyond `maxModels` distinct names, empty, too long or not strings, requests count under
 * `unknown_model`. So a client cannot take label slots with requests that fail.
 */
export class ModelLabels {
  private readonly admitted = new Set<string>();

  constructor(
    private readonly allowList: ReadonlySet<string> | undefined,
    private readonly maxModels: number,
  ) {}

  /**
   * The label of a name if it has one already (admitted, or in the allow-list); `undefined` if it would need a
   * successful response first; `unknown_model` if it can never have one.
   */
  labelOf(name: unknown): string | undefined {
    const normalized = normalizeModelName(name);
    if (normalized === undefined) return UNKNOWN_MODEL;
    if (this.admitted.has(normalized)) return normalized;
    if (this.allowList !== undefined) return this.allowList.has(normalized) ? this.admit(normalized) : UNKNOWN_MODEL;
    return this.admitted.size >= this.maxModels ? UNKNOWN_MODEL : undefined;
  }

  /** The label of a name a response succeeded for: its own, unless the cap is reached or it is not a usable name. */
  admit(name: unknown): string {
    const normalized = normalizeModelName(name);
    if (normalized === undefined) return UNKNOWN_MODEL;
    if (this.admitted.has(normalized)) return normalized;
    if (this.allowList !== undefined && !this.allowList.has(normalized)) return UNKNOWN_MODEL;
    if (this.admitted.size >= this.maxModels) return UNKNOWN_MODEL;
    this.admitted.add(normalized);
    return normalized;
  }
}
