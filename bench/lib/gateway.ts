import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Registry } from 'prom-client';
import type * as Lib from '../../lib';
import { answerHarness, listenForBench, newCounters } from './server';
import { baselineLibDir, loadLibModule } from './server-configs';
import type { StartedServer } from './server';

/**
 * A proxy gateway under test, as most users run the middleware: Express 5 and http-proxy-middleware 3 in front of
 * a separate upstream process (the bench server, `bare`), mounted as the README's proxy recipe says, with no body
 * parser. Run as its own process (`tsx bench/lib/gateway.ts <config> <upstream port>`); it answers the harness
 * like the bench server does. Its `/__cpu` reports no chunks: the gateway never writes an event itself, so the
 * harness counts events at the upstream.
 *
 * Unlike a handler that writes each event, the gateway writes what it reads from the upstream socket: several
 * events, or an event cut in two, per write, depending on how far the gateway lags behind the upstream.
 */

export const GATEWAY_CONFIGS = ['bare', 'dynamo', 'dynamoBaseline'] as const;
export type GatewayConfig = (typeof GATEWAY_CONFIGS)[number];

export function isGatewayConfig(value: unknown): value is GatewayConfig {
  return typeof value === 'string' && (GATEWAY_CONFIGS as readonly string[]).includes(value);
}

export async function startGateway(config: GatewayConfig, upstreamPort: number, port = 0): Promise<StartedServer> {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  if (config !== 'bare') {
    const dir = config === 'dynamoBaseline' ? baselineLibDir() : process.env.BENCH_LIB_DIR;
    const { dynamoMetrics, metricsRouter } = await loadLibModule<typeof Lib>('index', dir);
    const registry = new Registry();
    app.use(dynamoMetrics({ registry }));
    app.use(metricsRouter({ registry }));
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });
  app.use(
    '/v1',
    createProxyMiddleware<IncomingMessage, ServerResponse>({
      target: `http://127.0.0.1:${upstreamPort}/v1`,
      agent,
      proxyTimeout: 120_000,
      on: {
        proxyRes: (proxyRes, _req, res) => proxyRes.on('aborted', () => res.destroy()),
        error: (_error, _req, res) => {
          if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end();
          else res.destroy();
        },
      },
    }),
  );
  return listenForBench(app, newCounters(), new Set(), port);
}

async function main(): Promise<void> {
  const config = process.argv[2] ?? 'bare';
  const upstreamPort = Number(process.argv[3]);
  if (!isGatewayConfig(config)) throw new Error(`unknown gateway config "${config}"; use one of ${GATEWAY_CONFIGS.join(', ')}`);
  if (!Number.isInteger(upstreamPort) || upstreamPort <= 0) throw new Error('usage: gateway.ts <config> <upstream port>');
  answerHarness(await startGateway(config, upstreamPort, Number(process.env.BENCH_PORT) || 0), `gateway ${config}`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
