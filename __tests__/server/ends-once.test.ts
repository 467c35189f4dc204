/**
 * Every request ends exactly once: success, client aborts, error events, broken upstreams, keep-alive reuse, and
 * gauges back to 0; nothing keeps a finished response alive.
 */
import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Socket } from 'node:net';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { eventually, openStream, postJson, signal, sleep } from '../support/http';
import { contentChunk, DONE, finishChunk, roleChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, gauges, get, start } = t;

  it('counts a successful stream once, with gauges back to 0', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [roleChunk('m'), contentChunk('m', 'abc'), finishChunk('m'), DONE])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    await sleep(20);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' })).toBe(1);
    expect(await get('requests_started_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
    expect(await get('requests_finished_total', { model: 'm', finish_reason: 'stop' })).toBe(1);
    expect(await get('request_duration_seconds', { model: 'm' }, 'count')).toBe(1);
    expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(3);
    expect(await gauges('m')).toEqual([0, 0, 0]);
    expect(await get('disconnected_clients')).toBe(0);
  });

  it.each([
    [400, 'validation'],
    [401, 'validation'],
    [404, 'not_found'],
    [422, 'validation'],
    [429, 'overload'],
    [499, 'cancelled'],
    [500, 'internal'],
    [501, 'not_implemented'],
    [502, 'internal'],
    [503, 'unavailable'],
    [529, 'overload'],
  ])('maps HTTP %i to error_type %s', async (status, errorType) => {
    // A failed request keeps its name only when the name is known (allow-listed or admitted by an earlier success).
    const port = await start(
      chatRoute((_req, res) => {
        res.status(status).json({ error: { message: 'nope', type: 'some_error' } });
      }),
      { metrics: { models: ['m'] } },
    );
    const response = await postJson(port, CHAT, { model: 'm', stream: true });
    expect(response.status).toBe(status);
    await ended();
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'error', error_type: errorType })).toBe(1);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_started_total', { model: 'm' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  /**
   * Writes `events` and holds the stream open; the client aborts once it has received `seen`. Resolves, after the
   * request ended, with the gauges of model m just before the abort.
   */
  async function abortOnceSeen(events: string[], seen: string): Promise<number[]> {
    const closed = signal();
    const port = await start(
      chatRoute((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        for (const event of events) res.write(event);
        res.on('close', () => closed.release());
      }),
    );
    const stream = await openStream(port, CHAT, { model: 'm', stream: true });
    await stream.waitFor(seen);
    const before = await gauges('m');
    stream.abort();
    await closed.wait;
    await ended();
    return before;
  }

  it('counts a client that aborts mid-stream as cancelled, keeps its tokens, and returns the gauges to 0', async () => {
    expect(await abortOnceSeen([roleChunk('m'), contentChunk('m', 'Hello')], 'Hello')).toEqual([1, 1, 0]);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await get('requests_total')).toBe(1);
    expect(await get('disconnected_clients')).toBe(1);
    expect(await get('model_cancellation_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(5);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a client that aborts before the first token: queued back to 0 as well', async () => {
    expect(await abortOnceSeen([roleChunk('m')], 'assistant')).toEqual([1, 1, 1]);
    expect(await get('requests_total', { status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
    expect(await get('time_to_first_token_seconds', {}, 'count')).toBe(0);
  });

  it.each([
    ['{"error": {"message": "engine died", "type": "server_error"}}', 'internal'],
    ['{"error": {"message": "busy", "code": 429}}', 'overload'],
  ])('counts an error event mid-stream (%s) as error %s', async (errorEvent, errorType) => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [roleChunk('m'), contentChunk('m', 'ab'), `data: ${errorEvent}\n\n`])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: errorType })).toBe(1);
    expect(await get('requests_total')).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(2);
  });

  it.each([
    ['finish_reason without [DONE]', (): string[] => [contentChunk('m', 'abc'), finishChunk('m')]],
    ['[DONE] without finish_reason', (): string[] => [contentChunk('m', 'abc'), DONE]],
    ['data:[DONE] without the optional space', (): string[] => [contentChunk('m', 'abc'), 'data:[DONE]\n\n']],
  ])('counts a stream that ends with %s as success', async (_what, pieces) => {
    const port = await start(chatRoute((_req, res) => writeSse(res, pieces())));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'success', error_type: '' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
  });

  it('keeps an error event\'s error type even when [DONE] follows it', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'ab'), 'data: {"error": {"message": "overloaded", "type": "overloaded_error"}}\n\n', DONE])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: 'overload' })).toBe(1);
    expect(await get('requests_total')).toBe(1);
  });

  it('counts a 2xx stream that ends without [DONE] or finish_reason as internal', async () => {
    const port = await start(chatRoute((_req, res) => writeSse(res, [roleChunk('m'), contentChunk('m', 'abc')])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a stream the server destroys mid-way (a broken upstream) as internal, not cancelled', async () => {
    const port = await start(
      chatRoute((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(contentChunk('m', 'abc'), () => res.destroy());
      }),
    );
    const stream = await openStream(port, CHAT, { model: 'm', stream: true });
    await stream.done;
    await ended();
    expect(await get('requests_total', { model: 'm', status: 'error', error_type: 'internal' })).toBe(1);
    expect(await get('disconnected_clients')).toBe(0);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('serves many requests on one keep-alive connection without MaxListenersExceededWarning or leftover listeners', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    const sockets = new Set<Socket>();
    const port = await start(
      chatRoute((req, res) => {
        sockets.add(req.socket);
        writeSse(res, [roleChunk('m'), contentChunk('m', 'ab'), finishChunk('m'), DONE]);
      }),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 40; i++) await postJson(port, CHAT, { model: 'm', stream: true }, agent);
      await ended(40);
      await sleep(50);
    } finally {
      agent.destroy();
      process.off('warning', onWarning);
    }
    expect(sockets.size).toBe(1);
    const socket = [...sockets][0] as Socket;
    expect(socket.listenerCount('close')).toBeLessThan(10);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    expect(await get('requests_total', { status: 'success' })).toBe(40);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(80);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('counts a client that aborts before any response byte as cancelled, once', async () => {
    const closed = signal();
    const arrived = signal();
    const port = await start(
      chatRoute((_req, res) => {
        arrived.release();
        res.on('close', () => closed.release());
      }),
      { metrics: { models: ['m'] } },
    );
    const payload = JSON.stringify({ model: 'm', stream: true });
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: CHAT, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } });
    req.on('error', () => undefined);
    req.end(payload);
    await arrived.wait;
    expect(await gauges('m')).toEqual([1, 1, 1]);
    // Counted as started when first seen (the body named the model), before any response byte.
    expect(await get('requests_started_total', { model: 'm', endpoint: 'chat_completions', request_type: 'stream' })).toBe(1);
    req.destroy();
    await closed.wait;
    await ended();
    await sleep(20);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', status: 'error', error_type: 'cancelled' })).toBe(1);
    expect(await get('requests_started_total', { model: 'm' })).toBe(1);
    expect(await get('disconnected_clients')).toBe(1);
    expect(await get('model_cancellation_total', { model: 'm', endpoint: 'chat_completions' })).toBe(1);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('returns every gauge to 0 after many concurrent streams, some aborted', async () => {
    const rest = signal();
    const port = await start(
      chatRoute(async (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(contentChunk('m', 'ab'));
        await rest.wait;
        if (!res.destroyed) {
          res.write(finishChunk('m'));
          res.end(DONE);
        }
      }),
    );
    const streams = await Promise.all(Array.from({ length: 20 }, () => openStream(port, CHAT, { model: 'm', stream: true })));
    await Promise.all(streams.map((s) => s.waitFor('ab')));
    expect(await gauges('m')).toEqual([20, 20, 0]);
    streams.slice(0, 5).forEach((s) => s.abort());
    await eventually(async () => (await get('requests_total', { error_type: 'cancelled' })) === 5);
    expect(await get('inflight_requests', { model: 'm' })).toBe(15);
    rest.release();
    await Promise.all(streams.map((s) => s.done));
    await ended(20);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(15);
    expect(await get('disconnected_clients')).toBe(5);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(40);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('keeps no reference to finished or aborted responses (they can be garbage-collected)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const collect = vm.runInNewContext('gc') as () => void;
    const responses: WeakRef<object>[] = [];
    const port = await start(
      chatRoute((req, res) => {
        responses.push(new WeakRef(res));
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(contentChunk('m', 'ab'));
        if ((req.body as { finish: boolean }).finish) {
          res.write(finishChunk('m'));
          res.end(DONE);
        }
      }),
    );
    for (let i = 0; i < 20; i++) await postJson(port, CHAT, { model: 'm', stream: true, finish: true });
    for (let i = 0; i < 10; i++) {
      const stream = await openStream(port, CHAT, { model: 'm', stream: true, finish: false });
      await stream.waitFor('ab');
      stream.abort();
    }
    await ended(30);
    await sleep(50);
    for (let i = 0; i < 3; i++) {
      collect();
      await sleep(20);
    }
    const alive = responses.filter((ref) => ref.deref() !== undefined).length;
    expect(responses).toHaveLength(30);
    expect(alive).toBeLessThanOrEqual(2);
    expect(await get('requests_total')).toBe(30);
  });
});
