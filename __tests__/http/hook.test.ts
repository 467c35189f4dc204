import type { IncomingMessage, ServerResponse } from 'node:http';
import { hookResponse } from '../../lib/http/hook';
import type { ResponseListener, ResponseOutcome } from '../../lib/http/hook';
import { eventually, listen, openStream, request, signal } from '../support/http';
import type { RunningServer } from '../support/http';

type Call =
  | ['head', number, string | undefined]
  | ['body', string]
  | ['bodyEnd']
  | ['done', ResponseOutcome, number]
  | ['listenerError', string];

function recorder(throwOn?: 'onHead' | 'onBody' | 'onBodyEnd'): { calls: Call[]; listener: ResponseListener } {
  const calls: Call[] = [];
  const listener: ResponseListener = {
    onHead(statusCode, header) {
      calls.push(['head', statusCode, header('content-type')]);
      if (throwOn === 'onHead') throw new Error('listener bug');
    },
    onBody(chunk, encoding) {
      const text = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8').toString() : Buffer.from(chunk as Uint8Array).toString();
      calls.push(['body', text]);
      if (throwOn === 'onBody') throw new Error('listener bug');
    },
    onBodyEnd() {
      calls.push(['bodyEnd']);
      if (throwOn === 'onBodyEnd') throw new Error('listener bug');
    },
    onDone(outcome, statusCode) {
      calls.push(['done', outcome, statusCode]);
    },
    onListenerError(error) {
      calls.push(['listenerError', (error as Error).message]);
    },
  };
  return { calls, listener };
}

let server: RunningServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  server = await listen(handler);
  return server.port;
}

