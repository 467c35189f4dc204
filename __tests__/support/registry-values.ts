import type { MetricValue, Registry } from 'prom-client';

export type Labels = Record<string, string | number>;

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

export const P = 'dynamo_frontend';

/** Full metric name for the default prefix. */
export function m(suffix: string): string {
  return `${P}_${suffix}`;
}
