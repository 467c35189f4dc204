import { Registry } from 'prom-client';
import { createApp } from '../../example-app/app';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { configFromEnv } from '../../example-app/config';
import { listen } from '../../example-app/listen';
import type { RunningServer } from '../../example-app/listen';
import { fetchMetrics, parseMetrics, sumOf } from '../../example-app/metrics-text';
import { postJson } from '../support/http';

/**
 * The example gateway's opt-in OpenTelemetry mode (`OTEL_METRICS=prometheus`): the same requests reach the
 * OpenTelemetry GenAI instruments, served as Prometheus text by `@opentelemetry/exporter-prometheus` at
 * `/otel/metrics`, beside the package's own `/metrics`.
 */

const MODEL = 'mock-llama-3.1-8b-instruct';
let running: RunningServer | undefined;
let shutdown: (() => Promise<void>) | undefined;

afterEach(async () => {
  await running?.close();
  await shutdown?.();
  running = undefined;
  shutdown = undefined;
});

async function startExample(env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const config = await configFromEnv({ ...env, MOCK_TOKENS_PER_SECOND: '0' });
  shutdown = config.app.openTelemetry?.shutdown;
  running = await listen(createApp({ ...config.app, registry: new Registry() }), 0, '127.0.0.1');
  return running;
}

test('OTEL_METRICS=prometheus serves the GenAI instruments at /otel/metrics, agreeing with /metrics', async () => {
  const { url } = await startExample({ OTEL_METRICS: 'prometheus' });
  const port = Number(new URL(url).port);
  const body = { model: MODEL, stream: true, stream_options: { include_usage: true }, max_tokens: 40, ignore_eos: true, messages: [{ role: 'user', content: 'Tell me a story' }] };
  for (let i = 0; i < 3; i++) expect((await postJson(port, '/v1/chat/completions', body)).status).toBe(200);
  expect((await postJson(port, '/v1/chat/completions', { ...body, model: 'no-such-model' })).status).toBe(404);

  const response = await fetch(`${url}/otel/metrics`);
  expect(response.status).toBe(200);
  const text = await response.text();
  const otel = parseMetrics(text);
  const model = { gen_ai_request_model: MODEL, gen_ai_operation_name: 'chat', gen_ai_provider_name: 'openai' };
  expect(sumOf(otel, 'gen_ai_server_request_duration_count', model)).toBe(4 - 1);
  expect(sumOf(otel, 'gen_ai_server_request_duration_count', { error_type: 'not_found' })).toBe(1);
  expect(sumOf(otel, 'gen_ai_server_time_to_first_token_count', model)).toBe(3);
  // The conventions' bucket advice reaches the exporter.
  expect(text).toContain('gen_ai_server_time_to_first_token_bucket{');
  expect(text).toMatch(/gen_ai_server_time_to_first_token_bucket\{[^}]*le="0\.005"/);
  expect(sumOf(otel, 'gen_ai_client_inference_usage_output_tokens_total', model)).toBe(3 * 40);

  const own = await fetchMetrics(url);
  expect(sumOf(own, 'dynamo_frontend_output_tokens_total', { model: MODEL })).toBe(3 * 40);
});

test('without OTEL_METRICS there is no OpenTelemetry endpoint', async () => {
  const { url } = await startExample({});
  expect((await fetch(`${url}/otel/metrics`)).status).toBe(404);
});

test('an unknown OTEL_METRICS value fails at start', async () => {
  await expect(configFromEnv({ OTEL_METRICS: 'otlp-typo' })).rejects.toThrow(/OTEL_METRICS=otlp-typo/);
});

test('the OpenTelemetry packages are loaded only with OTEL_METRICS', () => {
  // A process of its own: this file's other tests have loaded them into this one.
  const loaded = (otel: string): string =>
    execFileSync(process.execPath, ['--import', 'tsx', '-e', LOADED_AFTER_CONFIG], {
      cwd: join(__dirname, '..', '..'),
      env: { ...process.env, OTEL_METRICS: otel },
      encoding: 'utf8',
    }).trim();
  expect(loaded('')).toBe('false');
  expect(loaded('prometheus')).toBe('true');
});

const LOADED_AFTER_CONFIG = `
const { configFromEnv } = require('./example-app/config');
configFromEnv().then((config) => {
  console.log(Object.keys(require.cache).some((file) => file.includes('@opentelemetry/sdk-metrics')));
  return config.app.openTelemetry?.shutdown();
});`;
