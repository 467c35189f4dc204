import type { ErrorType } from '../labels';
import { ModelLabels, UNKNOWN_MODEL } from '../labels';

// Nothing here imports @opentelemetry/api, not even its types: the package never loads it, and its published types
// do not need it installed. Everything here runs once per request, at its end, never per chunk.

type Attributes = Record<string, string | number | boolean>;

interface InstrumentOptions {
  description?: string;
  unit?: string;
  valueType?: number;
  advice?: { explicitBucketBoundaries?: number[] };
}

/** The part of an `@opentelemetry/api` `Meter` the package uses; any real `Meter` is one. */
export interface GenAiMeter {
  createHistogram(name: string, options?: InstrumentOptions): { record(value: number, attributes?: Attributes): void };
  createCounter(name: string, options?: InstrumentOptions): { add(value: number, attributes?: Attributes): void };
}

type Histogram = ReturnType<GenAiMeter['createHistogram']>;
type Counter = ReturnType<GenAiMeter['createCounter']>;

/** OpenTelemetry GenAI semantic-convention instrument names recorded when `meter` is set. */
export const GEN_AI_INSTRUMENTS = {
  requestDuration: 'gen_ai.server.request.duration',
  timeToFirstToken: 'gen_ai.server.time_to_first_token',
  timePerOutputToken: 'gen_ai.server.time_per_output_token',
  tokenUsage: 'gen_ai.client.token.usage',
  operationInputTokens: 'gen_ai.client.inference.operation.input_tokens',
  operationOutputTokens: 'gen_ai.client.inference.operation.output_tokens',
  usageInputTokens: 'gen_ai.client.inference.usage.input_tokens',
  usageOutputTokens: 'gen_ai.client.inference.usage.output_tokens',
  usageCacheReadInputTokens: 'gen_ai.client.inference.usage.cache_read.input_tokens',
  usageReasoningOutputTokens: 'gen_ai.client.inference.usage.reasoning.output_tokens',
} as const;

/** The conventions' `ExplicitBucketBoundaries` advice, per instrument. */
export const GEN_AI_BUCKETS = {
  duration: [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92],
  timeToFirstToken: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0],
  timePerOutputToken: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5],
  tokens: [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864],
} as const;

// @opentelemetry/api's `ValueType` enum values.
const INT = 0;
const DOUBLE = 1;

/** What one request showed, handed over once when it ends. */
export interface GenAiRequest {
  endpoint: string;
  /** The bounded `model` label of the Prometheus metrics: the name the client asked for when known. */
  model: string;
  /** The first model name a response event gave, unbounded as received. */
  responseModel: string | undefined;
  streaming: boolean;
  /** Dynamo's `error_type`, undefined for a successful request. */
  errorType: ErrorType | undefined;
  durationSeconds: number;
  /** Streaming only: from arrival to the first token-bearing chunk. */
  timeToFirstTokenSeconds: number | undefined;
  /** Stated by the response (usage), or undefined. */
  inputTokens: number | undefined;
  cachedInputTokens: number | undefined;
  /** The request's final output token count: stated, else counted by the middleware. */
  outputTokens: number;
  /** The response stated its output tokens (usage); otherwise `outputTokens` is the middleware's own count. */
  outputTokensStated: boolean;
  /** Stated reasoning total, or undefined when the response did not state one. */
  reasoningTokens: number | undefined;
  /** Per-request attributes from the user (tenant labels), added to every record. */
  extraAttributes: Readonly<Record<string, string>> | undefined;
}

/** Records a request's observations to some other metrics system; the request state knows only this. */
export interface RequestRecorder {
  requestEnded(request: GenAiRequest): void;
}

export interface GenAiRecorderSettings {
  /** Also record output usage that is an estimate (the conventions' "offline token counting"). */
  estimatedUsage: boolean;
  /** Bounds for `gen_ai.response.model`, the same allow-list and cap as the `model` label. */
  models: ReadonlySet<string> | undefined;
  maxModels: number;
  /** A record that threw (a broken custom Meter) is reported, never thrown into the request. */
  failed: (error: unknown) => void;
}

/** `gen_ai.operation.name` for each endpoint label; custom endpoint labels are read as chat. */
const OPERATION_BY_ENDPOINT: Readonly<Record<string, string>> = {
  chat_completions: 'chat',
  completions: 'text_completion',
  responses: 'chat',
  anthropic_messages: 'chat',
  embeddings: 'embeddings',
  gemini_generate_content: 'generate_content',
  ollama_chat: 'chat',
  ollama_generate: 'text_completion',
  ai_sdk_ui: 'chat',
  ai_sdk_text: 'chat',
  ai_sdk_data: 'chat',
};

/** The format's flavour where it is not OpenAI's (the conventions' well-known names where one exists). */
const PROVIDER_BY_ENDPOINT: Readonly<Record<string, string>> = {
  anthropic_messages: 'anthropic',
  gemini_generate_content: 'gcp.gemini',
  ollama_chat: 'ollama',
  ollama_generate: 'ollama',
  ai_sdk_ui: 'vercel.ai_sdk',
  ai_sdk_text: 'vercel.ai_sdk',
  ai_sdk_data: 'vercel.ai_sdk',
};

/**
 * `gen_ai.provider.name` is, in the conventions' words, the discriminator of the telemetry format flavor: known
 * here from the wire format, whatever server produced it.
 */
function providerOf(endpoint: string): string {
  return Object.prototype.hasOwnProperty.call(PROVIDER_BY_ENDPOINT, endpoint) ? (PROVIDER_BY_ENDPOINT[endpoint] as string) : 'openai';
}

