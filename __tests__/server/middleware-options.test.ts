/**
 * Options seen over HTTP: a countTokens that fails, bucket overrides from the environment and the options, the
 * metric prefix.
 */
import type { DynamoMetricsError } from '../../lib/index';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { eventually, postJson, request } from '../support/http';
import { m, value, valueFromText } from '../support/registry-values';
import { contentChunk, DONE, finishChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, get, start } = t;

  it('falls back to the default estimate when countTokens throws or returns nonsense, and reports it', async () => {
    const errors: DynamoMetricsError[] = [];
    let call = 0;
    const port = await start(chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'Hello'), contentChunk('m', 'world'), finishChunk('m'), DONE])), {
      metrics: {
        countTokens: () => {
          call++;
          if (call === 1) throw new Error('tokenizer crashed');
          return Number.NaN;
        },
        onError: (e) => errors.push(e),
      },
    });
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(200);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBeGreaterThanOrEqual(2);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(errors.map((e) => e.code)).toEqual(['count_tokens_failed', 'invalid_count']);
  });

  it('applies DYN_METRICS_<NAME>_{MIN,MAX,COUNT} and the buckets option to the served histograms', async () => {
    const saved = { ...process.env };
    process.env.DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_MIN = '0.01';
    process.env.DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_MAX = '10';
    process.env.DYN_METRICS_TIME_TO_FIRST_TOKEN_SECONDS_COUNT = '4';
    let port: number;
    try {
      port = await start(chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'ab'), contentChunk('m', 'c'), finishChunk('m'), DONE])), {
        metrics: { buckets: { requestDuration: [0.5, 5] } },
      });
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    }
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    const text = (await request(port, 'GET', '/metrics')).body.toString();
    const bounds = (name: string): string[] =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}_bucket{`))
        .map((line) => /le="([^"]+)"/.exec(line)?.[1] ?? '');
    expect(bounds(m('time_to_first_token_seconds'))).toEqual(['0', '0.1', '1', '10', '+Inf']);
    expect(bounds(m('request_duration_seconds'))).toEqual(['0.5', '5', '+Inf']);
    expect(bounds(m('inter_token_latency_seconds'))).toEqual(['0', '0.0019', '0.0035', '0.0067', '0.013', '0.024', '0.045', '0.084', '0.16', '0.3', '0.56', '1.1', '2', '+Inf']);
  });

  describe('prefix', () => {
    const saved = process.env.DYN_METRICS_PREFIX;
    afterEach(() => {
      if (saved === undefined) delete process.env.DYN_METRICS_PREFIX;
      else process.env.DYN_METRICS_PREFIX = saved;
    });

    it('names every metric with the prefix option', async () => {
      const port = await start(chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE])), { metrics: { prefix: 'my_gateway' } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await eventually(async () => (await value(t.registry, 'my_gateway_requests_total')) === 1);
      expect(await value(t.registry, 'my_gateway_output_tokens_total', { model: 'm' })).toBe(3);
      const text = (await request(port, 'GET', '/metrics')).body.toString();
      expect(valueFromText(text, 'my_gateway_output_tokens_total', { model: 'm' })).toBe(3);
      expect(text).not.toContain('dynamo_frontend_');
    });

    it('honours DYN_METRICS_PREFIX when the option is absent', async () => {
      process.env.DYN_METRICS_PREFIX = 'from_env';
      const port = await start(chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE])));
      await postJson(port, CHAT, { model: 'm', stream: true });
      await eventually(async () => (await value(t.registry, 'from_env_requests_total')) === 1);
      expect(await value(t.registry, 'from_env_output_tokens_total', { model: 'm' })).toBe(3);
      expect(t.registry.getSingleMetric(m('output_tokens_total'))).toBeUndefined();
    });
  });
});
