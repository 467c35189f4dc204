/**
 * The README's setups, run exactly as written: the fenced code of "Three lines" and of each recipe is taken from
 * README.md, compiled and executed, then served and exercised over real sockets. A README edit that breaks a
 * recipe fails here. The only thing the harness changes is where things listen and connect: `listen()` binds a
 * free port on 127.0.0.1, the proxy's target is this test's upstream, and a middleware created without a
 * registry gets a fresh one instead of prom-client's global.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import compression from 'compression';
import express from 'express';
import type { Express } from 'express';
import * as proxyMiddleware from 'http-proxy-middleware';
import * as promClient from 'prom-client';
import { Registry } from 'prom-client';
import ts from 'typescript';
import * as lib from '../../lib';
import { eventually, listen } from '../support/http';
import type { RunningServer } from '../support/http';
import { everyGaugeSeriesZero, P, settled, total } from '../support/registry-values';
import { chatEvent } from '../support/streams';

const README = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

/** The first ```ts block under a heading (up to the next heading of any level). */
function recipe(heading: string): string {
  const start = README.indexOf(`\n${heading}\n`);
  if (start === -1) throw new Error(`README has no "${heading}" section`);
  const rest = README.slice(start + heading.length + 2);
  const section = rest.slice(0, rest.search(/\n#{1,6} /) === -1 ? undefined : rest.search(/\n#{1,6} /));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (match === null) throw new Error(`README's "${heading}" has no ts code block`);
  return match[1] as string;
}

interface Ran {
  /** Top-level bindings the recipe declared. */
  scope: Record<string, unknown>;
  /** The registry given to middleware created without one. */
  registry: Registry;
  /** Servers the recipe started with `listen()`, in order. */
  listening: http.Server[];
}

const started: http.Server[] = [];
const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (servers.length > 0) await servers.pop()?.close();
  while (started.length > 0) {
    const server = started.pop() as http.Server;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** Compiles and runs a recipe; `upstream` is where a proxy target on 127.0.0.1:8000 is sent instead. */
async function run(code: string, names: string[], upstream?: string): Promise<Ran> {
  const registry = new Registry();
  const listening: http.Server[] = [];
  const packageForTest = {
    ...lib,
    dynamoMetrics: (options?: Parameters<typeof lib.dynamoMetrics>[0]) => lib.dynamoMetrics({ registry, ...options }),
    metricsRouter: (options?: Parameters<typeof lib.metricsRouter>[0]) => lib.metricsRouter({ registry, ...options }),
  };
  const expressForTest = Object.assign((...args: unknown[]) => {
    const app = (express as unknown as (...a: unknown[]) => Express)(...args);
    app.listen = ((..._args: unknown[]) => {
      const server = http.createServer(app).listen(0, '127.0.0.1');
      listening.push(server);
      started.push(server);
      return server;
    }) as unknown as Express['listen'];
    return app;
  }, express);
  const proxyForTest = {
    ...proxyMiddleware,
    createProxyMiddleware: (options: proxyMiddleware.Options) =>
      proxyMiddleware.createProxyMiddleware({ ...options, target: String(options.target).replace('http://127.0.0.1:8000', upstream ?? 'http://127.0.0.1:1') }),
  };
  const modules: Record<string, unknown> = {
    'express-dynamo-metrics': packageForTest,
    express: expressForTest,
    'http-proxy-middleware': proxyForTest,
    compression,
    'prom-client': promClient,
  };
  const exposed = names.map((name) => `${name}: typeof ${name} === 'undefined' ? undefined : ${name}`).join(', ');
  const js = ts.transpileModule(`${code}\n;__expose({ ${exposed} });`, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  }).outputText;
  const scope: Record<string, unknown> = {};
  const requireForRecipe = (name: string): unknown => {
    if (!(name in modules)) throw new Error(`the recipe imports ${name}, which this test does not provide`);
    return modules[name];
  };
  const module = { exports: {} };
  new Function('require', 'module', 'exports', '__expose', js)(requireForRecipe, module, module.exports, (values: Record<string, unknown>) => Object.assign(scope, values));
  await Promise.all(listening.map((server) => (server.listening ? undefined : new Promise((resolve) => server.once('listening', resolve)))));
  return { scope, registry, listening };
}

const portOf = (server: http.Server): number => (server.address() as AddressInfo).port;

function post(port: number, urlPath: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; broken: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), broken: false }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), broken: true }));
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error('no answer within 5 s (the request hangs)')));
    req.on('error', reject);
    req.end(body);
  });
}

const TEXTS = ['Hello', ' there', ' 世界'];
function streamChat(model: string, res: http.ServerResponse, dieAfter?: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  TEXTS.forEach((text, i) => {
    if (dieAfter === undefined || i < dieAfter) res.write(chatEvent(model, text));
  });
  if (dieAfter !== undefined) {
    setTimeout(() => res.destroy(), 20);
    return;
  }
  res.write(chatEvent(model, undefined, 'stop'));
  res.end('data: [DONE]\n\n');
}

