import { IncomingMessage } from 'node:http';
import { register as globalRegistry } from 'prom-client';
import type { Registry } from 'prom-client';
import { resolveBuckets } from './metrics/buckets';
import type { HistogramBounds } from './metrics/buckets';
import { ExtraLabels } from './metrics/extra-labels';
import { endpointFromPath, MAX_MODEL_NAME_LENGTH, normalizeModelName } from './labels';
import { configError, shown } from './errors';
import type { GenAiMeter } from './metrics/otel';
import type { DynamoMetricsError, DynamoMetricsOptions } from './option-types';

export type { BucketOptions, DynamoMetricsError, DynamoMetricsOptions, HttpRequest, MetricsRegistry } from './option-types';

export interface ResolvedOptions {
  registry: Registry;
  prefix: string;
  models: ReadonlySet<string> | undefined;
  maxModels: number;
  buckets: HistogramBounds;
  extraLabels: ExtraLabels;
  endpoint: (req: IncomingMessage) => string | undefined;
  /** The endpoint option was given: its label stands, and no unmatched request is watched for its response head. */
  endpointByOption: boolean;
  model: ((req: IncomingMessage) => unknown) | undefined;
  countTokens: ((text: string, model: string) => number) | undefined;
  onError: ((error: DynamoMetricsError) => void) | undefined;
  maxEventBytes: number;
  maxBodyBytes: number;
  meter: GenAiMeter | undefined;
  otelEstimatedUsage: boolean;
}

/** The defaults of `dynamoMetrics()`'s numeric and naming options, for code that wants to show or derive from them. */
export const DEFAULTS = {
  /**
   * Metric name prefix when neither the `prefix` option nor `DYN_METRICS_PREFIX` is set.
   * @defaultValue `'dynamo_frontend'`
   */
  prefix: 'dynamo_frontend',
  /**
   * Cap on distinct `model` label values.
   * @defaultValue 100
   */
  maxModels: 100,
  /**
   * Largest SSE event read, in characters.
   * @defaultValue 1048576 (1 MiB)
   */
  maxEventBytes: 1024 * 1024,
  /**
   * How much of a unary JSON body is kept while it is read, in characters.
   * @defaultValue 8388608 (8 MiB)
   */
  maxBodyBytes: 8 * 1024 * 1024,
} as const;

const KNOWN_OPTIONS = new Set([
  'registry',
  'prefix',
  'models',
  'maxModels',
  'buckets',
  'extraLabels',
  'endpoint',
  'model',
  'countTokens',
  'onError',
  'maxEventBytes',
  'maxBodyBytes',
  'meter',
  'otelEstimatedUsage',
]);

/** Express calling the factory itself as middleware passes a request where options belong. */
export function looksLikeRequest(value: unknown): boolean {
  if (value instanceof IncomingMessage) return true;
  const fields = value as { method?: unknown; url?: unknown; headers?: unknown } | null | undefined;
  return typeof fields?.method === 'string' && typeof fields.url === 'string' && typeof fields.headers === 'object';
}

function defaultEndpoint(req: IncomingMessage): string | undefined {
  // As in Dynamo, an LLM request is a POST: `GET /v1/chat/completions` lists stored completions, `GET
  // /v1/threads/:id/messages` reads a thread, `DELETE` removes one, and preflights and probes share the paths too.
  if (req.method !== 'POST') return undefined;
  const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url;
  return endpointFromPath(url);
}

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    configError(`option "${name}" must be a positive integer (got ${shown(value)})`);
  }
  return value;
}

