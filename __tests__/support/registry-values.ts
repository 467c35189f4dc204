/** Metric values read back from a registry (or from `/metrics` text), and the states a request must leave behind. */
import type { MetricValue, Registry } from 'prom-client';
import { eventually } from './http';

export type Labels = Record<string, string | number>;

export const P = 'dynamo_frontend';

/** Full metric name for the default prefix. */
export function m(suffix: string): string {
  return `${P}_${suffix}`;
}

function matches(sample: MetricValue<string>, labels: Labels): boolean {
  const sampleLabels = sample.labels as Record<string, string | number | undefined>;
  return Object.entries(labels).every(([key, value]) => String(sampleLabels[key]) === String(value));
}

/** Every sample of a metric, read back through the registry's public `get()`. */
export async function samples(registry: Registry, name: string): Promise<MetricValue<string>[]> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  return values as MetricValue<string>[];
}

/**
 * Sum of the samples of a counter or gauge whose labels include `labels` (0 when none match). For a histogram,
 * pass `part` to read its `_count` or `_sum`.
 */
export async function value(registry: Registry, name: string, labels: Labels = {}, part?: 'count' | 'sum'): Promise<number> {
  const all = await samples(registry, name);
  const wanted = part === undefined ? undefined : `${name}_${part}`;
  let total = 0;
  for (const sample of all) {
    const metricName = (sample as MetricValue<string> & { metricName?: string }).metricName;
    if (wanted !== undefined ? metricName !== wanted : metricName !== undefined && metricName !== name) continue;
    if (matches(sample, labels)) total += sample.value;
  }
  return total;
}

/** The label sets of a metric's samples (of its `_count` series for histograms). */
export async function labelSets(registry: Registry, name: string): Promise<Record<string, string | number>[]> {
  const all = await samples(registry, name);
  return all
    .filter((sample) => {
      const metricName = (sample as MetricValue<string> & { metricName?: string }).metricName;
      return metricName === undefined || metricName === name || metricName === `${name}_count`;
    })
    .map((sample) => ({ ...(sample.labels as Record<string, string | number>) }));
}

/** A value read from Prometheus text (as served by `/metrics`): the sample whose name and labels match exactly. */
export function valueFromText(text: string, name: string, labels: Labels = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([key, v]) => `${key}="${String(v)}"`)
    .sort();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const present = (match[2] ?? '')
      .split(/,(?=[a-zA-Z_])/)
      .filter((part) => part.length > 0)
      .sort();
    if (present.length === wanted.length && present.every((part, i) => part === wanted[i])) return Number(match[3]);
  }
  return undefined;
}

/** Sum over every series of a counter or gauge (with `labels`, of the matching ones). */
export const total = (registry: Registry, suffix: string, labels: Labels = {}): Promise<number> => value(registry, `${P}_${suffix}`, labels);

/** The in-flight gauges summed over models: all three must come back to where they started after any fault. */
export async function gauges(registry: Registry): Promise<{ inflight: number; active: number; queued: number }> {
  return {
    inflight: await total(registry, 'inflight_requests'),
    active: await total(registry, 'active_requests'),
    queued: await total(registry, 'queued_requests'),
  };
}

/** Every series of every gauge is 0 (not only their sum): a request moved between labels must leave none behind. */
export async function everyGaugeSeriesZero(registry: Registry): Promise<boolean> {
  for (const suffix of ['inflight_requests', 'active_requests', 'queued_requests']) {
    for (const sample of await samples(registry, `${P}_${suffix}`)) if (sample.value !== 0) return false;
  }
  return true;
}

/** Waits until every started request has ended and every gauge series is back to 0. */
export async function settled(registry: Registry, timeoutMs = 5_000): Promise<void> {
  await eventually(
    async () =>
      (await everyGaugeSeriesZero(registry)) &&
      (await total(registry, 'requests_started_total')) === (await total(registry, 'requests_total')),
    timeoutMs,
  );
}

export type Snapshot = Record<string, number>;

/**
 * Every sample of every metric of a registry, keyed by name and sorted labels, except those that measure time
 * (`*_seconds_sum` and `*_seconds_bucket`), which no two runs share.
 */
export async function snapshot(registry: Registry): Promise<Snapshot> {
  const result: Snapshot = {};
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const sample of metric.values) {
      const name = (sample as { metricName?: string }).metricName ?? metric.name;
      if (/_seconds_(sum|bucket)$/.test(name)) continue;
      const labels = Object.entries(sample.labels)
        .filter(([key]) => key !== 'le' || !name.endsWith('_seconds_bucket'))
        .map(([key, value]) => `${key}=${JSON.stringify(String(value))}`)
        .sort()
        .join(',');
      result[`${name}{${labels}}`] = sample.value;
    }
  }
  return result;
}

/** Sum of the samples in a snapshot for a metric whose labels include `labels`. */
export function fromSnapshot(shot: Snapshot, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, value] of Object.entries(shot)) {
    const brace = key.indexOf('{');
    if (key.slice(0, brace) !== name) continue;
    const inside = key.slice(brace + 1, -1);
    if (Object.entries(labels).every(([k, v]) => inside.split(',').includes(`${k}=${JSON.stringify(v)}`))) total += value;
  }
  return total;
}

/**
 * Gauge series that are not 0: every label set of inflight, active and queued requests must be back to 0 (a request
 * moved from `unknown_model` to its model must leave no +1/−1 pair behind that only sums to 0).
 */
export function nonZeroGauges(shot: Snapshot, prefix = 'dynamo_frontend'): string[] {
  const gauges = ['inflight_requests', 'active_requests', 'queued_requests'].map((g) => `${prefix}_${g}{`);
  return Object.entries(shot)
    .filter(([key, value]) => gauges.some((g) => key.startsWith(g)) && value !== 0)
    .map(([key, value]) => `${key} = ${value}`);
}