function histogram(meter: GenAiMeter, name: string, unit: string, description: string, bounds: readonly number[], valueType: number): Histogram {
  const options: InstrumentOptions = { unit, description, valueType, advice: { explicitBucketBoundaries: [...bounds] } };
  return meter.createHistogram(name, options);
}

function counter(meter: GenAiMeter, name: string, description: string): Counter {
  return meter.createCounter(name, { unit: '{token}', description, valueType: INT });
}

/**
 * Records every request once, at its end, to the OpenTelemetry GenAI semantic-convention instruments. Token usage
 * is recorded only when the response stated it, unless `estimatedUsage` is set: the conventions allow counting
 * the system did not report only as an opt-in.
 */
export class GenAiRecorder implements RequestRecorder {
  private readonly requestDuration: Histogram;
  private readonly timeToFirstToken: Histogram;
  private readonly timePerOutputToken: Histogram;
  private readonly tokenUsage: Histogram;
  private readonly operationInputTokens: Histogram;
  private readonly operationOutputTokens: Histogram;
  private readonly usageInputTokens: Counter;
  private readonly usageOutputTokens: Counter;
  private readonly usageCacheReadInputTokens: Counter;
  private readonly usageReasoningOutputTokens: Counter;
  private readonly responseModels: ModelLabels;

  constructor(
    meter: GenAiMeter,
    private readonly settings: GenAiRecorderSettings,
  ) {
    const I = GEN_AI_INSTRUMENTS;
    const B = GEN_AI_BUCKETS;
    this.requestDuration = histogram(meter, I.requestDuration, 's', 'Generative AI server request duration such as time-to-last byte or last output token.', B.duration, DOUBLE);
    this.timeToFirstToken = histogram(meter, I.timeToFirstToken, 's', 'Time to generate first token for successful responses.', B.timeToFirstToken, DOUBLE);
    this.timePerOutputToken = histogram(meter, I.timePerOutputToken, 's', 'Time per output token generated after the first token for successful responses.', B.timePerOutputToken, DOUBLE);
    this.tokenUsage = histogram(meter, I.tokenUsage, '{token}', 'Number of input and output tokens used.', B.tokens, INT);
    this.operationInputTokens = histogram(meter, I.operationInputTokens, '{token}', 'The number of input (prompt) tokens used per inference operation.', B.tokens, INT);
    this.operationOutputTokens = histogram(meter, I.operationOutputTokens, '{token}', 'The number of output (completion) tokens used per inference operation.', B.tokens, INT);
    this.usageInputTokens = counter(meter, I.usageInputTokens, 'The number of input (prompt) tokens used, including cached tokens.');
    this.usageOutputTokens = counter(meter, I.usageOutputTokens, 'The number of output (completion) tokens used, including reasoning tokens.');
    this.usageCacheReadInputTokens = counter(meter, I.usageCacheReadInputTokens, 'The number of input tokens served from a provider-managed cache.');
    this.usageReasoningOutputTokens = counter(meter, I.usageReasoningOutputTokens, 'The number of output tokens used for reasoning (e.g. chain-of-thought, extended thinking).');
    this.responseModels = new ModelLabels(settings.models, settings.maxModels);
  }

  requestEnded(request: GenAiRequest): void {
    try {
      this.record(request);
    } catch (error) {
      this.settings.failed(error);
    }
  }

  private record(request: GenAiRequest): void {
    const { endpoint, errorType, outputTokens } = request;
    const attributes: Attributes = {
      ...request.extraAttributes,
      'gen_ai.operation.name': OPERATION_BY_ENDPOINT[endpoint] ?? 'chat',
      'gen_ai.provider.name': providerOf(endpoint),
      'gen_ai.request.model': request.model,
    };
    if (request.responseModel !== undefined) {
      // Admitted as the model label is: a name gets its own value only from a response that succeeded (or produced
      // tokens), so failing requests cannot take the slots.
      const { responseModel } = request;
      const succeeded = errorType === undefined || outputTokens > 0;
      attributes['gen_ai.response.model'] = succeeded
        ? this.responseModels.admit(responseModel)
        : (this.responseModels.labelOf(responseModel) ?? UNKNOWN_MODEL);
    }
    const withError: Attributes = errorType === undefined ? attributes : { ...attributes, 'error.type': errorType };

    this.requestDuration.record(request.durationSeconds, withError);

    const ttft = request.timeToFirstTokenSeconds;
    if (errorType === undefined && request.streaming && ttft !== undefined) {
      this.timeToFirstToken.record(ttft, attributes);
      // The conventions' definition: the rest of the request's duration spread over the tokens after the first.
      if (outputTokens > 1) this.timePerOutputToken.record(Math.max(0, request.durationSeconds - ttft) / (outputTokens - 1), attributes);
    }

    const usage: Attributes = { ...attributes, 'gen_ai.token.modality': 'unknown' };
    if (request.inputTokens !== undefined) {
      this.tokenUsage.record(request.inputTokens, { ...attributes, 'gen_ai.token.type': 'input' });
      this.operationInputTokens.record(request.inputTokens, withError);
      this.usageInputTokens.add(request.inputTokens, usage);
      if (request.cachedInputTokens !== undefined) this.usageCacheReadInputTokens.add(request.cachedInputTokens, usage);
    }
    if (request.outputTokensStated || (this.settings.estimatedUsage && outputTokens > 0)) {
      this.tokenUsage.record(outputTokens, { ...attributes, 'gen_ai.token.type': 'output' });
      this.operationOutputTokens.record(outputTokens, withError);
      this.usageOutputTokens.add(outputTokens, usage);
      if (request.reasoningTokens !== undefined) this.usageReasoningOutputTokens.add(request.reasoningTokens, usage);
    }
  }
}
