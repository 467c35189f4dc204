import type { IncomingMessage, ServerResponse } from 'node:http';
import { AggregatorRegistry, register as globalRegistry } from 'prom-client';
import type { Registry } from 'prom-client';
import { checkCredentials } from './scrape-auth';
import type { MetricsAuth } from './scrape-auth';
import { configError, shown } from './errors';
import { pathOf } from './labels';
import { looksLikeRequest } from './options';
import type { MetricsRegistry } from './option-types';

export interface MetricsRouterOptions {
  /**
   * Registry to serve (Prometheus text or OpenMetrics).
   * @defaultValue prom-client's global `register`
   */
  registry?: MetricsRegistry | undefined;
  /**
   * Path of the metrics endpoint, relative to where the handler is mounted.
   * @defaultValue `process.env.DYN_HTTP_SVC_METRICS_PATH`, else `/metrics`
   */
  path?: string | undefined;
  /**
   * Require credentials (compared in constant time); a scrape without them gets 401.
   * @defaultValue none: anyone who reaches the path can read the metrics
   */
  auth?: MetricsAuth | undefined;
  /**
   * Serve the sum over all Node cluster workers (prom-client's `AggregatorRegistry`). Mount this router in the
   * primary process; each worker calls `enableClusterWorkerMetrics()`.
   * @defaultValue false
   */
  cluster?: boolean | undefined;
}

/**
 * A `(req, res, next)` handler on Node's own request and response: Express `app.use()`, Connect, NestJS
 * `app.use()`, Fastify through `@fastify/middie`, or `http.createServer()` itself (without `next`, other paths
 * get 404).
 */
export type MetricsHandler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

const KNOWN_ROUTER_OPTIONS: ReadonlySet<string> = new Set(['registry', 'path', 'auth', 'cluster'] satisfies (keyof MetricsRouterOptions)[]);

function notFound(res: ServerResponse): void {
  res.statusCode = 404;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end('not found\n');
}

/**
 * A handler serving `GET <path>` (and `HEAD`) in the registry's own content type (Prometheus text or OpenMetrics,
 * whichever the registry was created with) and passing every other request to `next`. It needs no web framework:
 * it reads Node's `req.url`, so under a mount point (`app.use('/internal', metricsRouter())`) the path is relative
 * to it, as with an Express router.
 */
export function metricsRouter(options?: MetricsRouterOptions): MetricsHandler {
  if (typeof options === 'function' || looksLikeRequest(options)) {
    configError('`app.use(metricsRouter)` should be `app.use(metricsRouter())`');
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) configError('metricsRouter options must be an object');
  for (const key of Object.keys(options ?? {})) {
    if (!KNOWN_ROUTER_OPTIONS.has(key)) configError(`unknown metricsRouter option "${key}"; known options are ${[...KNOWN_ROUTER_OPTIONS].join(', ')}`);
  }
  const registry = options?.registry ?? globalRegistry;
  if (typeof registry !== 'object' || registry === null || typeof registry.metrics !== 'function') {
    configError('option "registry" of metricsRouter must be a prom-client Registry');
  }
  const path = options?.path ?? (process.env.DYN_HTTP_SVC_METRICS_PATH || '/metrics');
  const pathFrom = options?.path === undefined ? 'DYN_HTTP_SVC_METRICS_PATH' : 'metricsRouter path';
  if (typeof path !== 'string' || !path.startsWith('/')) configError(`${pathFrom} must start with "/" (got ${shown(path)})`);
  // A request's path is matched without its query string or fragment, so a path holding either would never match.
  if (/[?#]/.test(path)) configError(`${pathFrom} is matched without a query string or fragment: drop them (got ${shown(path)})`);
  if (options?.cluster !== undefined && typeof options.cluster !== 'boolean') configError(`metricsRouter option "cluster" must be true or false (got ${shown(options.cluster)})`);
  if (options?.auth !== undefined && (options.auth === null || typeof options.auth !== 'object')) {
    configError('auth needs { bearerToken } or { username, password }');
  }
  const authorized = options?.auth === undefined ? undefined : checkCredentials(options.auth);
  const challenge = options?.auth !== undefined && 'bearerToken' in options.auth ? 'Bearer realm="metrics"' : 'Basic realm="metrics"';
  const aggregator = options?.cluster === true ? new AggregatorRegistry() : undefined;
  // As an Express router matched it: case-insensitive, with or without one trailing slash.
  const wanted = (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path).toLowerCase();

  return function metricsHandler(req, res, next) {
    const requested = pathOf(req.url).toLowerCase();
    const matches = (req.method === 'GET' || req.method === 'HEAD') && (requested === wanted || requested === `${wanted}/`);
    if (!matches) {
      if (next) next();
      else notFound(res);
      return;
    }
    if (authorized !== undefined && !authorized(req.headers.authorization)) {
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', challenge);
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('unauthorized\n');
      return;
    }
    // A registry whose metrics() throws or returns no promise fails the scrape, never the server.
    const render = Promise.resolve().then(() => (aggregator ? aggregator.clusterMetrics() : registry.metrics()));
    render.then(
      (text) => {
        res.setHeader('Content-Type', aggregator ? aggregator.contentType : registry.contentType);
        res.end(text);
      },
      (error: unknown) => {
        if (next) {
          next(error);
          return;
        }
        res.statusCode = 500;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`could not collect the metrics: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  };
}

/**
 * In a cluster worker: answer the primary's metric requests with this registry (prom-client's
 * `AggregatorRegistry` installs that listener when it is constructed; without it, scrapes time out).
 */
export function enableClusterWorkerMetrics(registry: MetricsRegistry = globalRegistry): void {
  AggregatorRegistry.setRegistries([registry as Registry]);
  new AggregatorRegistry();
}
