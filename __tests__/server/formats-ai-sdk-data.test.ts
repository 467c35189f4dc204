/**
 * The real AI SDK 4 (`ai@4`, installed as `ai-v4`) writing its data stream into Express:
 * `streamText(...).pipeDataStreamToResponse(res)` on a `MockLanguageModelV1`, read back from the registry.
 */
import { streamText } from 'ai-v4';
import { MockLanguageModelV1 } from 'ai-v4/test';
import type { LanguageModelV1StreamPart } from 'ai-v4';
import { closedAfterEach, eventually, openStream, postJson, signal } from '../support/http';
import { meteredApp } from '../support/metered-app';
import { modelStream } from '../support/model-stream';
import type { StreamGate } from '../support/model-stream';
import type { MeteredApp, MeteredOptions, Route } from '../support/metered-app';
import { codePoints } from '../support/streams';

closedAfterEach();

const TEXT = ['Hello', ', wörld', ' 🌍', ' ça', ' va?'];
const REASONING = ['Thïnk', 'ing'];
const ARGS = ['{"city":"Zü', 'rich"}'];
const TEXT_TOKENS = TEXT.reduce((n, t) => n + codePoints(t), 0);
const REASONING_TOKENS = REASONING.reduce((n, t) => n + codePoints(t), 0);
const ARGS_TOKENS = ARGS.reduce((n, t) => n + codePoints(t), 0);

/** What a provider streams into AI SDK 4 (LanguageModelV1 parts): reasoning, text, a streamed tool call, the finish. */
function modelParts(options: { error?: boolean; usage?: { promptTokens: number; completionTokens: number } } = {}): LanguageModelV1StreamPart[] {
  return [
    ...REASONING.map((textDelta): LanguageModelV1StreamPart => ({ type: 'reasoning', textDelta })),
    ...TEXT.map((textDelta): LanguageModelV1StreamPart => ({ type: 'text-delta', textDelta })),
    ...ARGS.map(
      (argsTextDelta): LanguageModelV1StreamPart => ({ type: 'tool-call-delta', toolCallType: 'function', toolCallId: 'call-1', toolName: 'weather', argsTextDelta }),
    ),
    ...(options.error === true ? [{ type: 'error', error: new Error('provider broke') } as LanguageModelV1StreamPart] : []),
    { type: 'finish', finishReason: 'stop', usage: options.usage ?? { promptTokens: Number.NaN, completionTokens: Number.NaN } },
  ];
}

/** A mock model whose stream can be held before part `gate.at` until the test releases it. */
function mockModel(parts: LanguageModelV1StreamPart[], gate?: StreamGate): MockLanguageModelV1 {
  return new MockLanguageModelV1({ doStream: async () => ({ stream: modelStream(parts, gate), rawCall: { rawPrompt: null, rawSettings: {} } }) });
}

function dataRoute(parts: LanguageModelV1StreamPart[] = modelParts(), gate?: StreamGate): Route {
  return (_req, res) => {
    const result = streamText({ model: mockModel(parts, gate), prompt: 'hi', toolCallStreaming: true });
    result.pipeDataStreamToResponse(res, { sendReasoning: true, getErrorMessage: () => 'provider broke' });
  };
}

const serve = (routes: Record<string, Route>, options: MeteredOptions = {}): Promise<MeteredApp> =>
  meteredApp({ ...routes, '/api/form': (_req, res) => void res.json({ ok: true }) }, options);

describe('the AI SDK 4 data stream (real ai@4) on a real server', () => {
  it('is counted on /api/chat as ai_sdk_data, not Ollama: text, reasoning and tool-call deltas live, success', async () => {
    const app = await serve({ '/api/chat': dataRoute() }, { model: () => 'gpt-4o-mini' });
    const response = await postJson(app.port, '/api/chat', { messages: [] });
    expect(response.headers['x-vercel-ai-data-stream']).toBe('v1');
    expect(response.body.toString('utf8')).toMatch(/^d:\{"finishReason":"stop"/m);
    await app.ended();
    const model = { model: 'gpt-4o-mini' };
    const live = TEXT_TOKENS + REASONING_TOKENS + ARGS_TOKENS;
    expect(await app.get('output_tokens_total', model)).toBe(live);
    expect(await app.get('reasoning_tokens_total', model)).toBe(REASONING_TOKENS);
    expect(await app.get('requests_total', { ...model, endpoint: 'ai_sdk_data', request_type: 'stream', status: 'success', error_type: '' })).toBe(1);
    expect(await app.get('requests_finished_total', { ...model, finish_reason: 'stop' })).toBe(1);
    expect(await app.get('time_to_first_token_seconds', model, 'count')).toBe(1);
    expect(await app.get('requests_total', { endpoint: 'ollama_chat' })).toBe(0);
  });

  it("with the provider's usage the counts are exact: the message end's completion and prompt tokens", async () => {
    const app = await serve({ '/api/chat': dataRoute(modelParts({ usage: { promptTokens: 120, completionTokens: 57 } })) });
    await postJson(app.port, '/api/chat', {});
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'unknown_model' })).toBe(57);
    expect(await app.get('input_tokens_total', { model: 'unknown_model' })).toBe(120);
    expect(await app.get('output_sequence_tokens', { model: 'unknown_model' }, 'sum')).toBe(57);
  });

  it('is counted on any route the app chose, from the model in the request body; other POST routes stay uncounted', async () => {
    const app = await serve({ '/assistant/stream': dataRoute() });
    await postJson(app.port, '/assistant/stream', { model: 'from-body' });
    await postJson(app.port, '/api/form', { a: 1 });
    await app.ended();
    expect(await app.get('requests_total')).toBe(1);
    expect(await app.get('requests_total', { model: 'from-body', endpoint: 'ai_sdk_data', status: 'success' })).toBe(1);
    expect(await app.get('output_tokens_total', { model: 'from-body' })).toBe(TEXT_TOKENS + REASONING_TOKENS + ARGS_TOKENS);
    expect(await app.get('inflight_requests', { model: 'from-body' })).toBe(0);
  });

  it('moves live: while the model is held mid-answer, the deltas written so far are counted', async () => {
    const gate = signal();
    const app = await serve({ '/api/chat': dataRoute(modelParts(), { at: REASONING.length + 1, wait: gate.wait }) }, { model: () => 'live-model' });
    const stream = await openStream(app.port, '/api/chat', {});
    await stream.waitFor('0:"Hello"');
    const soFar = REASONING_TOKENS + codePoints('Hello');
    await eventually(async () => (await app.get('output_tokens_total', { model: 'live-model' })) === soFar);
    expect(await app.get('inflight_requests', { model: 'live-model' })).toBe(1);
    gate.release();
    await stream.done;
    await app.ended();
    expect(await app.get('output_tokens_total', { model: 'live-model' })).toBe(TEXT_TOKENS + REASONING_TOKENS + ARGS_TOKENS);
  });

  it('an error part (3:) ends the request as an internal error', async () => {
    const app = await serve({ '/api/chat': dataRoute(modelParts({ error: true })) });
    const response = await postJson(app.port, '/api/chat', {});
    expect(response.body.toString('utf8')).toContain('3:"provider broke"');
    await app.ended();
    expect(await app.get('requests_total', { endpoint: 'ai_sdk_data', status: 'error', error_type: 'internal' })).toBe(1);
  });
});
