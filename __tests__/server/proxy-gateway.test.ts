/**
 * Behind http-proxy-middleware (no parsed body): the model comes from the response.
 */
import http from 'node:http';
import type { Application } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { dynamoMetrics, metricsRouter } from '../../lib/index';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import type { Handler } from '../support/express-suite';
import { openStream, postJson, signal } from '../support/http';
import { seededRandom } from '../support/prng';
import { codePoints, contentChunk, cutAtRandom, RICH_STREAM_TOKENS, richChatStream } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, expressLib, gauges, get, serve } = t;

  describe('behind http-proxy-middleware (no parsed body: the model comes from the response)', () => {
    async function startUpstream(handler: Handler): Promise<number> {
      const upstream = expressLib() as unknown as Application;
      upstream.use(expressLib.json());
      chatRoute(handler)(upstream);
      const server = await serve(upstream);
      return server.port;
    }

    async function startProxy(upstreamPort: number): Promise<number> {
      const app = expressLib() as unknown as Application;
      app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints }));
      app.use(metricsRouter({ registry: t.registry }));
      app.use('/v1', createProxyMiddleware({ target: `http://127.0.0.1:${upstreamPort}/v1` }));
      const server = await serve(app);
      return server.port;
    }

    it('counts a proxied stream under the upstream\'s model name, byte for byte', async () => {
      const pieces = cutAtRandom(Buffer.from(richChatStream('upstream-model')), 30, seededRandom(3));
      const upstreamPort = await startUpstream((_req, res) => writeSse(res, pieces));
      const proxyPort = await startProxy(upstreamPort);
      const response = await postJson(proxyPort, CHAT, { model: 'asked-model', stream: true });
      expect(response.body.equals(Buffer.concat(pieces))).toBe(true);
      await ended();
      expect(await get('output_tokens_total', { model: 'upstream-model' })).toBe(RICH_STREAM_TOKENS);
      expect(await get('requests_total', { model: 'upstream-model', endpoint: 'chat_completions', request_type: 'stream', status: 'success' })).toBe(1);
      expect(await get('requests_started_total', { model: 'upstream-model' })).toBe(1);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
      expect(await gauges('upstream-model')).toEqual([0, 0, 0]);
    });

    it('counts a client that leaves a proxied stream as cancelled', async () => {
      const upstreamClosed = signal();
      const upstreamPort = await startUpstream((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(contentChunk('upstream-model', 'Hello'));
        res.on('close', () => upstreamClosed.release());
      });
      const proxyPort = await startProxy(upstreamPort);
      const stream = await openStream(proxyPort, CHAT, { model: 'asked-model', stream: true });
      await stream.waitFor('Hello');
      stream.abort();
      await ended();
      expect(await get('requests_total', { model: 'upstream-model', status: 'error', error_type: 'cancelled' })).toBe(1);
      expect(await get('output_tokens_total', { model: 'upstream-model' })).toBe(5);
      expect(await get('disconnected_clients')).toBe(1);
      expect(await gauges('upstream-model')).toEqual([0, 0, 0]);
    });

    it('counts an upstream that breaks mid-stream as internal when the proxy destroys the response', async () => {
      // http-proxy-middleware 3 leaves the client's response open forever when the upstream socket dies mid-body
      // (nothing ends, so nothing can be counted); a proxy that destroys the response on upstream abort is used here.
      const upstreamPort = await startUpstream((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(contentChunk('upstream-model', 'Hello'), () => setTimeout(() => res.socket?.destroy(), 20));
      });
      const app = expressLib() as unknown as Application;
      app.use(dynamoMetrics({ registry: t.registry, countTokens: codePoints }));
      app.post(CHAT, (req, res) => {
        const upstream = http.request({ host: '127.0.0.1', port: upstreamPort, method: 'POST', path: CHAT, headers: req.headers }, (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.on('aborted', () => res.destroy());
          upstreamRes.on('error', () => res.destroy());
          upstreamRes.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      });
      const server = await serve(app);
      const stream = await openStream(server.port, CHAT, { model: 'asked-model', stream: true });
      await stream.done;
      await ended();
      expect(await get('requests_total', { model: 'upstream-model', status: 'error', error_type: 'internal' })).toBe(1);
      expect(await get('disconnected_clients')).toBe(0);
      expect(await get('model_cancellation_total')).toBe(0);
      expect(await get('output_tokens_total', { model: 'upstream-model' })).toBe(5);
      expect(await gauges('upstream-model')).toEqual([0, 0, 0]);
    });

    it('maps an upstream error status through the proxy', async () => {
      const upstreamPort = await startUpstream((_req, res) => {
        res.status(429).json({ error: { message: 'rate limited', type: 'rate_limit_error' } });
      });
      const proxyPort = await startProxy(upstreamPort);
      const response = await postJson(proxyPort, CHAT, { model: 'asked-model', stream: true });
      expect(response.status).toBe(429);
      await ended();
      expect(await get('requests_total', { status: 'error', error_type: 'overload' })).toBe(1);
      expect(await gauges('unknown_model')).toEqual([0, 0, 0]);
    });
  });
});
