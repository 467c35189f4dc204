/**
 * The client receives exactly the bytes the handler wrote, the same as without the middleware, and every write/end
 * argument and callback is forwarded.
 */
import type { Application } from 'express';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { eventually, postJson } from '../support/http';
import { seededRandom } from '../support/prng';
import { rawPost } from '../support/sockets';
import { contentChunk, cutAtRandom, DONE, finishChunk, RICH_STREAM_TOKENS, richChatStream, roleChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, get, start } = t;

  it('delivers exactly the bytes the handler wrote, the same as without the middleware', async () => {
    const pieces = cutAtRandom(Buffer.from(richChatStream('m')), 25, seededRandom(1));
    const handler = chatRoute((_req, res) => writeSse(res, pieces));
    const withPort = await start(handler);
    const withoutPort = await start(handler, { withMiddleware: false });
    const withMiddleware = await rawPost(withPort, CHAT, JSON.stringify({ model: 'm', stream: true }));
    const without = await rawPost(withoutPort, CHAT, JSON.stringify({ model: 'm', stream: true }));
    expect(withMiddleware.equals(without)).toBe(true);
    const body = (await postJson(withPort, CHAT, { model: 'm', stream: true })).body;
    expect(body.equals(Buffer.concat(pieces))).toBe(true);
    await ended(2);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(2 * RICH_STREAM_TOKENS);
  });

  it('delivers the same bytes for unary res.json() and res.send() with and without the middleware', async () => {
    const body = { id: 'c', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'héllo 🌍' }, finish_reason: 'stop' }], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } };
    const routes = (app: Application): void => {
      app.post(CHAT, (_req, res) => {
        res.json(body);
      });
      app.post('/v1/completions', (_req, res) => {
        res.send({ ...body, object: 'text_completion' });
      });
    };
    const withPort = await start(routes);
    const withoutPort = await start(routes, { withMiddleware: false });
    for (const path of [CHAT, '/v1/completions']) {
      expect((await rawPost(withPort, path, JSON.stringify({ model: 'm' }))).equals(await rawPost(withoutPort, path, JSON.stringify({ model: 'm' })))).toBe(true);
    }
  });

  it('forwards write/end arguments and callbacks, returns write()\'s boolean, and sees headers given only to writeHead', async () => {
    const results: Record<string, { returned: boolean[]; callbacks: string[] }> = {};
    const big = `: ${'x'.repeat(4 * 1024 * 1024)}\n\n`;
    const handler = chatRoute((req, res) => {
      const record = { returned: [] as boolean[], callbacks: [] as string[] };
      results[(req.body as { run: string }).run] = record;
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      record.returned.push(res.write(roleChunk('m'), () => record.callbacks.push('write(chunk, cb)')));
      record.returned.push(res.write(contentChunk('m', 'abc'), 'utf8', () => record.callbacks.push('write(chunk, utf8, cb)')));
      record.returned.push(res.write(big));
      record.returned.push(res.write(Buffer.from(contentChunk('m', 'de')), (error) => record.callbacks.push(`buffer cb ${String(error ?? '')}`)));
      res.write(finishChunk('m'));
      res.write(DONE);
      res.end(() => record.callbacks.push('end(cb)'));
    });
    const withPort = await start(handler);
    const withoutPort = await start(handler, { withMiddleware: false });
    const a = await postJson(withPort, CHAT, { model: 'm', stream: true, run: 'with' });
    const b = await postJson(withoutPort, CHAT, { model: 'm', stream: true, run: 'without' });
    expect(a.body.equals(b.body)).toBe(true);
    expect(a.headers['content-type']).toBe('text/event-stream');
    await eventually(() => (results.with?.callbacks.length ?? 0) === 4 && (results.without?.callbacks.length ?? 0) === 4);
    expect(results.with?.returned).toEqual(results.without?.returned);
    expect(results.with?.returned).toContain(false);
    expect([...(results.with?.callbacks ?? [])].sort()).toEqual([...(results.without?.callbacks ?? [])].sort());
    expect(results.with?.callbacks).toEqual(expect.arrayContaining(['write(chunk, cb)', 'write(chunk, utf8, cb)', 'end(cb)', 'buffer cb ']));
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(5);
    expect(await get('requests_started_total', { model: 'm', request_type: 'stream' })).toBe(1);
    expect(await get('requests_total', { model: 'm', request_type: 'stream', status: 'success' })).toBe(1);
  });
});
