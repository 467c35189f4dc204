import {
  endpointFromPath,
  errorTypeForErrorObject,
  errorTypeForStatus,
  finishReasonLabel,
  MAX_MODEL_NAME_LENGTH,
  normalizeModelName,
  ModelLabels,
  UNKNOWN_MODEL,
} from '../lib/labels';

describe('endpointFromPath', () => {
  it.each([
    ['/v1/chat/completions', 'chat_completions'],
    ['/openai/v1/chat/completions', 'chat_completions'],
    ['/v1/chat/completions/', 'chat_completions'],
    ['/v1/chat/completions?stream=true', 'chat_completions'],
    ['/v1/completions', 'completions'],
    ['/v1/responses', 'responses'],
    ['/v1/messages', 'anthropic_messages'],
    ['/v1/embeddings', 'embeddings'],
    // Express routes match case-insensitively by default, so the label must too.
    ['/V1/Chat/Completions', 'chat_completions'],
    ['/v1/MESSAGES', 'anthropic_messages'],
    // Express routes a path with a fragment (which no browser sends, but a raw client can) as the path without it.
    ['/v1/chat/completions#x', 'chat_completions'],
    ['/api/chat#', 'ollama_chat'],
    ['/v1/messages#a?b', 'anthropic_messages'],
  ])('%s → %s', (path, endpoint) => {
    expect(endpointFromPath(path)).toBe(endpoint);
  });

  it.each(['/', '/health', '/metrics', '/v1/models', '/v1/chat', '/v1/completions/extra', '/completionsx', ''])(
    'is undefined for a non-LLM path %j',
    (path) => {
      expect(endpointFromPath(path)).toBeUndefined();
    },
  );

  it('is undefined without a URL', () => {
    expect(endpointFromPath(undefined)).toBeUndefined();
  });
});

describe('errorTypeForStatus (Dynamo mapping)', () => {
  it.each([
    [400, 'validation'],
    [401, 'validation'],
    [403, 'validation'],
    [404, 'not_found'],
    [413, 'validation'],
    [422, 'validation'],
    [429, 'overload'],
    [499, 'cancelled'],
    [500, 'internal'],
    [501, 'not_implemented'],
    [502, 'internal'],
    [503, 'unavailable'],
    [504, 'internal'],
    [529, 'overload'],
    [302, 'internal'],
  ])('%i → %s', (status, errorType) => {
    expect(errorTypeForStatus(status)).toBe(errorType);
  });
});

describe('errorTypeForErrorObject', () => {
  it.each([
    [{ code: 429, message: 'slow down' }, 'overload'],
    [{ code: '503' }, 'unavailable'],
    [{ status: 404 }, 'not_found'],
    [{ type: 'invalid_request_error' }, 'validation'],
    [{ type: 'overloaded_error' }, 'overload'],
    [{ type: 'server_error', message: 'boom' }, 'internal'],
    [{ code: 'model_not_found' }, 'not_found'],
    ['a string', 'internal'],
    [null, 'internal'],
  ])('%j → %s', (error, errorType) => {
    expect(errorTypeForErrorObject(error)).toBe(errorType);
  });

  it('does not map inherited property names', () => {
    expect(errorTypeForErrorObject({ type: 'constructor' })).toBe('internal');
    expect(errorTypeForErrorObject({ type: '__proto__' })).toBe('internal');
  });
});

describe('finishReasonLabel', () => {
  it.each([
    ['stop', 'stop'],
    ['length', 'length'],
    ['tool_calls', 'tool_calls'],
    ['content_filter', 'content_filter'],
    ['end_turn', 'stop'],
    ['eos', 'stop'],
    ['eos_token', 'stop'],
    ['max_tokens', 'length'],
    ['tool_use', 'tool_calls'],
    ['something-new', 'other'],
    ['toString', 'other'],
  ])('%s → %s', (reason, label) => {
    expect(finishReasonLabel(reason)).toBe(label);
  });
});

describe('ModelLabels', () => {
  it('keeps names as they are, casing included, once admitted', () => {
    const labels = new ModelLabels(undefined, 100);
    expect(labels.admit('Llama-3.1-8B-Instruct')).toBe('Llama-3.1-8B-Instruct');
    expect(labels.admit('llama-3.1-8b-instruct')).toBe('llama-3.1-8b-instruct');
    expect(labels.labelOf('Llama-3.1-8B-Instruct')).toBe('Llama-3.1-8B-Instruct');
  });

  it('gives a name no label of its own until a response for it succeeded', () => {
    const labels = new ModelLabels(undefined, 100);
    expect(labels.labelOf('made-up')).toBeUndefined();
    expect(labels.labelOf('made-up')).toBeUndefined();
    expect(labels.admit('made-up')).toBe('made-up');
    expect(labels.labelOf('made-up')).toBe('made-up');
  });

  it('labels allow-listed names at once and maps others to unknown_model', () => {
    const labels = new ModelLabels(new Set(['a']), 100);
    expect(labels.labelOf('a')).toBe('a');
    expect(labels.labelOf('b')).toBe(UNKNOWN_MODEL);
    expect(labels.admit('b')).toBe(UNKNOWN_MODEL);
  });

  it('caps distinct admitted names at maxModels; names already admitted keep their label', () => {
    const labels = new ModelLabels(undefined, 2);
    expect(labels.labelOf('c')).toBeUndefined();
    expect(labels.admit('a')).toBe('a');
    expect(labels.admit('b')).toBe('b');
    expect(labels.labelOf('c')).toBe(UNKNOWN_MODEL);
    expect(labels.admit('c')).toBe(UNKNOWN_MODEL);
    expect(labels.labelOf('a')).toBe('a');
    expect(labels.admit('b')).toBe('b');
  });

  it.each([undefined, null, 42, '', {}, 'x'.repeat(MAX_MODEL_NAME_LENGTH + 1)])(
    'maps a value that is not a usable name (%p) to unknown_model',
    (name) => {
      expect(new ModelLabels(undefined, 100).labelOf(name)).toBe(UNKNOWN_MODEL);
      expect(new ModelLabels(undefined, 100).admit(name)).toBe(UNKNOWN_MODEL);
    },
  );

  it('normalises lone surrogates so that two names never print as one', () => {
    expect(normalizeModelName('\ud800')).toBe('\ufffd');
    expect(normalizeModelName('\udbff')).toBe('\ufffd');
    expect(normalizeModelName('a\udc00b')).toBe('a\ufffdb');
    expect(normalizeModelName('emoji 😀')).toBe('emoji 😀');
    const labels = new ModelLabels(undefined, 100);
    expect(labels.admit('\ud800')).toBe(labels.admit('\udbff'));
  });
});
