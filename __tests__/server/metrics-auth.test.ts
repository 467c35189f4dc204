/**
 * A protected /metrics: `metricsRouter({ auth })` with a bearer token or basic auth answers 401 (with
 * WWW-Authenticate) without or with wrong credentials and 200 with the right ones; bad auth options throw at
 * creation; and the separate-metrics-port recipe (a second app on another port sharing the registry) works.
 */
import http from 'node:http';
import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import type { MetricsAuth } from '../../lib';
import { closedAfterEach, listen } from '../support/http';
import type { RunningServer } from '../support/http';
import { P } from '../support/registry-values';
import { chatEvent } from '../support/streams';


function get(port: number, path: string, authorization?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false, headers: authorization === undefined ? {} : { authorization } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }));
      })
      .on('error', reject);
  });
}

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const servers = closedAfterEach();

async function metricsApp(auth: MetricsAuth): Promise<RunningServer> {
  const registry = new Registry();
  const app = express();
  app.use(dynamoMetrics({ registry }));
  app.use(metricsRouter({ registry, auth }));
  const server = await listen(app);
  servers.push(server);
  return server;
}

describe('bearer token', () => {
  const token = 's3cr3t-token-with-some-length';

  test.each([
    ['no Authorization header', undefined],
    ['a wrong token', 'Bearer wrong'],
    ['the token with a suffix', `Bearer ${token}x`],
    ['a prefix of the token', `Bearer ${token.slice(0, -1)}`],
    ['an empty bearer', 'Bearer '],
    ['the token as basic auth', basic('user', token)],
    ['the token without the scheme', token],
  ])('401 with %s, and a Bearer challenge', async (_label, authorization) => {
    const server = await metricsApp({ bearerToken: token });
    const response = await get(server.port, '/metrics', authorization);
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer\b/);
    expect(response.body).not.toContain(P);
  });

  test.each([`Bearer ${token}`, `bearer ${token}`, `Bearer   ${token}`])('200 with %j', async (authorization) => {
    const server = await metricsApp({ bearerToken: token });
    const response = await get(server.port, '/metrics', authorization);
    expect(response.status).toBe(200);
    expect(response.body).toContain(`${P}_output_tokens_total`);
  });
});

describe('basic auth', () => {
  const auth = { username: 'prometheus', password: 'pä55:word' };

  test.each([
    ['no Authorization header', undefined],
    ['a wrong password', basic('prometheus', 'nope')],
    ['a wrong user', basic('grafana', auth.password)],
    ['not base64', 'Basic %%%%'],
    ['a bearer token', `Bearer ${auth.password}`],
    ['an empty basic', 'Basic '],
  ])('401 with %s, and a Basic challenge', async (_label, authorization) => {
    const server = await metricsApp(auth);
    const response = await get(server.port, '/metrics', authorization);
    expect(response.status).toBe(401);
    expect(response.headers['www-authenticate']).toMatch(/^Basic\b/);
    expect(response.body).not.toContain(P);
  });

  test('200 with the right user and password (a colon in the password is fine)', async () => {
    const server = await metricsApp(auth);
    const response = await get(server.port, '/metrics', basic(auth.username, auth.password));
    expect(response.status).toBe(200);
    expect(response.body).toContain(`${P}_requests_total`);
  });
});

describe('bad auth options throw at creation', () => {
  test.each([
    ['an empty bearer token', { bearerToken: '' }],
    ['a numeric bearer token', { bearerToken: 42 }],
    ['a username without a password', { username: 'u' }],
    ['an empty password', { username: 'u', password: '' }],
    ['an empty object', {}],
    ['null', null],
    ['a string', 'token'],
  ])('%s', (_label, auth) => {
    expect(() => metricsRouter({ registry: new Registry(), auth: auth as unknown as MetricsAuth })).toThrow(TypeError);
    expect(() => metricsRouter({ registry: new Registry(), auth: auth as unknown as MetricsAuth })).toThrow(/auth/);
  });
});

test('separate metrics port: the LLM app has no /metrics, a second app on another port serves the shared registry', async () => {
  const registry = new Registry();
  const llm = express();
  llm.use(dynamoMetrics({ registry, countTokens: (text) => Array.from(text).length }));
  llm.post('/v1/chat/completions', (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write(chatEvent('m', 'hello'));
    res.write(chatEvent('m', undefined, 'stop'));
    res.end('data: [DONE]\n\n');
  });
  const metrics = express();
  metrics.use(metricsRouter({ registry, auth: { bearerToken: 'scrape-me' } }));
  const llmServer = await listen(llm);
  servers.push(llmServer);
  const metricsServer = await listen(metrics);
  servers.push(metricsServer);

  await new Promise<void>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: llmServer.port, path: '/v1/chat/completions', method: 'POST', agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end('{}');
  });

  expect((await get(llmServer.port, '/metrics')).status).toBe(404);
  expect((await get(metricsServer.port, '/metrics')).status).toBe(401);
  const scraped = await get(metricsServer.port, '/metrics', 'Bearer scrape-me');
  expect(scraped.status).toBe(200);
  expect(scraped.headers['content-type']).toBe(registry.contentType);
  expect(scraped.body).toContain(`${P}_output_tokens_total{model="m"} 5`);
  expect(scraped.body).toMatch(new RegExp(`${P}_requests_total\\{[^}]*status="success"[^}]*\\} 1`));
});
