import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STRICT_CONSUMER, typeCheck } from '../support/type-check';

/**
 * The packed tarball, loaded the way users load it: `npm pack` of the built package, installed into a CommonJS and
 * an ESM consumer that bring their own express and prom-client (peer dependencies, linked from this repo's
 * node_modules, so no registry is needed), each serving a real streamed completion and reading the counter back.
 */
const ROOT = path.resolve(__dirname, '..', '..');

let work: string;
let tarball: string;

function run(command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
}

const CONSUMER_BODY = `
const registry = new Registry();
const app = express();
app.use(express.json());
app.use(dynamoMetrics({ registry }));
app.use(metricsRouter({ registry }));
const chunk = (body) => 'data: ' + JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'packed-model', ...body }) + '\\n\\n';
app.post('/v1/chat/completions', (req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  res.write(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }));
  res.write(chunk({ choices: [{ index: 0, delta: { content: 'Hello there' }, finish_reason: null }] }));
  res.write(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
  res.write(chunk({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 } }));
  res.end('data: [DONE]\\n\\n');
});
const server = http.createServer(app).listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  const body = JSON.stringify({ model: 'packed-model', stream: true, messages: [] });
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
    res.resume();
    res.on('end', () => {
      setTimeout(() => {
        http.get({ host: '127.0.0.1', port, path: '/metrics' }, (metrics) => {
          let text = '';
          metrics.setEncoding('utf8');
          metrics.on('data', (part) => { text += part; });
          metrics.on('end', () => {
            const line = text.split('\\n').find((l) => l.startsWith('dynamo_frontend_output_tokens_total{model="packed-model"}'));
            console.log(JSON.stringify({
              dynamoMetrics: typeof dynamoMetrics,
              metricsRouter: typeof metricsRouter,
              contentType: metrics.headers['content-type'],
              outputTokensLine: line,
            }));
            server.close();
          });
        });
      }, 50);
    });
  });
  req.end(body);
});
`;

/** No framework at all: Node's http server, the middleware and the metrics handler, and express not installed. */
const PLAIN_NODE = `'use strict';
const http = require('node:http');
const { Registry } = require('prom-client');
const { dynamoMetrics, metricsRouter } = require('express-dynamo-metrics');
let expressFound = true;
try { require.resolve('express'); } catch { expressFound = false; }
const registry = new Registry();
const observe = dynamoMetrics({ registry });
const serveMetrics = metricsRouter({ registry });
const chunk = (body) => 'data: ' + JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'packed-model', ...body }) + '\\n\\n';
const server = http.createServer((req, res) => {
  observe(req, res, () => {
    if (req.url !== '/v1/chat/completions') return serveMetrics(req, res);
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(chunk({ choices: [{ index: 0, delta: { content: 'Hello there' }, finish_reason: null }] }));
    res.write(chunk({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 } }));
    res.end('data: [DONE]\\n\\n');
  });
}).listen(0, '127.0.0.1', async () => {
  const base = 'http://127.0.0.1:' + server.address().port;
  await (await fetch(base + '/v1/chat/completions', { method: 'POST', body: '{"model":"packed-model","stream":true}' })).text();
  const metrics = await fetch(base + '/metrics');
  const text = await metrics.text();
  const missing = await fetch(base + '/nothing-here');
  console.log(JSON.stringify({
    expressFound,
    outputTokensLine: text.split('\\n').find((l) => l.startsWith('dynamo_frontend_output_tokens_total{model="packed-model"}')),
    otherPathStatus: missing.status,
  }));
  server.close();
});
`;

const CJS = `'use strict';
const http = require('node:http');
const express = require('express');
const { Registry } = require('prom-client');
const { dynamoMetrics, metricsRouter } = require('express-dynamo-metrics');
${CONSUMER_BODY}`;

