/**
 * Faults of the connection, over real sockets: pipelined requests whose connection dies before their turn, a
 * client that leaves, and the server's own failures (an error after the head, an async handler that throws, the
 * server destroying the socket, its socket timeout). Only a client that left is `cancelled`; every request ends
 * once and every gauge comes back to 0.
 */
import type { ServerOptions } from 'node:http';
import { PassThrough, pipeline } from 'node:stream';
import type { Request, Response, NextFunction } from 'express';
import express from 'express';
import type { Registry } from 'prom-client';
import { closedAfterEach, eventually, listen } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { everyGaugeSeriesZero, settled, total } from '../support/registry-values';
import { rawClient, rawRequest, until } from '../support/sockets';
import { chatEvent } from '../support/streams';

const CHAT = '/v1/chat/completions';
const BODY = { model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] };

const servers = closedAfterEach();

/** A stream that writes one token and then stalls until the connection closes. */
function stallingStream(_req: Request, res: Response): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write(chatEvent('m', 'Hello'));
}

async function start(build: (app: express.Express) => void, options: Parameters<typeof metricsApp>[0] = { models: ['m'] }, server: ServerOptions = {}) {
  const { app, registry } = metricsApp(options);
  app.use(express.json());
  build(app);
  const served = await listen(app, server);
  servers.push(served);
  return { registry, served };
}

async function ends(registry: Registry): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const type of ['', 'cancelled', 'internal', 'response_timeout']) result[type || 'success'] = await total(registry, 'requests_total', { error_type: type });
  return result;
}

describe('pipelined requests', () => {
  it('5 connections × 20 pipelined POSTs, each closed during its first response: all 100 end, as cancelled, gauges 0', async () => {
    let handled = 0;
    const { registry, served } = await start((app) =>
      app.post(CHAT, (req, res) => {
        handled++;
        stallingStream(req, res);
      }),
    );
    const clients = await Promise.all(Array.from({ length: 5 }, () => rawClient(served.port)));
    for (const client of clients) client.socket.write(Array.from({ length: 20 }, () => rawRequest(CHAT, BODY)).join(''));
    await Promise.all(clients.map((client) => until(client.received, 'Hello')));
    await eventually(() => handled === 100);
    expect(await total(registry, 'active_requests')).toBe(100);
    for (const client of clients) client.socket.destroy();
    await Promise.all(clients.map((client) => client.closed));
    await settled(registry);
    expect(await total(registry, 'requests_started_total')).toBe(100);
    expect(await total(registry, 'requests_total')).toBe(100);
    expect(await total(registry, 'requests_total', { error_type: 'cancelled' })).toBe(100);
    expect(await total(registry, 'disconnected_clients')).toBe(100);
    expect(await everyGaugeSeriesZero(registry)).toBe(true);
  });

  it('queued requests behind one the server kills end once as cancelled, without counting a client that left', async () => {
    let handled = 0;
    const { registry, served } = await start((app) =>
      app.post(CHAT, (req, res, next: NextFunction) => {
        handled++;
        stallingStream(req, res);
        if (handled === 1) setTimeout(() => next(new Error('handler failed after the head')), 20);
      }),
    );
    const client = await rawClient(served.port);
    client.socket.write(Array.from({ length: 4 }, () => rawRequest(CHAT, BODY)).join(''));
    await client.closed;
    await settled(registry);
    expect(await total(registry, 'requests_total')).toBe(4);
    expect(await ends(registry)).toMatchObject({ internal: 1, cancelled: 3 });
    expect(await total(registry, 'disconnected_clients')).toBe(0);
    expect(await total(registry, 'model_cancellation_total')).toBe(0);
  });
});

