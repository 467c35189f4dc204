/**
 * Live counts: a scrape between two chunks of an unfinished stream shows the tokens written so far.
 */
import type { Application } from 'express';
import supertest from 'supertest';
import { dynamoMetrics, metricsRouter } from '../../lib/index';
import { CHAT, describeOnEachExpress, heldStream } from '../support/express-suite';
import { openStream, request, signal } from '../support/http';
import { m, valueFromText } from '../support/registry-values';
import { chatChunk, contentChunk, DONE, finishChunk, roleChunk, sse } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, expressLib, get, serve, start } = t;

  it('shows the tokens written so far in a scrape between two chunks of an unfinished stream', async () => {
    const rest = signal();
    const port = await start(
      chatRoute(heldStream([roleChunk('m'), contentChunk('m', 'Hello')], rest.wait, [contentChunk('m', ' world'), finishChunk('m'), DONE])),
    );
    const stream = await openStream(port, CHAT, { model: 'm', stream: true });
    await stream.waitFor('Hello');
    const live = (await request(port, 'GET', '/metrics')).body.toString();
    expect(valueFromText(live, m('output_tokens_total'), { model: 'm' })).toBe(5);
    expect(valueFromText(live, m('inflight_requests'), { model: 'm' })).toBe(1);
    expect(valueFromText(live, m('queued_requests'), { model: 'm' })).toBe(0);
    expect(valueFromText(live, m('requests_total'), { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' })).toBeUndefined();
    rest.release();
    await stream.done;
    await ended();
    const after = (await request(port, 'GET', '/metrics')).body.toString();
    expect(valueFromText(after, m('output_tokens_total'), { model: 'm' })).toBe(11);
    expect(valueFromText(after, m('requests_total'), { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' })).toBe(1);
    expect(valueFromText(after, m('inflight_requests'), { model: 'm' })).toBe(0);
  });

  it("counts a Mistral reasoning model's thinking and text parts live, the thinking as reasoning", async () => {
    const rest = signal();
    const parts = (content: unknown[]): string => sse(chatChunk('magistral', [{ index: 0, delta: { content }, finish_reason: null }]));
    const thinking = ['Okay', ', the', ' user', ' says', ' hi'].map((text) => parts([{ type: 'thinking', thinking: [{ type: 'text', text }] }]));
    const answer = ['Hello', ' there', '!'].map((text) => parts([{ type: 'text', text }]));
    const usage = sse(chatChunk('magistral', [], { prompt_tokens: 5, completion_tokens: 40, total_tokens: 45 }));
    const port = await start(chatRoute(heldStream([roleChunk('magistral'), ...thinking], rest.wait, [...answer, finishChunk('magistral'), usage, DONE])));
    const stream = await openStream(port, CHAT, { model: 'magistral', stream: true });
    await stream.waitFor(' hi');
    const live = (await request(port, 'GET', '/metrics')).body.toString();
    // This suite counts one token per code point: the thinking so far is 22.
    expect(valueFromText(live, m('reasoning_tokens_total'), { model: 'magistral' })).toBe(22);
    expect(valueFromText(live, m('output_tokens_total'), { model: 'magistral' })).toBe(22);
    expect(valueFromText(live, m('queued_requests'), { model: 'magistral' })).toBe(0);
    rest.release();
    await stream.done;
    await ended();
    expect(await get('output_tokens_total', { model: 'magistral' })).toBe(40);
    expect(await get('reasoning_tokens_total', { model: 'magistral' })).toBe(22);
    expect(await get('output_tokens_overcount_total', { model: 'magistral' })).toBe(0);
  });

  it('shows live tokens to a scrape made while supertest is still reading the stream chunk by chunk', async () => {
    const rest = signal();
    const port = await start(
      chatRoute(heldStream([contentChunk('m', 'first')], rest.wait, [contentChunk('m', 'second'), finishChunk('m'), DONE])),
    );
    const scrapes: (number | undefined)[] = [];
    const response = await supertest(`http://127.0.0.1:${port}`)
      .post(CHAT)
      .send({ model: 'm', stream: true })
      .buffer(true)
      .parse((res, callback) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (part: string) => {
          text += part;
          if (text.includes('first') && !text.includes('second') && scrapes.length === 0) {
            scrapes.push(-1);
            void supertest(`http://127.0.0.1:${port}`)
              .get('/metrics')
              .then((metrics) => {
                scrapes[0] = valueFromText(metrics.text, m('output_tokens_total'), { model: 'm' });
                rest.release();
              });
          }
        });
        res.on('end', () => callback(null, text));
      });
    expect(response.status).toBe(200);
    expect(String(response.body)).toContain('second');
    expect(scrapes).toEqual([5]);
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(11);
  });

  it('counts live with the default estimator (at least one token per non-empty delta) and ends exact with usage', async () => {
    const rest = signal();
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry: t.registry }));
    app.use(metricsRouter({ registry: t.registry }));
    const words = ['Hello', ',', ' world', ' 🌍', '你好'].map((word) => contentChunk('m', word));
    const usage = sse(chatChunk('m', [], { prompt_tokens: 3, completion_tokens: 40, total_tokens: 43 }));
    chatRoute(heldStream([roleChunk('m'), ...words], rest.wait, [finishChunk('m'), usage, DONE]))(app);
    const server = await serve(app);
    const stream = await openStream(server.port, CHAT, { model: 'm', stream: true });
    await stream.waitFor('你好');
    const live = valueFromText((await request(server.port, 'GET', '/metrics')).body.toString(), m('output_tokens_total'), { model: 'm' });
    expect(live).toBeGreaterThanOrEqual(5);
    expect(live).toBeLessThan(40);
    rest.release();
    await stream.done;
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(40);
    expect(await get('output_tokens_overcount_total', { model: 'm' })).toBe(0);
  });
});
