/**
 * The OpenTelemetry recorder on its own: one finished request in, the GenAI semantic-convention instruments out,
 * read back from a real SDK MeterProvider. Which instruments move, with which attributes, when usage counts as
 * stated, how the response model is bounded, and that a broken meter is reported instead of thrown.
 */
import { GEN_AI_BUCKETS, GEN_AI_INSTRUMENTS, GenAiRecorder } from '../../lib/metrics/otel';
import type { GenAiMeter, GenAiRecorderSettings, GenAiRequest } from '../../lib/metrics/otel';
import { OtelHarness } from '../support/otel-reader';

const I = GEN_AI_INSTRUMENTS;

let otel: OtelHarness;
beforeEach(() => {
  otel = new OtelHarness();
});
afterEach(() => otel.shutdown());

function recorder(settings: Partial<GenAiRecorderSettings> = {}, meter: GenAiMeter = otel.meter): { recorder: GenAiRecorder; failures: unknown[] } {
  const failures: unknown[] = [];
  const made = new GenAiRecorder(meter, { estimatedUsage: false, models: undefined, maxModels: 100, failed: (error) => failures.push(error), ...settings });
  return { recorder: made, failures };
}

function request(fields: Partial<GenAiRequest> = {}): GenAiRequest {
  return {
    endpoint: 'chat_completions',
    model: 'gpt-x',
    responseModel: undefined,
    streaming: true,
    errorType: undefined,
    durationSeconds: 2,
    timeToFirstTokenSeconds: 0.5,
    inputTokens: 10,
    cachedInputTokens: 4,
    outputTokens: 31,
    outputTokensStated: true,
    reasoningTokens: 6,
    extraAttributes: undefined,
    ...fields,
  };
}

const sumOf = async (name: string): Promise<number> => (await otel.sum(name)).reduce((total, point) => total + point.value, 0);