describe('server-side failures are not clients leaving', () => {
  const notCancelled = async (registry: Registry, expected: string): Promise<void> => {
    await settled(registry);
    expect(await total(registry, 'requests_total', { error_type: expected })).toBe(1);
    expect(await total(registry, 'requests_total')).toBe(1);
    expect(await total(registry, 'disconnected_clients')).toBe(0);
    expect(await total(registry, 'model_cancellation_total')).toBe(0);
    expect(await total(registry, 'output_tokens_total')).toBe(1);
    expect(await everyGaugeSeriesZero(registry)).toBe(true);
  };

  async function oneRequest(port: number): Promise<string> {
    const client = await rawClient(port);
    client.socket.write(rawRequest(CHAT, BODY));
    await client.closed;
    return client.received();
  }

  it('next(err) after the head (Express destroys the socket) is internal', async () => {
    const { registry, served } = await start((app) =>
      app.post(CHAT, (req, res, next: NextFunction) => {
        stallingStream(req, res);
        setTimeout(() => next(new Error('failed mid-stream')), 20);
      }),
    );
    expect(await oneRequest(served.port)).toContain('Hello');
    await notCancelled(registry, 'internal');
  });

  it('an async handler that throws mid-stream (Express 5) is internal', async () => {
    const { registry, served } = await start((app) =>
      app.post(CHAT, async (req: Request, res: Response) => {
        stallingStream(req, res);
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new Error('async handler failed');
      }),
    );
    expect(await oneRequest(served.port)).toContain('Hello');
    await notCancelled(registry, 'internal');
  });

  it('req.socket.destroy() by the server is internal', async () => {
    const { registry, served } = await start((app) =>
      app.post(CHAT, (req, res) => {
        stallingStream(req, res);
        setTimeout(() => req.socket.destroy(), 20);
      }),
    );
    await oneRequest(served.port);
    await notCancelled(registry, 'internal');
  });

  it.each([
    ['res.destroy(err) with a network error code', (res: Response) => res.destroy(Object.assign(new Error('upstream reset'), { code: 'ECONNRESET' }))],
    ['stream.pipeline from an upstream that resets', (res: Response) => {
      const upstream = new PassThrough();
      pipeline(upstream, res, () => undefined);
      upstream.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    }],
    ["the server's own res.socket.end()", (res: Response) => res.socket?.end()],
    ['socket.destroy(err) with a network error code the app made up', (res: Response) => res.socket?.destroy(Object.assign(new Error('upstream reset'), { code: 'ECONNRESET' }))],
  ])('%s is internal, not the client leaving', async (_name, breakOff) => {
    const { registry, served } = await start((app) =>
      app.post(CHAT, (req, res) => {
        stallingStream(req, res);
        setTimeout(() => breakOff(res), 20);
      }),
    );
    await oneRequest(served.port);
    await notCancelled(registry, 'internal');
  });

  it('a socket timeout that fired during an earlier response on the connection does not make the next one a timeout', async () => {
    let handled = 0;
    const { registry, served } = await start((app) =>
      app.post(CHAT, (req, res) => {
        handled++;
        stallingStream(req, res);
        if (handled === 1) {
          res.setTimeout(30, () => undefined);
          setTimeout(() => res.end(chatEvent('m', undefined, 'stop') + 'data: [DONE]\n\n'), 80);
        } else {
          setTimeout(() => res.destroy(), 20);
        }
      }),
    );
    const client = await rawClient(served.port);
    client.socket.write(rawRequest(CHAT, BODY));
    await until(client.received, '[DONE]');
    client.socket.write(rawRequest(CHAT, BODY));
    await client.closed;
    await settled(registry);
    expect(await ends(registry)).toMatchObject({ success: 1, internal: 1, response_timeout: 0, cancelled: 0 });
  });

  it("Node's requestTimeout on a request whose body never came is response_timeout", async () => {
    // Node checks request timeouts every connectionsCheckingInterval (30 s by default).
    const { registry, served } = await start((app) => app.post(CHAT, stallingStream), undefined, { requestTimeout: 200, connectionsCheckingInterval: 50 });
    const client = await rawClient(served.port);
    const head = rawRequest(CHAT, BODY);
    client.socket.write(head.slice(0, head.length - 5));
    await client.closed;
    expect(client.received()).toContain('408');
    await settled(registry);
    expect(await ends(registry)).toMatchObject({ response_timeout: 1, cancelled: 0 });
    expect(await total(registry, 'disconnected_clients')).toBe(0);
  });

  it('server.timeout on a stalled stream is response_timeout', async () => {
    const { registry, served } = await start((app) => app.post(CHAT, stallingStream));
    served.server.timeout = 150;
    await oneRequest(served.port);
    await notCancelled(registry, 'response_timeout');
  });

  it('a client that really left is cancelled and a disconnected client', async () => {
    const { registry, served } = await start((app) => app.post(CHAT, stallingStream));
    for (const leave of ['end', 'destroy', 'reset'] as const) {
      const client = await rawClient(served.port);
      client.socket.write(rawRequest(CHAT, BODY));
      await until(client.received, 'Hello');
      if (leave === 'end') client.socket.end();
      else if (leave === 'destroy') client.socket.destroy();
      else client.socket.resetAndDestroy();
      await client.closed;
    }
    await settled(registry);
    expect(await ends(registry)).toMatchObject({ cancelled: 3, internal: 0 });
    expect(await total(registry, 'disconnected_clients')).toBe(3);
    expect(await total(registry, 'model_cancellation_total')).toBe(3);
  });
});

describe('writes the client never receives', () => {
  it.each([
    ['write after end()', (res: Response) => {
      res.write(chatEvent('m', 'a'));
      res.write(chatEvent('m', 'b'));
      res.end(chatEvent('m', undefined, 'stop'));
      res.write(chatEvent('m', 'c'));
      res.write(chatEvent('m', 'd'));
    }],
    ['end() twice', (res: Response) => {
      res.write(chatEvent('m', 'a'));
      res.end(chatEvent('m', 'b'));
      res.end(chatEvent('m', 'c'));
    }],
    ['write after destroy()', (res: Response) => {
      res.write(chatEvent('m', 'a'));
      res.write(chatEvent('m', 'b'));
      res.destroy();
      res.write(chatEvent('m', 'c'));
      res.end(chatEvent('m', 'd'));
    }],
  ])('%s: only the 2 tokens written before count', async (_name, handler) => {
    const { registry, served } = await start((app) =>
      app.post(CHAT, (_req, res) => {
        res.on('error', () => undefined);
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        handler(res);
      }),
    );
    const client = await rawClient(served.port);
    client.socket.write(rawRequest(CHAT, BODY, 'POST', 'Connection: close\r\n'));
    await client.closed;
    await settled(registry);
    expect(await total(registry, 'output_tokens_total')).toBe(2);
    expect(await total(registry, 'requests_total')).toBe(1);
  });
});
