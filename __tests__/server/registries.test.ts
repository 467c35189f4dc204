/**
 * Several middleware instances, on one registry or two, and a registry reset.
 */
import type { Application } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib/index';
import { CHAT, describeOnEachExpress, heldStream, writeSse } from '../support/express-suite';
import { eventually, openStream, postJson, signal, sleep } from '../support/http';
import { m, value } from '../support/registry-values';
import { codePoints, contentChunk, DONE, finishChunk, roleChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, expressLib, gauges, get, serve, start } = t;

  it('lets two middleware instances on two registries coexist, each counting', async () => {
    const other = new Registry();
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints }));
    app.use(dynamoMetrics({ registry: other, countTokens: codePoints, prefix: 'dynamo_frontend' }));
    chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE]))(app);
    const server = await serve(app);
    await postJson(server.port, CHAT, { model: 'm', stream: true });
    await ended();
    await eventually(async () => (await value(other, m('requests_total'))) === 1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await value(other, m('output_tokens_total'), { model: 'm' })).toBe(3);
    expect(await value(other, m('requests_total'), { model: 'm', status: 'success' })).toBe(1);
  });

  it('lets two middleware instances on the same registry share the metrics instead of throwing', async () => {
    const first = dynamoMetrics({ registry: t.registry, countTokens: codePoints });
    let second: unknown;
    expect(() => {
      second = dynamoMetrics({ registry: t.registry, countTokens: codePoints });
    }).not.toThrow();
    const handler = chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE]));
    const ports: number[] = [];
    for (const middleware of [first, second as typeof first]) {
      const app = expressLib() as unknown as Application;
      app.use(expressLib.json());
      app.use(middleware);
      handler(app);
      const server = await serve(app);
      ports.push(server.port);
    }
    for (const port of ports) await postJson(port, CHAT, { model: 'm', stream: true });
    await ended(2);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(2);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(6);
  });

  it('counts a request once when two instances on the same registry are mounted in one app', async () => {
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints }));
    app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints }));
    chatRoute((_req, res) => writeSse(res, [contentChunk('m', 'abc'), finishChunk('m'), DONE]))(app);
    const server = await serve(app);
    await postJson(server.port, CHAT, { model: 'm', stream: true });
    await ended();
    await sleep(30);
    expect(await get('requests_total')).toBe(1);
    expect(await get('requests_started_total')).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });

  it('starts from zero after registry.resetMetrics(), also for tokens counted but not yet scraped', async () => {
    const port = await start(chatRoute((req, res) => writeSse(res, [contentChunk('m', (req.body as { text: string }).text), finishChunk('m'), DONE])));
    await postJson(port, CHAT, { model: 'm', stream: true, text: 'abcde' });
    await eventually(async () => (await value(t.registry, m('requests_total'))) === 1);
    // No read of output_tokens_total before the reset (a test suite resetting the registry between cases).
    t.registry.resetMetrics();
    await postJson(port, CHAT, { model: 'm', stream: true, text: 'xyz' });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await get('requests_total', { model: 'm' })).toBe(1);
  });

  it('keeps the requests still in flight in the gauges across registry.resetMetrics(), so they end at 0, not -1', async () => {
    const rest = signal();
    const port = await start(chatRoute(heldStream([roleChunk('m'), contentChunk('m', 'ab')], rest.wait, [finishChunk('m'), DONE])));
    const waiting = await openStream(port, CHAT, { model: 'm', stream: true });
    const streaming = await openStream(port, CHAT, { model: 'm', stream: true });
    await waiting.waitFor('ab');
    await streaming.waitFor('ab');
    expect(await gauges('m')).toEqual([2, 2, 0]);
    t.registry.resetMetrics();
    expect(await gauges('m')).toEqual([2, 2, 0]);
    expect(await get('requests_started_total')).toBe(0);
    rest.release();
    await Promise.all([waiting.done, streaming.done]);
    await ended(2);
    expect(await gauges('m')).toEqual([0, 0, 0]);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(2);
  });
});
