import type { ExampleAppOptions } from './app';
import { MOCK_DEFAULTS } from './mock-llm';

export interface ServerConfig {
  port: number;
  host: string;
  app: ExampleAppOptions;
}

function numberFrom(env: NodeJS.ProcessEnv, name: string, fallback: number, isValid: (n: number) => boolean): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || !isValid(value)) throw new TypeError(`${name}=${raw} is not a valid value`);
  return value;
}

const DEFAULT_UPSTREAM_TIMEOUT_MS = 300_000;

/**
 * `OTEL_METRICS=prometheus`: record to OpenTelemetry too, served at `/otel/metrics`. The OpenTelemetry packages are
 * loaded only then, as an app that does not use them would not load them.
 */
async function openTelemetryFrom(env: NodeJS.ProcessEnv): Promise<ExampleAppOptions['openTelemetry']> {
  const mode = env.OTEL_METRICS;
  if (mode === undefined || mode === '' || mode === 'none') return undefined;
  if (mode !== 'prometheus') throw new TypeError(`OTEL_METRICS=${mode} is not a valid value (prometheus or none)`);
  const { prometheusOpenTelemetry } = await import('./otel');
  return prometheusOpenTelemetry();
}

/** Every knob of `npm run example`, read once from the environment so a typo fails at start, not mid-request. */
export async function configFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<ServerConfig> {
  const upstreamUrl = env.UPSTREAM_URL;
  const openTelemetry = await openTelemetryFrom(env);
  return {
    port: numberFrom(env, 'PORT', 3000, (n) => Number.isInteger(n) && n >= 0 && n < 65536),
    host: env.HOST || '127.0.0.1',
    app: {
      mock: {
        models: env.MOCK_MODELS ? env.MOCK_MODELS.split(',').map((m) => m.trim()).filter(Boolean) : MOCK_DEFAULTS.models,
        tokensPerSecond: numberFrom(env, 'MOCK_TOKENS_PER_SECOND', MOCK_DEFAULTS.tokensPerSecond, (n) => n >= 0),
        tokensPerChunk: numberFrom(env, 'MOCK_TOKENS_PER_CHUNK', MOCK_DEFAULTS.tokensPerChunk, (n) => Number.isInteger(n) && n >= 1),
      },
      upstream: upstreamUrl
        ? {
            url: upstreamUrl.replace(/\/+$/, ''),
            timeoutMs: numberFrom(env, 'UPSTREAM_TIMEOUT_MS', DEFAULT_UPSTREAM_TIMEOUT_MS, (n) => n > 0),
            apiKey: env.UPSTREAM_API_KEY,
          }
        : undefined,
      openTelemetry,
    },
  };
}
