import { Counter, Registry } from 'prom-client';
import { defaultBuckets } from '../lib/buckets';
import type { HistogramName } from '../lib/buckets';
import { MetricsStore } from '../lib/metrics';
import type { StoreSettings } from '../lib/metrics';
import { value } from './support/registry-values';

const HISTOGRAMS: HistogramName[] = [
  'requestDuration',
  'timeToFirstToken',
  'interTokenLatency',
  'inputSequenceTokens',
  'outputSequenceTokens',
  'cachedTokens',
];

function settings(registry: Registry, overrides: Partial<StoreSettings> = {}): StoreSettings {
  const buckets = Object.fromEntries(HISTOGRAMS.map((name) => [name, defaultBuckets(name, {})])) as StoreSettings['buckets'];
  return { registry, prefix: 'dynamo_frontend', models: undefined, maxModels: 100, buckets, ...overrides };
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
});
