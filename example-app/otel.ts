import type { Meter } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** The example's OpenTelemetry side: a Meter for `dynamoMetrics({ meter })` and a handler serving what it recorded. */
export interface OpenTelemetryExport {
  meter: Meter;
  /** Serves the OpenTelemetry metrics in Prometheus text, converted by `@opentelemetry/exporter-prometheus`. */
  metricsHandler: RequestHandler;
  shutdown(): Promise<void>;
}

/**
 * A MeterProvider whose reader is the OpenTelemetry Prometheus exporter, served by the app itself (no second port).
 * Any other reader fits the same place: a `PeriodicExportingMetricReader` around an OTLP exporter sends the same
 * instruments to a collector.
 */
export function prometheusOpenTelemetry(): OpenTelemetryExport {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  return {
    meter: provider.getMeter('express-dynamo-metrics-example'),
    metricsHandler: (req, res) => exporter.getMetricsRequestHandler(req, res),
    shutdown: () => provider.shutdown(),
  };
}