/** Validates the options once, at creation; a mistake throws a TypeError that names the option and the fix. */
export function resolveOptions<Req extends IncomingMessage>(options: DynamoMetricsOptions<Req> | undefined): ResolvedOptions {
  if (typeof options === 'function' || looksLikeRequest(options)) {
    configError('`app.use(dynamoMetrics)` should be `app.use(dynamoMetrics())`');
  }
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    configError('options must be an object');
  }
  const opts: DynamoMetricsOptions<Req> = options ?? {};
  for (const key of Object.keys(opts)) {
    if (!KNOWN_OPTIONS.has(key)) configError(`unknown option "${key}"; known options are ${[...KNOWN_OPTIONS].join(', ')}`);
  }

  if (opts.registry === null) configError('option "registry" must be a prom-client Registry (leave it out for the global one)');
  const registry = opts.registry ?? globalRegistry;
  if (typeof registry !== 'object' || registry === null || typeof registry.registerMetric !== 'function') {
    configError('option "registry" must be a prom-client Registry');
  }

  const prefix = opts.prefix ?? (process.env.DYN_METRICS_PREFIX || DEFAULTS.prefix);
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    const from = opts.prefix === undefined ? 'DYN_METRICS_PREFIX' : 'option "prefix"';
    configError(`${from} ${shown(prefix)} is not a valid Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)`);
  }

  let models: ReadonlySet<string> | undefined;
  if (opts.models !== undefined) {
    if (!Array.isArray(opts.models) || opts.models.length === 0) {
      configError('option "models" must be a non-empty array of model names (omit it to allow every name up to maxModels)');
    }
    const notName = opts.models.findIndex((name: unknown) => typeof name !== 'string' || name.length === 0);
    if (notName !== -1) configError(`option "models" must hold model names only (got ${shown(opts.models[notName])} at index ${notName})`);
    // A name that would not print as itself (too long, a lone surrogate) can never be a label: it would never match.
    const unusable = opts.models.find((name) => normalizeModelName(name) !== name);
    if (unusable !== undefined) {
      configError(`option "models" lists ${shown(unusable.length > 40 ? `${unusable.slice(0, 40)}…` : unusable)}, which is no usable label: a model name is well-formed Unicode of at most ${MAX_MODEL_NAME_LENGTH} characters`);
    }
    models = new Set(opts.models);
  }
  // With an allow-list, the cap defaults to its size when that is larger; set both, and the list must fit the cap.
  const maxModels = positiveInteger('maxModels', opts.maxModels, Math.max(DEFAULTS.maxModels, models?.size ?? 0));
  if (models !== undefined && models.size > maxModels) {
    configError(`option "models" lists ${models.size} names, more than maxModels (${maxModels}): the rest could never have a label; raise maxModels or leave it out`);
  }

  for (const name of ['endpoint', 'model', 'countTokens', 'onError'] as const) {
    if (opts[name] !== undefined && typeof opts[name] !== 'function') configError(`option "${name}" must be a function`);
  }
  const endpointOption = opts.endpoint;
  const endpoint = endpointOption
    ? (req: IncomingMessage): string | undefined => {
        // Called with the request the framework handed the middleware, which is the Req the caller typed.
        const label = endpointOption(req as Req);
        return typeof label === 'string' && label.length > 0 ? label : undefined;
      }
    : defaultEndpoint;

  const meter = opts.meter;
  if (
    meter !== undefined &&
    (meter === null || typeof meter !== 'object' || typeof meter.createHistogram !== 'function' || typeof meter.createCounter !== 'function')
  ) {
    configError('option "meter" must be an @opentelemetry/api Meter, e.g. metrics.getMeter(\'my-gateway\')');
  }
  if (opts.otelEstimatedUsage !== undefined && typeof opts.otelEstimatedUsage !== 'boolean') {
    configError('option "otelEstimatedUsage" must be a boolean');
  }
  if (opts.otelEstimatedUsage === true && meter === undefined) {
    configError('option "otelEstimatedUsage" needs option "meter"; pass the Meter to record to');
  }

  return {
    // Only the bound content type differs between the two kinds of registry; the methods used are the same.
    registry: registry as Registry,
    prefix,
    models,
    maxModels,
    buckets: resolveBuckets(opts.buckets),
    extraLabels: new ExtraLabels(opts.extraLabels),
    endpoint,
    endpointByOption: endpointOption !== undefined,
    // Called with the request the framework handed the middleware, as for `endpoint`.
    model: opts.model as ((req: IncomingMessage) => unknown) | undefined,
    countTokens: opts.countTokens,
    onError: opts.onError,
    maxEventBytes: positiveInteger('maxEventBytes', opts.maxEventBytes, DEFAULTS.maxEventBytes),
    maxBodyBytes: positiveInteger('maxBodyBytes', opts.maxBodyBytes, DEFAULTS.maxBodyBytes),
    meter,
    otelEstimatedUsage: opts.otelEstimatedUsage ?? false,
  };
}
