import express from 'express';
import { Counter, Registry } from 'prom-client';
import type { Metric } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import { defaultBuckets } from '../../lib/metrics/buckets';
import { HISTOGRAM_NAMES } from '../../lib/metrics/definitions';
import { fastTextSupported } from '../../lib/metrics/text';
import { MetricsStore } from '../../lib/metrics';
import type { StoreSettings } from '../../lib/metrics';
import { eventually, listen, openStream, request, signal } from '../support/http';
import type { RunningServer } from '../support/http';
import { registryOf } from '../support/registries';
import { m, value, valueFromText } from '../support/registry-values';
import { chatChunk, codePoints, DONE, sse } from '../support/streams';

function settings(registry: Registry, overrides: Partial<StoreSettings> = {}): StoreSettings {
  const buckets = Object.fromEntries(HISTOGRAM_NAMES.map((name) => [name, defaultBuckets(name, {})])) as StoreSettings['buckets'];
  return { registry, prefix: 'dynamo_frontend', models: undefined, maxModels: 100, buckets, ...overrides };
}

/** A model name a client may send: quote, backslash, newline, non-ASCII. */
const ODD_MODEL = 'we"ird\\mo\ndel 🌍';

/** One request through every domain method of the store, under `model`. */
function countRequest(store: MetricsStore, model: string): void {
  const labels = { model, endpoint: 'chat_completions', requestType: 'stream' as const };
  store.requestInFlight(model, 1, true);
  store.requestStarted(labels);
  store.firstToken(model);
  store.observeTimeToFirstToken(model, 0.2);
  store.promptTokens(model, 120, 64);
  store.seriesFor(model).pendingOutputTokens += 7;
  store.seriesFor(model).pendingReasoningTokens += 2;
  store.seriesFor(model).interTokenLatency.record(0.03, 3);
  store.overcount(model, 1);
  store.parseError('chat_completions', 'invalid_json');
  store.requestInFlight(model, -1, false);
  store.requestEnded(labels, { errorType: 'cancelled', clientDisconnected: true, durationSeconds: 1.5, outputTokens: 7, finishReason: 'stop' });
}

/** What prom-client's formatter makes of a metric's structured `get()` values (no pre-rendered text involved). */
async function formattedFromValues(registry: Registry, name: string): Promise<string> {
  const metric = registry.getSingleMetric(name) as Metric;
  const plain = registryOf(registry.contentType);
  plain.registerMetric({ name, get: () => metric.get() } as unknown as Metric);
  return plain.getSingleMetricAsString(name);
}

