import { Router } from 'express';
import type { Request, Response } from 'express';
import { register as globalRegistry } from 'prom-client';
import type { Registry } from 'prom-client';

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
}

/** An Express router serving `GET <path>` in the registry's own content type. */
export function metricsRouter(options?: MetricsRouterOptions): Router {
  if (typeof options === 'function') {
    throw new TypeError('express-dynamo-metrics: `app.use(metricsRouter)` should be `app.use(metricsRouter())`');
  }
  const registry = options?.registry ?? globalRegistry;
  if (typeof registry !== 'object' || registry === null || typeof registry.metrics !== 'function') {
    throw new TypeError('express-dynamo-metrics: option "registry" of metricsRouter must be a prom-client Registry');
  }
  const path = options?.path ?? (process.env.DYN_HTTP_SVC_METRICS_PATH || '/metrics');
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`express-dynamo-metrics: metricsRouter path must start with "/" (got ${String(path)})`);
  }

  const router = Router();
  router.get(path, (_req: Request, res: Response) => {
    registry.metrics().then(
      (text) => {
        res.setHeader('Content-Type', registry.contentType);
        res.end(text);
      },
      (error: unknown) => {
        res.statusCode = 500;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`metrics collection failed: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  });
  return router;
}
