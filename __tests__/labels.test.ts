import {
  endpointFromPath,
  errorTypeForErrorObject,
  errorTypeForStatus,
  finishReasonLabel,
  MAX_MODEL_NAME_LENGTH,
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
    ['max_tokens', 'length'],
    ['tool_use', 'tool_calls'],
    ['something-new', 'other'],
    ['toString', 'other'],
  ])('%s → %s', (reason, label) => {
    expect(finishReasonLabel(reason)).toBe(label);
  });
});

describe('ModelLabels', () => {
  it('keeps names as they are, casing included', () => {
    const labels = new ModelLabels(undefined, 100);
    expect(labels.resolve('Llama-3.1-8B-Instruct')).toBe('Llama-3.1-8B-Instruct');
    expect(labels.resolve('llama-3.1-8b-instruct')).toBe('llama-3.1-8b-instruct');
  });

  it('maps names outside the allow-list to unknown_model', () => {
    const labels = new ModelLabels(new Set(['a']), 100);
    expect(labels.resolve('a')).toBe('a');
    expect(labels.resolve('b')).toBe(UNKNOWN_MODEL);
  });

  it('caps distinct names at maxModels; names already seen keep their label', () => {
    const labels = new ModelLabels(undefined, 2);
    expect(labels.resolve('a')).toBe('a');
    expect(labels.resolve('b')).toBe('b');
    expect(labels.resolve('c')).toBe(UNKNOWN_MODEL);
    expect(labels.resolve('a')).toBe('a');
    expect(labels.resolve('b')).toBe('b');
  });

  it.each([undefined, null, 42, '', {}, 'x'.repeat(MAX_MODEL_NAME_LENGTH + 1)])(
    'maps a value that is not a usable name (%p) to unknown_model',
    (name) => {
      expect(new ModelLabels(undefined, 100).resolve(name)).toBe(UNKNOWN_MODEL);
    },
  );
});