describe('MetricsStore', () => {
  let registry: Registry;
  beforeEach(() => {
    registry = new Registry();
  });

  it('is shared by every middleware on one registry and prefix, and separate per registry', () => {
    const first = MetricsStore.for(settings(registry));
    expect(MetricsStore.for(settings(registry))).toBe(first);
    expect(MetricsStore.for(settings(new Registry()))).not.toBe(first);
    expect(MetricsStore.for(settings(registry, { prefix: 'other' }))).not.toBe(first);
  });

  it('warns once per second middleware whose own settings the shared store ignores', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      MetricsStore.for(settings(registry));
      MetricsStore.for(settings(registry));
      expect(warn).not.toHaveBeenCalled();
      MetricsStore.for(settings(registry, { maxModels: 5 }));
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]?.[1]).toEqual({ code: 'DYNAMO_METRICS_SHARED_SETTINGS' });
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses a registry where one of its names is taken by something else, naming the fix', () => {
    new Counter({ name: 'dynamo_frontend_requests_total', help: 'not ours', registers: [registry] });
    expect(() => MetricsStore.for(settings(registry))).toThrow(/dynamo_frontend_requests_total.*prefix.*registry/);
  });

  it('moves hot-path tokens into the counter when scraped, and resetMetrics() drops the unscraped ones', async () => {
    const store = MetricsStore.for(settings(registry));
    store.seriesFor('m').pendingOutputTokens += 7;
    expect(await value(registry, 'dynamo_frontend_output_tokens_total', { model: 'm' })).toBe(7);
    store.seriesFor('m').pendingOutputTokens += 3;
    registry.resetMetrics();
    store.seriesFor('m').pendingOutputTokens += 2;
    expect(await value(registry, 'dynamo_frontend_output_tokens_total', { model: 'm' })).toBe(2);
  });

  it('renders the inter-token latency cells as a cumulative histogram per model', async () => {
    const store = MetricsStore.for(settings(registry));
    store.seriesFor('m').interTokenLatency.record(0.03, 3); // 3 samples of 10 ms
    store.seriesFor('m').interTokenLatency.record(5, 1); // beyond the last bound (2 s)
    const name = 'dynamo_frontend_inter_token_latency_seconds';
    expect(await value(registry, name, { model: 'm' }, 'count')).toBe(4);
    expect(await value(registry, name, { model: 'm' }, 'sum')).toBeCloseTo(5.03);
    const text = await registry.metrics();
    expect(text).toContain(`${name}_bucket{le="0.0067",model="m"} 0`);
    expect(text).toContain(`${name}_bucket{le="0.013",model="m"} 3`);
    expect(text).toContain(`${name}_bucket{le="2",model="m"} 3`);
    expect(text).toContain(`${name}_bucket{le="+Inf",model="m"} 4`);
  });

  it('serves for every metric the text prom-client formats from its structured values', async () => {
    const store = MetricsStore.for(settings(registry));
    countRequest(store, 'm');
    countRequest(store, ODD_MODEL);
    countRequest(store, 'm');
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names).toHaveLength(20);
    for (const name of names) {
      const text = await registry.getSingleMetricAsString(name);
      expect({ name, text }).toEqual({ name, text: await formattedFromValues(registry, name) });
    }
  });

  it.each([
    ['Prometheus text', (): Registry => new Registry()],
    ['OpenMetrics', (): Registry => registryOf(Registry.OPENMETRICS_CONTENT_TYPE)],
    [
      'default labels',
      (): Registry => {
        const withDefaults = new Registry();
        withDefaults.setDefaultLabels({ instance: 'a"b' });
        return withDefaults;
      },
    ],
  ])('prints the same samples through prom-client\'s own formatter, as with any other prom-client version (%s)', async (_name, make) => {
    const fast = make();
    const plain = make();
    const stores = [MetricsStore.for(settings(fast)), MetricsStore.for(settings(plain, { publicTextOnly: true }))];
    for (const store of stores) {
      countRequest(store, 'm');
      countRequest(store, ODD_MODEL);
    }
    // Label order aside (the public path prints a histogram's default labels after its own), the same text.
    const sorted = (text: string): string =>
      text.replace(/\{([^}]*)\}/g, (_match, labels: string) => `{${labels.split(/,(?=[a-zA-Z_]+=")/).sort().join(',')}}`);
    const text = await fast.metrics();
    expect(sorted(await plain.metrics())).toBe(sorted(text));
    expect(text).toContain('inter_token_latency_seconds_count');
    expect(await plain.getMetricsAsJSON()).toEqual(await fast.getMetricsAsJSON());
    const hook = (registry: Registry): unknown => (registry.getSingleMetric(m('input_tokens_total')) as { getForPromString?: unknown }).getForPromString;
    expect(typeof hook(fast)).toBe(fastTextSupported ? 'function' : 'undefined');
    expect(hook(plain)).toBeUndefined();
  });

  it('escapes a model name in every line it labels', async () => {
    const store = MetricsStore.for(settings(registry));
    countRequest(store, ODD_MODEL);
    const label = 'model="we\\"ird\\\\mo\\ndel 🌍"';
    const text = await registry.metrics();
    expect(text).toContain(`dynamo_frontend_output_tokens_total{${label}} 7\n`);
    expect(text).toContain(`dynamo_frontend_request_duration_seconds_bucket{le="2",${label}} 1\n`);
    expect(text).toContain(`dynamo_frontend_requests_total{${label},endpoint="chat_completions",request_type="stream",status="error",error_type="cancelled"} 1\n`);
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    const labelled = samples.filter((line) => line.includes('{'));
    expect(labelled.filter((line) => !line.includes('endpoint="chat_completions",reason=')).every((line) => line.includes(label))).toBe(true);
  });

  it('prints default labels in every line, in the order prom-client does', async () => {
    registry.setDefaultLabels({ instance: 'a"b' });
    const store = MetricsStore.for(settings(registry));
    countRequest(store, 'm');
    const text = await registry.metrics();
    expect(text).toContain('dynamo_frontend_output_tokens_total{model="m",instance="a\\"b"} 7\n');
    expect(text).toContain('dynamo_frontend_request_duration_seconds_bucket{le="2",instance="a\\"b",model="m"} 1\n');
    expect(text).toContain('dynamo_frontend_inter_token_latency_seconds_sum{instance="a\\"b",model="m"} 0.03\n');
    expect(text).toContain('dynamo_frontend_disconnected_clients{instance="a\\"b"} 1\n');
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(samples.every((line) => line.includes('instance="a\\"b"'))).toBe(true);
  });

  it('names counter samples with one _total in OpenMetrics, every time it renders', async () => {
    registry = registryOf(Registry.OPENMETRICS_CONTENT_TYPE);
    const store = MetricsStore.for(settings(registry));
    countRequest(store, 'm');
    for (let i = 0; i < 2; i++) {
      const text = await registry.metrics();
      expect(text).toContain('# TYPE dynamo_frontend_output_tokens counter\n');
      expect(text).toContain('dynamo_frontend_output_tokens_total{model="m"} 7\n');
      expect(text).toContain('dynamo_frontend_requests_started_total{model="m",endpoint="chat_completions",request_type="stream"} 1\n');
      expect(text).toContain('dynamo_frontend_time_to_first_token_seconds_count{model="m"} 1\n');
      expect(text).not.toContain('_total_total');
      expect(text.endsWith('# EOF\n')).toBe(true);
    }
    // The store is still found through its renamed anchor metric.
    expect(MetricsStore.for(settings(registry))).toBe(store);
  });

  it('resetMetrics() zeroes every series, tokens not yet scraped included, and counting starts again at 0', async () => {
    const store = MetricsStore.for(settings(registry));
    countRequest(store, 'm');
    await registry.metrics();
    countRequest(store, 'm');
    store.seriesFor('m').pendingOutputTokens += 5;
    registry.resetMetrics();
    const fresh = new Registry();
    MetricsStore.for(settings(fresh));
    expect(await registry.metrics()).toBe(await fresh.metrics());

    countRequest(store, 'm');
    const text = await registry.metrics();
    expect(valueFromText(text, m('output_tokens_total'), { model: 'm' })).toBe(7);
    expect(valueFromText(text, m('inflight_requests'), { model: 'm' })).toBe(0);
    expect(valueFromText(text, m('disconnected_clients'))).toBe(1);
    expect(valueFromText(text, m('input_sequence_tokens_count'), { model: 'm' })).toBe(1);
    expect(valueFromText(text, m('inter_token_latency_seconds_count'), { model: 'm' })).toBe(3);
    expect(valueFromText(text, m('parse_errors_total'), { endpoint: 'chat_completions', reason: 'invalid_json' })).toBe(1);
  });

  it('shows a gauge series from the model\'s first request on, at 0 once it ended', async () => {
    const store = MetricsStore.for(settings(registry));
    expect(await registry.metrics()).not.toContain('inflight_requests{');
    store.requestInFlight('m', 1, true);
    expect(await value(registry, m('queued_requests'), { model: 'm' })).toBe(1);
    store.firstToken('m');
    store.requestInFlight('m', -1, false);
    const text = await registry.metrics();
    expect(text).toContain('dynamo_frontend_inflight_requests{model="m"} 0\n');
    expect(text).toContain('dynamo_frontend_queued_requests{model="m"} 0\n');
    expect(text).not.toContain('requests_total{');
  });
});