describe('README recipes, as written', () => {
  it('Three lines: counts the model from the parsed body, and body-parser rejections reach the metrics', async () => {
    const { scope, registry } = await run(recipe('## Three lines'), ['app']);
    const app = scope.app as Express;
    app.post('/v1/chat/completions', (req, res) => streamChat((req.body as { model: string }).model, res));
    const served = await listen(app);
    servers.push(served);
    expect((await post(served.port, '/v1/chat/completions', JSON.stringify({ model: 'llama', stream: true }))).status).toBe(200);
    expect((await post(served.port, '/v1/chat/completions', '{"model": "llama", "stream": tru')).status).toBe(400);
    await settled(registry);
    expect(await total(registry, 'output_tokens_total', { model: 'llama' })).toBe(3);
    expect(await total(registry, 'requests_total', { model: 'llama', status: 'success', request_type: 'stream' })).toBe(1);
    expect(await total(registry, 'requests_total', { error_type: 'validation' })).toBe(1);
    // The recipe's metricsRouter serves the same registry.
    const text = await new Promise<string>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port: served.port, path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.on('data', (part: Buffer) => (body += part.toString()));
        res.on('end', () => resolve(body));
      }).on('error', reject),
    );
    expect(text).toContain(`${P}_output_tokens_total{model="llama"} 3`);
  });

  describe('Proxy gateway', () => {
    async function gateway(upstreamHandler: http.RequestListener): Promise<{ port: number; registry: Registry; upstreamBodies: string[] }> {
      const upstreamBodies: string[] = [];
      const upstream: RunningServer = await listen((req, res) => {
        let body = '';
        req.on('data', (part: Buffer) => (body += part.toString()));
        req.on('end', () => {
          upstreamBodies.push(body);
          upstreamHandler(req, res);
        });
      });
      servers.push(upstream);
      const { listening, registry } = await run(recipe('### Proxy gateway'), [], upstream.url);
      expect(listening).toHaveLength(1);
      return { port: portOf(listening[0] as http.Server), registry, upstreamBodies };
    }

    it('forwards the body express.json() already read (no hang) and counts the stream', async () => {
      const { port, registry, upstreamBodies } = await gateway((_req, res) => streamChat('upstream-model', res));
      const response = await post(port, '/v1/chat/completions', JSON.stringify({ model: 'asked', stream: true, messages: [{ role: 'user', content: 'hi' }] }));
      expect(response.status).toBe(200);
      expect(response.body.toString()).toContain('[DONE]');
      expect(JSON.parse(upstreamBodies[0] as string)).toEqual({ model: 'asked', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      await settled(registry);
      expect(await total(registry, 'output_tokens_total')).toBe(3);
      expect(await total(registry, 'requests_total', { status: 'success' })).toBe(1);
    });

    it('an upstream that dies mid-stream breaks the client response and is counted as internal, not left in flight', async () => {
      const { port, registry } = await gateway((_req, res) => streamChat('m', res, 2));
      const response = await post(port, '/v1/chat/completions', JSON.stringify({ model: 'm', stream: true }));
      expect(response.broken).toBe(true);
      await settled(registry);
      expect(await total(registry, 'requests_total', { error_type: 'internal' })).toBe(1);
      expect(await total(registry, 'output_tokens_total')).toBe(2);
      expect(await total(registry, 'disconnected_clients')).toBe(0);
      expect(await everyGaugeSeriesZero(registry)).toBe(true);
    });
  });

  it('Compression: a gzip stream is counted', async () => {
    const { scope, registry } = await run(recipe('### Compression'), ['app']);
    const app = scope.app as Express;
    app.post('/v1/chat/completions', (_req, res) => streamChat('m', res));
    const served = await listen(app);
    servers.push(served);
    const response = await post(served.port, '/v1/chat/completions', '{"model":"m","stream":true}', { 'accept-encoding': 'gzip' });
    expect(zlib.gunzipSync(response.body).toString()).toContain('[DONE]');
    await eventually(async () => (await total(registry, 'requests_total')) === 1);
    expect(await total(registry, 'output_tokens_total', { model: 'm' })).toBe(3);
    expect(await total(registry, 'parse_errors_total')).toBe(0);
  });

  it('Separate metrics port: the admin app serves what the public app counted', async () => {
    const { scope, listening } = await run(recipe('### Separate metrics port'), ['app', 'admin', 'registry']);
    expect(listening).toHaveLength(1);
    const admin = listening[0] as http.Server;
    const app = scope.app as Express;
    app.post('/v1/chat/completions', (_req, res) => streamChat('m', res));
    const served = await listen(app);
    servers.push(served);
    await post(served.port, '/v1/chat/completions', '{"model":"m","stream":true}');
    await settled(scope.registry as Registry);
    const text = await new Promise<string>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port: portOf(admin), path: '/metrics', agent: false }, (res) => {
        let body = '';
        res.on('data', (part: Buffer) => (body += part.toString()));
        res.on('end', () => resolve(body));
      }).on('error', reject),
    );
    expect(text).toContain(`${P}_output_tokens_total{model="m"} 3`);
  });
});