const ESM = `import http from 'node:http';
import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from 'express-dynamo-metrics';
${CONSUMER_BODY}`;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'edm-pack-'));
  // What a fresh clone holds: the files git tracks (plus new ones not ignored), without dist/. Packed with its
  // scripts on, so `prepack` has to build dist/ itself; the repo's own dist/ (used by others) is left alone.
  const clone = path.join(work, 'clone');
  const files = run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], ROOT).split('\0').filter(Boolean);
  for (const file of files) {
    if (!fs.existsSync(path.join(ROOT, file))) continue; // deleted in the working tree
    fs.mkdirSync(path.dirname(path.join(clone, file)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, file), path.join(clone, file));
  }
  expect(fs.existsSync(path.join(clone, 'dist'))).toBe(false);
  // `npm ci` would install the same dev dependencies; linking them keeps the test off the network.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
  const output = run('npm', ['pack', '--pack-destination', work, '--json', '--loglevel=error'], clone);
  // prepack's own output comes first; the report is the JSON array at the end.
  const packed = JSON.parse(output.slice(output.search(/^\[/m))) as { filename: string }[];
  tarball = path.join(work, (packed[0] as { filename: string }).filename);
}, 180_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

function consumer(name: string, type: 'commonjs' | 'module', file: string, source: string, links: string[] = ['express', 'prom-client']): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true, type }));
  // No registry access: the tarball has no dependencies, and its peers are not fetched.
  run('npm', ['install', tarball, '--offline', '--legacy-peer-deps', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock'], dir);
  for (const peer of links.filter((link) => fs.existsSync(path.join(ROOT, 'node_modules', link)))) {
    fs.mkdirSync(path.dirname(path.join(dir, 'node_modules', peer)), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules', peer), path.join(dir, 'node_modules', peer), 'dir');
  }
  fs.writeFileSync(path.join(dir, file), source);
  return dir;
}

/** skipLibCheck off, so that the shipped declarations are checked under the consumer's settings too. */
const STRICT_TS = { ...STRICT_CONSUMER, skipLibCheck: false, types: ['node'] };

const TS_PLAIN_CONSUMER = `import http from 'node:http';
import { Registry, openMetricsContentType } from 'prom-client';
import type { OpenMetricsContentType } from 'prom-client';
import { dynamoMetrics, metricsRouter } from 'express-dynamo-metrics';
import type { DynamoMetricsOptions } from 'express-dynamo-metrics';

const registry = new Registry<OpenMetricsContentType>();
registry.setContentType(openMetricsContentType);
const options: DynamoMetricsOptions = {
  registry,
  prefix: process.env.METRICS_PREFIX,
  endpoint: (req) => (req.url?.startsWith('/generate') ? 'generate' : undefined),
};
const observe = dynamoMetrics(options);
const serveMetrics = metricsRouter({ registry, path: process.env.METRICS_PATH });
http.createServer((req, res) => observe(req, res, () => serveMetrics(req, res))).listen(0);
`;

interface ConsumerReport {
  dynamoMetrics: string;
  metricsRouter: string;
  contentType: string;
  outputTokensLine: string | undefined;
}

const TS_CONSUMER = `import express from 'express';
import type { Request } from 'express';
import { Registry } from 'prom-client';
import type { OpenMetricsContentType } from 'prom-client';
import { dynamoMetrics, metricsRouter } from 'express-dynamo-metrics';
import type { DynamoMetricsOptions, MetricsRouterOptions } from 'express-dynamo-metrics';

const registry = new Registry();
const options: DynamoMetricsOptions = {
  registry,
  prefix: 'my_gateway',
  models: ['a', 'b'],
  maxModels: 10,
  buckets: { timeToFirstToken: [0.1, 1] },
  endpoint: (req) => (req.url?.startsWith('/generate') ? 'generate' : undefined),
  countTokens: (text) => text.length,
  onError: (error) => console.error(error.code),
  maxEventBytes: 1024,
  maxBodyBytes: 4096,
};
const routerOptions: MetricsRouterOptions = { registry, path: '/metrics' };
const app = express();
app.use(express.json());
app.use(dynamoMetrics(options));
app.use(metricsRouter(routerOptions));
app.use(dynamoMetrics());
app.use(dynamoMetrics({ registry: new Registry<OpenMetricsContentType>(), prefix: process.env.METRICS_PREFIX, endpoint: (req) => req.path }));
app.use(dynamoMetrics({ endpoint: (req: Request) => (req.path.startsWith('/v1') ? req.baseUrl + req.path : undefined) }));
// @ts-expect-error maxModels is a number
dynamoMetrics({ maxModels: 'many' });
// @ts-expect-error unknown options are rejected by the type as well
dynamoMetrics({ prefx: 'x' });
export default app;
`;

describe('the packed package', () => {
  it('contains the built JavaScript and declarations, the user docs the README links to, and nothing else from the repo', () => {
    const listing = run('tar', ['-tzf', tarball], work).trim().split('\n');
    expect(listing).toContain('package/dist/index.js');
    expect(listing).toContain('package/dist/index.d.ts');
    expect(listing).toContain('package/package.json');
    const outside = listing.filter((entry) => !/^package\/(dist\/|docs\/[\w-]+\.md$|package\.json$|README(\.md)?$|LICENSE)/.test(entry));
    expect(outside).toEqual([]);
    expect(listing.filter((entry) => entry.endsWith('.ts') && !entry.endsWith('.d.ts'))).toEqual([]);
    // Every docs/*.md link of the README resolves inside the installed package.
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const linked = [...new Set([...readme.matchAll(/\]\((docs\/[\w-]+\.md)(?:#[\w-]*)?\)/g)].map((match) => `package/${match[1] as string}`))];
    expect(linked.length).toBeGreaterThan(3);
    expect(linked.filter((doc) => !listing.includes(doc))).toEqual([]);
  });

  it.each([
    ['CommonJS require', 'cjs-consumer', 'commonjs', 'index.js', CJS],
    ['ESM import', 'esm-consumer', 'module', 'index.mjs', ESM],
  ] as const)(
    'loads from a %s consumer and counts the tokens of a real streamed response',
    (_how, name, type, file, source) => {
      const dir = consumer(name, type, file, source);
      const installed = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'express-dynamo-metrics', 'package.json'), 'utf8')) as { name: string };
      expect(installed.name).toBe('express-dynamo-metrics');
      const output = run(process.execPath, [file], dir).trim().split('\n').pop() ?? '';
      const report = JSON.parse(output) as ConsumerReport;
      expect(report.dynamoMetrics).toBe('function');
      expect(report.metricsRouter).toBe('function');
      expect(report.contentType).toMatch(/^text\/plain/);
      // The final usage says 3 completion tokens: the counter's total for the request equals it.
      expect(report.outputTokensLine).toBe('dynamo_frontend_output_tokens_total{model="packed-model"} 3');
    },
    120_000,
  );

  it('runs on plain node:http with express not installed (express is an optional peer)', () => {
    const dir = consumer('plain-node-consumer', 'commonjs', 'index.js', PLAIN_NODE, ['prom-client']);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', 'express-dynamo-metrics', 'package.json'), 'utf8')) as {
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    expect(manifest.peerDependenciesMeta?.express?.optional).toBe(true);
    const report = JSON.parse(run(process.execPath, ['index.js'], dir).trim().split('\n').pop() ?? '') as Record<string, unknown>;
    expect(report).toEqual({
      expressFound: false,
      outputTokensLine: 'dynamo_frontend_output_tokens_total{model="packed-model"} 3',
      otherPathStatus: 404,
    });
  }, 120_000);

  it('type-checks a strict TypeScript consumer on plain node:http without @types/express', () => {
    const dir = consumer('ts-plain-consumer', 'commonjs', 'index.ts', TS_PLAIN_CONSUMER, ['prom-client', '@types/node', 'undici-types']);
    expect(fs.existsSync(path.join(dir, 'node_modules', '@types', 'express'))).toBe(false);
    expect(typeCheck(dir, STRICT_TS, ['index.ts'])).toBe('');
  }, 120_000);

  it('type-checks a TypeScript consumer against the packed declarations', () => {
    const dir = consumer('ts-consumer', 'commonjs', 'index.ts', TS_CONSUMER, ['express', 'prom-client', '@types/express', '@types/express-serve-static-core', '@types/serve-static', '@types/body-parser', '@types/qs', '@types/range-parser', '@types/send', '@types/http-errors', '@types/connect', '@types/node']);
    expect(typeCheck(dir, STRICT_TS, ['index.ts'])).toBe('');
  }, 120_000);
});