describe('a scrape in the middle of a stream', () => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
  });

  it('sees the tokens, gauges and latencies counted so far, and the rest once the stream ends', async () => {
    const registry = new Registry();
    const gate = signal();
    const app = express();
    app.use(express.json());
    app.use(dynamoMetrics({ registry, countTokens: codePoints }));
    app.use(metricsRouter({ registry }));
    app.post('/v1/chat/completions', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(chatChunk(ODD_MODEL, [{ delta: { content: 'abc' } }])));
      res.write(sse(chatChunk(ODD_MODEL, [{ delta: { content: 'de' } }])));
      res.write(sse(chatChunk(ODD_MODEL, [{ delta: { content: 'held' } }])));
      void gate.wait.then(() => {
        res.write(sse(chatChunk(ODD_MODEL, [{ delta: { content: 'fghij' }, finish_reason: 'stop' }])));
        res.end(DONE);
      });
    });
    server = await listen(app);
    const scrape = async (): Promise<string> => (await request(server!.port, 'GET', '/metrics')).body.toString();
    const labels = { model: 'we\\"ird\\\\mo\\ndel 🌍' };

    const open = await openStream(server.port, '/v1/chat/completions', { model: ODD_MODEL, stream: true, messages: [] });
    try {
      await open.waitFor('held');
      const live = await scrape();
      expect(valueFromText(live, m('output_tokens_total'), labels)).toBe(9);
      expect(valueFromText(live, m('inflight_requests'), labels)).toBe(1);
      expect(valueFromText(live, m('queued_requests'), labels)).toBe(0);
      expect(valueFromText(live, m('time_to_first_token_seconds_count'), labels)).toBe(1);
      expect(valueFromText(live, m('inter_token_latency_seconds_count'), labels)).toBe(6);
      expect(live).not.toContain('dynamo_frontend_requests_total{');
    } finally {
      gate.release();
    }
    await open.done;
    await eventually(async () => valueFromText(await scrape(), m('inflight_requests'), labels) === 0);
    const ended = await scrape();
    expect(valueFromText(ended, m('output_tokens_total'), labels)).toBe(14);
    expect(valueFromText(ended, m('inter_token_latency_seconds_count'), labels)).toBe(11);
    expect(
      valueFromText(ended, m('requests_total'), { ...labels, endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' }),
    ).toBe(1);
    expect(valueFromText(ended, m('requests_finished_total'), { ...labels, finish_reason: 'stop' })).toBe(1);
  });
});
