/**
 * `/metrics` credentials as a deployment supplies them: a secret read from a file ends in a newline, a username
 * may carry a colon, a client may send sloppy base64. Refused at creation, or refused at the scrape, never a
 * silent mismatch that answers every scrape with 401.
 */
import http from 'node:http';
import express from 'express';
import { Registry } from 'prom-client';
import { metricsRouter } from '../lib';
import type { MetricsAuth } from '../lib';
import { closedAfterEach, listen } from './support/http';

function scrape(port: number, authorization: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false, headers: authorization === undefined ? {} : { authorization } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

const servers = closedAfterEach();

async function protectedMetrics(auth: MetricsAuth): Promise<number> {
  const app = express();
  app.use(metricsRouter({ registry: new Registry(), auth }));
  const served = await listen(app);
  servers.push(served);
  return served.port;
}

describe('metricsRouter auth options', () => {
  it.each([['s3cret\n'], [' s3cret'], ['s3cret\r\n'], ['s3cr\u0000et']])('refuses bearerToken %j at creation, naming the option', (token) => {
    expect(() => metricsRouter({ registry: new Registry(), auth: { bearerToken: token } })).toThrow(/auth\.bearerToken/);
    expect(() => metricsRouter({ registry: new Registry(), auth: { bearerToken: token } })).toThrow(TypeError);
  });

  it('refuses a bearer token and basic-auth credentials given together (which would win is a guess)', () => {
    expect(() => metricsRouter({ registry: new Registry(), auth: { bearerToken: 't', username: 'u', password: 'p' } as never })).toThrow(/not both/);
  });

  it('refuses a basic-auth username containing ":" and a password with a trailing newline', () => {
    expect(() => metricsRouter({ registry: new Registry(), auth: { username: 'a:b', password: 'pw' } })).toThrow(/auth\.username must not contain ":"/);
    expect(() => metricsRouter({ registry: new Registry(), auth: { username: 'prom', password: 'pw\n' } })).toThrow(/auth\.password/);
  });
});

describe('scrapes', () => {
  it('accepts the bearer token a client sends and nothing that merely decodes close to it', async () => {
    const port = await protectedMetrics({ bearerToken: 's3cret' });
    expect(await scrape(port, 'Bearer s3cret')).toBe(200);
    expect(await scrape(port, 'bearer   s3cret')).toBe(200);
    expect(await scrape(port, 'Bearer s3cre')).toBe(401);
    expect(await scrape(port, 'Bearer s3cret x')).toBe(401);
  });

  it('accepts a token beyond ASCII as Prometheus and curl send it, in UTF-8, for bearer and basic auth alike', async () => {
    const token = 'pässwörd-ü-密码';
    // Node's client writes each character of a header value as one byte: these characters are the UTF-8 bytes.
    const wire = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');
    const bearer = await protectedMetrics({ bearerToken: token });
    expect(await scrape(bearer, `Bearer ${wire(token)}`)).toBe(200);
    expect(await scrape(bearer, `Bearer ${wire('passwörd-ü-密码')}`)).toBe(401);
    const basic = await protectedMetrics({ username: 'prom', password: token });
    expect(await scrape(basic, `Basic ${Buffer.from(`prom:${token}`).toString('base64')}`)).toBe(200);
  });

  it('decodes basic credentials strictly: base64 with junk characters is refused', async () => {
    const port = await protectedMetrics({ username: 'prom', password: 'pa:ss' });
    const encoded = Buffer.from('prom:pa:ss').toString('base64');
    expect(await scrape(port, `Basic ${encoded}`)).toBe(200);
    // Buffer.from(…, 'base64') skips characters it does not know: these decoded to the right credentials before.
    expect(await scrape(port, `Basic ${encoded.slice(0, 4)}!!${encoded.slice(4)}`)).toBe(401);
    expect(await scrape(port, `Basic ${encoded.slice(0, 4)}.${encoded.slice(4)}`)).toBe(401);
    expect(await scrape(port, `Basic ${encoded.replace(/=+$/, '')}`)).toBe(encoded.endsWith('=') ? 401 : 200);
    expect(await scrape(port, `Basic ${Buffer.from('prom:pa:sx').toString('base64')}`)).toBe(401);
  });
});