describe('hookResponse', () => {
  it('reports head, every body chunk, body end and done once, in order', async () => {
    const { calls, listener } = recorder();
    const port = await serve((_req, res) => {
      hookResponse(res, listener);
      res.setHeader('Content-Type', 'text/event-stream');
      res.write('data: a\n\n');
      res.write(Buffer.from('data: b\n\n'));
      res.write('ZGF0YTogYwoK', 'base64');
      res.end('data: d\n\n');
    });
    const response = await request(port, 'GET', '/');
    expect(response.body.toString()).toBe('data: a\n\ndata: b\n\ndata: c\n\ndata: d\n\n');
    await eventually(() => calls.some((call) => call[0] === 'done'));
    expect(calls).toEqual([
      ['head', 200, 'text/event-stream'],
      ['body', 'data: a\n\n'],
      ['body', 'data: b\n\n'],
      ['body', 'data: c\n\n'],
      ['body', 'data: d\n\n'],
      ['bodyEnd'],
      ['done', 'finished', 200],
    ]);
  });

  it('sees headers given only to writeHead, as an object or as a raw array', async () => {
    const seen: (string | undefined)[] = [];
    const port = await serve((req, res) => {
      const { calls, listener } = recorder();
      hookResponse(res, listener);
      if (req.url === '/object') res.writeHead(201, { 'Content-Type': 'text/event-stream' });
      else if (req.url === '/array') res.writeHead(202, 'Accepted', ['Content-Type', 'application/json']);
      else res.writeHead(203, 'OK', [['content-type', 'text/plain']] as unknown as string[]);
      res.end(() => {
        const head = calls.find((call) => call[0] === 'head');
        seen.push(head ? `${head[1]} ${head[2]}` : undefined);
      });
    });
    await request(port, 'GET', '/object');
    await request(port, 'GET', '/array');
    await request(port, 'GET', '/nested');
    await eventually(() => seen.length === 3);
    expect(seen).toEqual(['201 text/event-stream', '202 application/json', '203 text/plain']);
  });

  it('reads a header given twice to writeHead as the client receives it, object or raw array, with or without headers set before', async () => {
    const seen = new Map<string, string | undefined>();
    const port = await serve((req, res) => {
      const { calls, listener } = recorder();
      hookResponse(res, listener);
      // A header set before (Express sets X-Powered-By) makes Node merge writeHead's headers: it sends the last one.
      // Without one it sends both, and a client reads the first.
      if (req.url?.includes('set-before') === true) res.setHeader('x-app', '1');
      if (req.url?.startsWith('/object') === true) res.writeHead(200, { 'content-type': 'application/octet-stream', 'Content-Type': 'text/event-stream' });
      else res.writeHead(200, ['Content-Type', 'text/event-stream', 'content-type', 'application/json']);
      res.end(() => seen.set(req.url as string, calls.find((call) => call[0] === 'head')?.[2] as string | undefined));
    });
    for (const path of ['/object', '/object?set-before', '/array', '/array?set-before']) {
      const received = (await request(port, 'GET', path)).headers['content-type'];
      await eventually(() => seen.has(path));
      expect([path, seen.get(path)]).toEqual([path, received]);
    }
  });

  it('does not report a head Node refuses (a header value with a line break, a bad status): the answer sent instead is the head', async () => {
    const heads: (string | undefined)[] = [];
    const bad: Record<string, unknown[]> = {
      '/value': [200, { 'Content-Type': 'text/event-stream', 'X-Echo': 'client\ntext' }],
      '/name': [200, ['Bad Name', 'x']],
      '/status': [99, {}],
      '/message': [200, 'OK\r\nX-Injected: 1', {}],
    };
    const port = await serve((req, res) => {
      const { calls, listener } = recorder();
      hookResponse(res, listener);
      try {
        (res.writeHead as (...args: unknown[]) => void)(...(bad[req.url as string] as unknown[]));
        res.end('data: [DONE]\n\n');
      } catch {
        // What an error handler does after writeHead threw.
        res.statusCode = 500;
        res.statusMessage = 'Internal Server Error';
        res.setHeader('Content-Type', 'text/html');
        res.end('<h1>error</h1>');
      }
      const head = calls.find((call) => call[0] === 'head');
      heads.push(head ? `${head[1]} ${head[2]}` : undefined);
    });
    for (const path of Object.keys(bad)) expect((await request(port, 'GET', path)).status).toBe(500);
    expect(heads).toEqual(['500 text/html', '500 text/html', '500 text/html', '500 text/html']);
  });

  it("reads a status given as a numeric string, as Node's writeHead does", async () => {
    const { calls, listener } = recorder();
    const port = await serve((_req, res) => {
      hookResponse(res, listener);
      (res.writeHead as (status: unknown, headers: Record<string, string>) => void)('503', { 'content-type': 'application/json' });
      res.end('{}');
    });
    expect((await request(port, 'GET', '/')).status).toBe(503);
    await eventually(() => calls.some((call) => call[0] === 'done'));
    expect(calls[0]).toEqual(['head', 503, 'application/json']);
  });

  it('forwards every argument, fires every callback, and returns what the original returns', async () => {
    const fired: string[] = [];
    const returned: boolean[] = [];
    const bare: boolean[] = [];
    const big = 'x'.repeat(4 * 1024 * 1024);
    const port = await serve((req, res) => {
      const hooked = req.url === '/hooked';
      if (hooked) hookResponse(res, recorder().listener);
      const results = hooked ? returned : bare;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      results.push(res.write('a', () => fired.push(`${req.url} write(chunk, cb)`)));
      results.push(res.write('b', 'utf8', () => fired.push(`${req.url} write(chunk, enc, cb)`)));
      results.push(res.write(big));
      res.end(() => fired.push(`${req.url} end(cb)`));
    });
    const hookedResponse = await request(port, 'GET', '/hooked');
    const bareResponse = await request(port, 'GET', '/bare');
    expect(hookedResponse.body.equals(bareResponse.body)).toBe(true);
    expect(returned).toEqual(bare);
    expect(returned).toContain(false); // backpressure is visible through the wrapper
    await eventually(() => fired.length === 6);
    expect(fired.sort()).toEqual(
      ['/bare end(cb)', '/bare write(chunk, cb)', '/bare write(chunk, enc, cb)', '/hooked end(cb)', '/hooked write(chunk, cb)', '/hooked write(chunk, enc, cb)'].sort(),
    );
  });

  it('fires end(chunk, cb) and end(chunk, encoding, cb) callbacks and returns the response from end()', async () => {
    const fired: string[] = [];
    const returnedSelf: boolean[] = [];
    const port = await serve((req, res) => {
      hookResponse(res, recorder().listener);
      const result = req.url === '/two' ? res.end('ok', () => fired.push('two')) : res.end('ok', 'utf8', () => fired.push('three'));
      returnedSelf.push(result === res);
    });
    await request(port, 'GET', '/two');
    await request(port, 'GET', '/three');
    await eventually(() => fired.length === 2);
    expect(fired.sort()).toEqual(['three', 'two']);
    expect(returnedSelf).toEqual([true, true]);
  });

  it('reports client_left when the client goes away before the end, and removes its listeners', async () => {
    const { calls, listener } = recorder();
    const listeners: number[] = [];
    const closed = signal();
    const port = await serve((_req, res) => {
      const before = res.listenerCount('finish') + res.listenerCount('close');
      hookResponse(res, listener);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: first\n\n');
      res.on('close', () => {
        setImmediate(() => {
          listeners.push(res.listenerCount('finish') + res.listenerCount('close') - 1 - before);
          closed.release();
        });
      });
    });
    const stream = await openStream(port, '/', {});
    await stream.waitFor('first');
    stream.abort();
    await closed.wait;
    expect(calls.filter((call) => call[0] === 'done')).toEqual([['done', 'client_left', 200]]);
    expect(listeners).toEqual([0]);
  });

  it('reports server_aborted when the app destroys the response while the client is still there', async () => {
    const { calls, listener } = recorder();
    const port = await serve((_req, res) => {
      hookResponse(res, listener);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('data: first\n\n', () => res.destroy());
    });
    const stream = await openStream(port, '/', {});
    await stream.done;
    await eventually(() => calls.some((call) => call[0] === 'done'));
    expect(calls.filter((call) => call[0] === 'done')).toEqual([['done', 'server_aborted', 200]]);
  });

  it.each(['onHead', 'onBody', 'onBodyEnd'] as const)(
    'keeps the response intact when the listener throws in %s, and reports the error',
    async (throwOn) => {
      const { calls, listener } = recorder(throwOn);
      const port = await serve((_req, res) => {
        hookResponse(res, listener);
        res.setHeader('Content-Type', 'text/event-stream');
        res.write('data: a\n\n');
        res.end('data: b\n\n');
      });
      const response = await request(port, 'GET', '/');
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('data: a\n\ndata: b\n\n');
      await eventually(() => calls.some((call) => call[0] === 'done'));
      expect(calls.filter((call) => call[0] === 'listenerError').length).toBeGreaterThanOrEqual(1);
      expect(calls.filter((call) => call[0] === 'done')).toEqual([['done', 'finished', 200]]);
    },
  );

  it('reports the head once even when writeHead is called implicitly by write', async () => {
    const { calls, listener } = recorder();
    const port = await serve((_req, res) => {
      hookResponse(res, listener);
      res.statusCode = 202;
      res.setHeader('Content-Type', 'application/json');
      res.write('{');
      res.end('}');
    });
    await request(port, 'GET', '/');
    await eventually(() => calls.some((call) => call[0] === 'done'));
    expect(calls.filter((call) => call[0] === 'head')).toEqual([['head', 202, 'application/json']]);
  });
});
