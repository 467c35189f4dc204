export { dynamoMetrics } from './middleware';
export type { DynamoMetricsMiddleware } from './middleware';
export { metricsRouter } from './router';
export type { MetricsRouterOptions } from './router';
export type { BucketOptions, DynamoMetricsError, DynamoMetricsOptions } from './options';
export { DEFAULTS } from './options';
export { METRIC_SUFFIXES } from './metrics';
export { dynamoBuckets } from './buckets';
export { estimateTokens } from './estimate';
