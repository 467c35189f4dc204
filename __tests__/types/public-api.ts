/**
 * Type tests of the public API, compiled by `public-types.test.ts` under the strictest consumer settings
 * (`strict`, `exactOptionalPropertyTypes`, `noUncheckedIndexedAccess`) and by `npm run typecheck` under the repo's.
 * Each `@ts-expect-error` must meet an error, or the compile fails.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { expectTypeOf } from 'expect-type';
import express from 'express';
import type { Request } from 'express';
import { Registry, openMetricsContentType } from 'prom-client';
import type { OpenMetricsContentType } from 'prom-client';
import { DEFAULTS, dynamoMetrics, metricsRouter } from '../../lib';
import type {
  BucketOptions,
  DynamoMetricsMiddleware,
  DynamoMetricsOptions,
  HttpRequest,
  MetricsAuth,
  MetricsHandler,
  MetricsRouterOptions,
} from '../../lib';
import type { HistogramName } from '../../lib/metrics/buckets';

// Either kind of prom-client registry.
const openMetrics = new Registry<OpenMetricsContentType>();
openMetrics.setContentType(openMetricsContentType);
dynamoMetrics({ registry: openMetrics });
metricsRouter({ registry: openMetrics });
dynamoMetrics({ registry: new Registry() });
// @ts-expect-error a registry must be one
dynamoMetrics({ registry: { metrics: () => '' } });

// Express's request in the endpoint callback, unannotated or annotated, and Express accepts both handlers.
const app = express();
app.use(dynamoMetrics({ endpoint: (req) => (req.path.startsWith('/v1/') ? 'chat_completions' : undefined) }));
app.use(dynamoMetrics({ endpoint: (req: Request) => req.baseUrl + req.path }));
app.use(metricsRouter());
app.use('/internal', metricsRouter({ path: '/metrics' }));
expectTypeOf<Parameters<NonNullable<DynamoMetricsOptions['endpoint']>>[0]>().toEqualTypeOf<HttpRequest>();
expectTypeOf<Parameters<NonNullable<DynamoMetricsOptions<Request>['endpoint']>>[0]>().toEqualTypeOf<Request>();

// Plain node:http, with Node's own request type.
const observe = dynamoMetrics({ endpoint: (req: IncomingMessage) => (req.url === '/generate' ? 'generate' : undefined) });
const serveMetrics = metricsRouter();
http.createServer((req, res) => observe(req, res, () => serveMetrics(req, res)));
expectTypeOf(observe).toEqualTypeOf<DynamoMetricsMiddleware>();
expectTypeOf(serveMetrics).toEqualTypeOf<MetricsHandler>();
expectTypeOf(serveMetrics).toBeCallableWith({} as IncomingMessage, {} as ServerResponse);

// Values read from the environment may be undefined, even under exactOptionalPropertyTypes.
const fromEnvironment: DynamoMetricsOptions = {
  prefix: process.env.METRICS_PREFIX,
  maxModels: process.env.MAX_MODELS === undefined ? undefined : Number(process.env.MAX_MODELS),
  buckets: { timeToFirstToken: undefined, requestDuration: [1, 5, 30] as const },
  onError: undefined,
};
dynamoMetrics(fromEnvironment);
metricsRouter({ path: process.env.METRICS_PATH, auth: undefined, cluster: undefined });
const bearer: MetricsAuth = { bearerToken: 'secret' };
metricsRouter({ auth: bearer });
metricsRouter({ auth: { username: 'prometheus', password: 'secret' } });

// Mistakes are still caught.
// @ts-expect-error maxModels is a number
dynamoMetrics({ maxModels: '10' });
// @ts-expect-error an unknown option
dynamoMetrics({ prefx: 'x' });
// @ts-expect-error the endpoint callback returns a label or nothing
dynamoMetrics({ endpoint: () => 42 });
// @ts-expect-error not a histogram
dynamoMetrics({ buckets: { latency: [1] } });
// @ts-expect-error basic auth needs both fields
metricsRouter({ auth: { username: 'prometheus' } });
// @ts-expect-error the router options are not the middleware's
const wrongOptions: MetricsRouterOptions = { prefix: 'x' };
void wrongOptions;

// The bucket options name every histogram, and only those.
expectTypeOf<keyof BucketOptions>().toEqualTypeOf<HistogramName>();
expectTypeOf(DEFAULTS.maxModels).toEqualTypeOf<100>();
expectTypeOf(DEFAULTS.prefix).toEqualTypeOf<'dynamo_frontend'>();
