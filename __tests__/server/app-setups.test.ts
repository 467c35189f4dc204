/**
 * The app around the middleware: headers flushed early, a body parsed after it, compression() before or after it.
 */
import zlib from 'node:zlib';
import type { Application } from 'express';
import compression from 'compression';
import { dynamoMetrics } from '../../lib/index';
import type { DynamoMetricsError } from '../../lib/index';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { postJson, request } from '../support/http';
import { codePoints, contentChunk, DONE, finishChunk, roleChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, expressLib, gauges, get, serve, start } = t;

  it('reads a stream whose headers were flushed with res.flushHeaders() before the first write', async () => {
    const port = await start(
      chatRoute((_req, res) => {
        res.status(200);
        res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
        res.flushHeaders();
        res.write(contentChunk('m', 'abc'));
        res.write(finishChunk('m'));
        res.end(DONE);
      }),
    );
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(3);
    expect(await get('requests_total', { model: 'm', request_type: 'stream', status: 'success' })).toBe(1);
  });

  it('takes the model from a body parsed after the middleware (by the time the response starts)', async () => {
    const app = expressLib() as unknown as Application;
    app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints }));
    app.use(expressLib.json());
    chatRoute((_req, res) => writeSse(res, [contentChunk('served', 'abc'), finishChunk('served'), DONE]))(app);
    const server = await serve(app);
    await postJson(server.port, CHAT, { model: 'asked', stream: true });
    await ended();
    expect(await get('output_tokens_total', { model: 'asked' })).toBe(3);
    expect(await get('requests_started_total', { model: 'asked', request_type: 'stream' })).toBe(1);
    expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    expect(await gauges('asked')).toEqual([0, 0, 0]);
  });

  it('counts tokens with compression() mounted before it, and the client still gets the gzip stream', async () => {
    const pieces = [roleChunk('m'), contentChunk('m', 'Hello'), contentChunk('m', ' 世界'), finishChunk('m'), DONE];
    const app = expressLib() as unknown as Application;
    app.use(compression());
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints }));
    chatRoute((_req, res) => writeSse(res, pieces))(app);
    const server = await serve(app);
    const response = await request(server.port, 'POST', CHAT, { model: 'm', stream: true }, undefined, { 'accept-encoding': 'gzip' });
    expect(response.headers['content-encoding']).toBe('gzip');
    expect(zlib.gunzipSync(response.body).toString()).toBe(pieces.join(''));
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(8);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(await get('parse_errors_total')).toBe(0);
  });

  it('leaves a gzip stream from compression() mounted after it untouched and counts it from a decoded copy', async () => {
    const errors: DynamoMetricsError[] = [];
    const pieces = [contentChunk('m', 'Hello'), finishChunk('m'), DONE];
    const app = expressLib() as unknown as Application;
    app.use(expressLib.json());
    app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints, onError: (e) => errors.push(e) }));
    app.use(compression());
    chatRoute((_req, res) => writeSse(res, pieces))(app);
    const server = await serve(app);
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const { body } = await request(server.port, 'POST', CHAT, { model: 'm', stream: true }, undefined, { 'accept-encoding': 'gzip' });
      expect(zlib.gunzipSync(body).toString()).toBe(pieces.join(''));
      await ended();
    } finally {
      process.off('warning', onWarning);
    }
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(5);
    expect(await get('parse_errors_total')).toBe(0);
    expect(errors).toEqual([]);
    expect(warnings.filter((w) => (w as Error & { code?: string }).code === 'DYNAMO_METRICS_COMPRESSED')).toEqual([]);
    expect(await gauges('m')).toEqual([0, 0, 0]);
  });
});
