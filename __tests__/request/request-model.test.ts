import type { IncomingMessage } from 'node:http';
import { modelFromPath, requestModelHints } from '../../lib/request/request-model';
import { endpointFromPath } from '../../lib/labels';
import { dynamoMetrics } from '../../lib';

const req = (url: string, body?: unknown, originalUrl?: string): IncomingMessage => ({ url, body, originalUrl, method: 'POST', headers: {} }) as unknown as IncomingMessage;

describe('endpointFromPath: the new formats', () => {
  it('Gemini (API and Vertex AI), Ollama chat and generate', () => {
    expect(endpointFromPath('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse')).toBe('gemini_generate_content');
    expect(endpointFromPath('/v1/projects/p/locations/us/publishers/google/models/gemini-2.0-flash:generateContent')).toBe('gemini_generate_content');
    expect(endpointFromPath('/v1beta/models/gemini-2.5-flash:countTokens')).toBeUndefined();
    expect(endpointFromPath('/ollama/api/chat')).toBe('ollama_chat');
    expect(endpointFromPath('/api/generate/')).toBe('ollama_generate');
    expect(endpointFromPath('/api/chat/history')).toBeUndefined();
  });

  it("Claude on Vertex AI: Anthropic's Messages API under publishers/anthropic; other publishers' raw predictions are not read", () => {
    const vertex = '/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514';
    expect(endpointFromPath(`${vertex}:streamRawPredict`)).toBe('anthropic_messages');
    expect(endpointFromPath(`${vertex}:rawPredict`)).toBe('anthropic_messages');
    expect(endpointFromPath('/v1/projects/p/locations/l/publishers/mistralai/models/mistral-large:rawPredict')).toBeUndefined();
    expect(endpointFromPath(`${vertex}:countTokens`)).toBeUndefined();
    expect(requestModelHints(req(`${vertex}:streamRawPredict`, { anthropic_version: 'vertex-2023-10-16', stream: true }), 'anthropic_messages', undefined)).toEqual({ model: 'claude-sonnet-4@20250514', stream: true });
    expect(requestModelHints(req('/v1/messages', { model: 'claude-x' }), 'anthropic_messages', undefined)).toEqual({ model: 'claude-x', stream: undefined });
  });
});

describe('modelFromPath', () => {
  it('reads the model before the method, percent-decoded; nothing when the path has none', () => {
    expect(modelFromPath('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse')).toBe('gemini-2.5-flash');
    expect(modelFromPath('/v1/projects/p/locations/l/publishers/google/models/gemini-2.0-flash-001:generateContent')).toBe('gemini-2.0-flash-001');
    expect(modelFromPath('/v1beta/models/my%20model:generateContent')).toBe('my model');
    expect(modelFromPath('/v1beta/models/bad%E0:generateContent')).toBe('bad%E0');
    expect(modelFromPath('/v1beta/tunedModels/x:generateContent')).toBeUndefined();
    expect(modelFromPath('/v1beta/models/:generateContent')).toBeUndefined();
    expect(modelFromPath('/v1beta/models/g1:generateContent#frag')).toBe('g1');
    expect(modelFromPath(undefined)).toBeUndefined();
  });
});

describe('requestModelHints', () => {
  it('the model option first, then the body, then (Gemini) the path', () => {
    const option = (r: IncomingMessage): unknown => (r.url === '/opt' ? 'from-option' : undefined);
    expect(requestModelHints(req('/opt', { model: 'body', stream: true }), 'chat_completions', option)).toEqual({ model: 'from-option', stream: true });
    expect(requestModelHints(req('/x', { model: 'body', stream: false }), 'chat_completions', option)).toEqual({ model: 'body', stream: false });
    expect(requestModelHints(req('/v1beta/models/g1:generateContent', {}), 'gemini_generate_content', option)).toEqual({ model: 'g1', stream: undefined });
    expect(requestModelHints(req('/x', undefined, '/v1beta/models/g2:generateContent'), 'gemini_generate_content', undefined)).toEqual({ model: 'g2', stream: undefined });
    expect(requestModelHints(req('/x'), 'ai_sdk_ui', () => '')).toBeUndefined();
  });
});

describe('the model option', () => {
  it('must be a function', () => {
    expect(() => dynamoMetrics({ model: 'gpt-4o' as never })).toThrow(TypeError);
    expect(() => dynamoMetrics({ model: 'gpt-4o' as never })).toThrow('option "model" must be a function');
  });
});