describe('GenAiRecorder', () => {
  it('records a successful stream with stated usage to every instrument, once', async () => {
    recorder().recorder.requestEnded(request());
    const [duration] = await otel.histogram(I.requestDuration);
    expect(duration).toMatchObject({ count: 1, sum: 2, boundaries: [...GEN_AI_BUCKETS.duration] });
    expect(duration?.attributes).toEqual({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-x' });
    expect(await otel.histogram(I.timeToFirstToken)).toMatchObject([{ count: 1, sum: 0.5 }]);
    // The rest of the duration over the tokens after the first: 1.5 s / 30.
    expect((await otel.histogram(I.timePerOutputToken))[0]?.sum).toBeCloseTo(0.05, 10);
    const usage = await otel.histogram(I.tokenUsage);
    expect(usage.map((point) => [point.attributes['gen_ai.token.type'], point.sum]).sort()).toEqual([
      ['input', 10],
      ['output', 31],
    ]);
    expect(await sumOf(I.usageInputTokens)).toBe(10);
    expect(await sumOf(I.usageCacheReadInputTokens)).toBe(4);
    expect(await sumOf(I.usageOutputTokens)).toBe(31);
    expect(await sumOf(I.usageReasoningOutputTokens)).toBe(6);
    expect((await otel.sum(I.usageOutputTokens))[0]?.attributes['gen_ai.token.modality']).toBe('unknown');
  });

  it.each([
    ['anthropic_messages', 'chat', 'anthropic'],
    ['gemini_generate_content', 'generate_content', 'gcp.gemini'],
    ['ollama_generate', 'text_completion', 'ollama'],
    ['ai_sdk_ui', 'chat', 'vercel.ai_sdk'],
    ['embeddings', 'embeddings', 'openai'],
    ['my_custom_label', 'chat', 'openai'],
  ])('names the operation and provider of %s by its wire format', async (endpoint, operation, provider) => {
    recorder().recorder.requestEnded(request({ endpoint }));
    const [duration] = await otel.histogram(I.requestDuration);
    expect(duration?.attributes['gen_ai.operation.name']).toBe(operation);
    expect(duration?.attributes['gen_ai.provider.name']).toBe(provider);
  });

  it('marks a failed request with error.type on the duration and operation histograms, not token usage, and records no first-token timing', async () => {
    recorder().recorder.requestEnded(request({ errorType: 'overload', outputTokens: 0, outputTokensStated: false, reasoningTokens: undefined }));
    expect((await otel.histogram(I.requestDuration))[0]?.attributes['error.type']).toBe('overload');
    expect(await otel.histogram(I.timeToFirstToken)).toEqual([]);
    expect(await otel.histogram(I.timePerOutputToken)).toEqual([]);
    expect((await otel.histogram(I.operationInputTokens))[0]?.attributes['error.type']).toBe('overload');
    expect((await otel.histogram(I.tokenUsage))[0]?.attributes['error.type']).toBeUndefined();
  });

  it('records no first-token timing for a unary response, nor time per token for a single token', async () => {
    const { recorder: made } = recorder();
    made.requestEnded(request({ streaming: false }));
    made.requestEnded(request({ outputTokens: 1 }));
    expect(await otel.histogram(I.timeToFirstToken)).toMatchObject([{ count: 1 }]);
    expect(await otel.histogram(I.timePerOutputToken)).toEqual([]);
  });

  it('records output usage it counted itself only with estimatedUsage, and never an estimate of zero', async () => {
    recorder().recorder.requestEnded(request({ outputTokensStated: false, reasoningTokens: undefined }));
    expect(await sumOf(I.usageOutputTokens)).toBe(0);
    expect(await sumOf(I.usageInputTokens)).toBe(10);

    const { recorder: optedIn } = recorder({ estimatedUsage: true });
    optedIn.requestEnded(request({ outputTokensStated: false, reasoningTokens: undefined }));
    optedIn.requestEnded(request({ outputTokensStated: false, outputTokens: 0, reasoningTokens: undefined }));
    expect(await sumOf(I.usageOutputTokens)).toBe(31);
    expect((await otel.histogram(I.operationOutputTokens)).reduce((count, point) => count + point.count, 0)).toBe(1);
  });

  it('records no input usage the response did not state', async () => {
    recorder().recorder.requestEnded(request({ inputTokens: undefined, cachedInputTokens: undefined }));
    expect(await otel.histogram(I.operationInputTokens)).toEqual([]);
    expect(await sumOf(I.usageCacheReadInputTokens)).toBe(0);
  });

  it('bounds gen_ai.response.model like the model label: capped, and only succeeding responses take a slot', async () => {
    const { recorder: made } = recorder({ maxModels: 2 });
    made.requestEnded(request({ responseModel: 'failing', errorType: 'internal', outputTokens: 0, outputTokensStated: false }));
    for (const name of ['a', 'b', 'c', 'a']) made.requestEnded(request({ responseModel: name }));
    const byModel = new Map<unknown, number>();
    for (const point of await otel.histogram(I.requestDuration)) {
      const model = point.attributes['gen_ai.response.model'];
      byModel.set(model, (byModel.get(model) ?? 0) + point.count);
    }
    expect(Object.fromEntries(byModel)).toEqual({ unknown_model: 2, a: 2, b: 1 });
  });

  it('adds the extra attributes to every record', async () => {
    recorder().recorder.requestEnded(request({ extraAttributes: { tenant: 'acme' } }));
    for (const name of [I.requestDuration, I.tokenUsage, I.timeToFirstToken]) {
      for (const point of await otel.histogram(name)) expect(point.attributes.tenant).toBe('acme');
    }
    expect((await otel.sum(I.usageInputTokens))[0]?.attributes.tenant).toBe('acme');
  });

  it('reports a meter whose instruments throw, instead of throwing into the request', () => {
    const broken: GenAiMeter = {
      createHistogram: () => ({
        record: () => {
          throw new Error('exporter down');
        },
      }),
      createCounter: () => ({ add: () => undefined }),
    };
    const { recorder: made, failures } = recorder({}, broken);
    expect(() => made.requestEnded(request())).not.toThrow();
    expect(failures).toEqual([new Error('exporter down')]);
  });
});
