import type { Meter } from '@opentelemetry/api';
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { DataPoint, Histogram, MetricData, ViewOptions } from '@opentelemetry/sdk-metrics';

/** A pull reader kept in memory: `collect()` returns what the SDK aggregated so far (cumulative). */
class InMemoryReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }

  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export type PointAttributes = Record<string, unknown>;

export interface HistogramPoint {
  attributes: PointAttributes;
  count: number;
  sum: number;
  boundaries: number[];
}

export interface SumPoint {
  attributes: PointAttributes;
  value: number;
}

/** A real OpenTelemetry SDK MeterProvider with an in-memory reader, read back through the SDK's own collect(). */
export class OtelHarness {
  private readonly reader = new InMemoryReader();
  private readonly provider: MeterProvider;
  readonly meter: Meter;

  constructor(views: ViewOptions[] = []) {
    this.provider = new MeterProvider({ readers: [this.reader], views });
    this.meter = this.provider.getMeter('express-dynamo-metrics-test');
  }

  async metric(name: string): Promise<MetricData | undefined> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw new Error(`collect failed: ${String(errors[0])}`);
    for (const scope of resourceMetrics.scopeMetrics) {
      const found = scope.metrics.find((metric) => metric.descriptor.name === name);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** Every histogram point of an instrument (none when nothing was recorded to it). */
  async histogram(name: string): Promise<HistogramPoint[]> {
    const metric = await this.metric(name);
    if (metric === undefined) return [];
    if (metric.dataPointType !== DataPointType.HISTOGRAM) throw new Error(`${name} is not a histogram`);
    return (metric.dataPoints as DataPoint<Histogram>[]).map((point) => ({
      attributes: { ...point.attributes },
      count: point.value.count,
      sum: point.value.sum ?? Number.NaN,
      boundaries: point.value.buckets.boundaries,
    }));
  }

  /** Every point of a counter. */
  async sum(name: string): Promise<SumPoint[]> {
    const metric = await this.metric(name);
    if (metric === undefined) return [];
    if (metric.dataPointType !== DataPointType.SUM) throw new Error(`${name} is not a sum`);
    return (metric.dataPoints as DataPoint<number>[]).map((point) => ({ attributes: { ...point.attributes }, value: point.value }));
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
