import { Router } from 'express';
import type { NextFunction, Request, Response } from 'express';
import { AggregatorRegistry, register as globalRegistry } from 'prom-client';
import type { Registry } from 'prom-client';
import { checkCredentials } from './scrape-auth';
import type { MetricsAuth } from './scrape-auth';
import { configError } from './errors';
import { looksLikeRequest } from './options';

export interface MetricsRouterOptions {
  /**
   * Registry to serve.
   * @defaultValue prom-client's global `register`
   */
  registry?: Registry;
  /**
   * Path of the metrics endpoint.
   * @defaultValue `process.env.DYN_HTTP_SVC_METRICS_PATH`, else `/metrics`
   */
  path?: string;
  /**
   * Require credentials (compared in constant time); a scrape without them gets 401.
   * @defaultValue none: anyone who reaches the path can read the metrics
   */
  auth?: MetricsAuth;
  /**
   * Serve the sum over all Node cluster workers (prom-client's `AggregatorRegistry`). Mount this router in the
   * primary process; each worker calls `enableClusterWorkerMetrics()`.
   * @defaultValue false
   */
  cluster?: boolean;
}

/**
 * An Express router serving `GET <path>` in the registry's own content type (Prometheus text or OpenMetrics,
 * whichever the registry was created with).
 */
export function metricsRouter(options?: MetricsRouterOptions): Router {
  if (typeof options === 'function' || looksLikeRequest(options)) {
    configError('`app.use(metricsRouter)` should be `app.use(metricsRouter())`');
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) configError('metricsRouter options must be an object');
  const registry = options?.registry ?? globalRegistry;
  if (typeof registry !== 'object' || registry === null || typeof registry.metrics !== 'function') {
    configError('option "registry" of metricsRouter must be a prom-client Registry');
  }
  const path = options?.path ?? (process.env.DYN_HTTP_SVC_METRICS_PATH || '/metrics');
  if (typeof path !== 'string' || !path.startsWith('/')) configError(`metricsRouter path must start with "/" (got ${String(path)})`);
  if (options?.auth !== undefined && (options.auth === null || typeof options.auth !== 'object')) {
    configError('auth needs { bearerToken } or { username, password }');
  }
  const authorized = options?.auth === undefined ? undefined : checkCredentials(options.auth);
  const aggregator = options?.cluster === true ? new AggregatorRegistry() : undefined;

  const router = Router();
  router.get(path, (req: Request, res: Response, next: NextFunction) => {
    if (authorized !== undefined && !authorized(req.headers.authorization)) {
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', 'bearerToken' in (options?.auth ?? {}) ? 'Bearer realm="metrics"' : 'Basic realm="metrics"');
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('unauthorized\n');
      return;
    }
    const render = aggregator ? aggregator.clusterMetrics() : registry.metrics();
    render.then(
      (text) => {
        res.setHeader('Content-Type', aggregator ? aggregator.contentType : registry.contentType);
        res.end(text);
      },
      (error: unknown) => next(error),
    );
  });
  return router;
}

/**
 * In a cluster worker: answer the primary's metric requests with this registry (prom-client's
 * `AggregatorRegistry` installs that listener when it is constructed; without it, scrapes time out).
 */
export function enableClusterWorkerMetrics(registry: Registry = globalRegistry): void {
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
}
