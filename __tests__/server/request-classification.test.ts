/**
 * Which requests are LLM requests, and how their end is classified: a POST by default (listing stored
 * completions or reading a thread is not), and redirects or 304 are answers, not errors.
 */
import type { Response } from 'express';
import { listen, request } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { m, settled, total, value } from '../support/registry-values';
import { chatEvent } from '../support/streams';

describe('which requests are LLM requests', () => {
  it('only POST by default: GET and DELETE on LLM paths are left alone', async () => {
    const { app, registry } = metricsApp();
    app.get('/v1/chat/completions', (_req, res) => res.json({ object: 'list', data: [] }));
    app.get('/v1/threads/:id/messages', (_req, res) => res.json({ object: 'list', data: [] }));
    app.delete('/v1/chat/completions/:id', (_req, res) => res.status(404).json({ error: { message: 'gone' } }));
    app.delete('/v1/responses', (_req, res) => res.status(400).json({ error: { message: 'no' } }));
    app.post('/v1/chat/completions', (_req, res) => res.json({ model: 'm', choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 } }));
    const served = await listen(app);
    try {
      expect((await request(served.port, 'GET', '/v1/chat/completions')).status).toBe(200);
      expect((await request(served.port, 'GET', '/v1/threads/t1/messages')).status).toBe(200);
      expect((await request(served.port, 'DELETE', '/v1/chat/completions/abc')).status).toBe(404);
      expect((await request(served.port, 'DELETE', '/v1/responses')).status).toBe(400);
      expect(await total(registry, 'requests_started_total')).toBe(0);
      expect(await total(registry, 'requests_total')).toBe(0);
      expect((await request(served.port, 'POST', '/v1/chat/completions', {})).status).toBe(200);
      await settled(registry);
      expect(await total(registry, 'requests_total', { endpoint: 'chat_completions' })).toBe(1);
    } finally {
      await served.close();
    }
  });

  it('the endpoint option still decides when given, GET included', async () => {
    const { app, registry } = metricsApp({ endpoint: (req) => (req.url?.startsWith('/llm') ? 'chat_completions' : undefined) });
    app.get('/llm', (_req, res) => res.json({ model: 'm', choices: [], usage: { prompt_tokens: 1, completion_tokens: 4 } }));
    const served = await listen(app);
    try {
      expect((await request(served.port, 'GET', '/llm')).status).toBe(200);
      await settled(registry);
      expect(await total(registry, 'requests_total', { status: 'success' })).toBe(1);
    } finally {
      await served.close();
    }
  });
});

describe('bodies Node never sends', () => {
  it('HEAD, 204 and 304: nothing the app writes is counted, no first token, and the request succeeds', async () => {
    const { app, registry } = metricsApp({ endpoint: (req) => (req.url?.startsWith('/llm') ? 'chat_completions' : undefined) });
    const stream = (status: number) => (_req: unknown, res: Response): void => {
      res.writeHead(status, { 'content-type': 'text/event-stream' });
      res.write(chatEvent('m', 'Hello world, these tokens never leave the server'));
      res.end(chatEvent('m', undefined, 'stop') + 'data: [DONE]\n\n');
    };
    // Express answers HEAD through the GET route.
    app.get('/llm', stream(200));
    app.post('/llm/no-content', stream(204));
    app.post('/llm/not-modified', stream(304));
    const served = await listen(app);
    try {
      const head = await request(served.port, 'HEAD', '/llm');
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      expect((await request(served.port, 'POST', '/llm/no-content', {})).body.length).toBe(0);
      expect((await request(served.port, 'POST', '/llm/not-modified', {})).body.length).toBe(0);
      await settled(registry);
      expect(await total(registry, 'requests_total', { status: 'success' })).toBe(3);
      expect(await total(registry, 'output_tokens_total')).toBe(0);
      expect(await value(registry, m('time_to_first_token_seconds'), {}, 'count')).toBe(0);
      expect(await total(registry, 'parse_errors_total')).toBe(0);
    } finally {
      await served.close();
    }
  });
});

describe('status classification', () => {
  it.each([301, 302, 303, 307, 308, 304])('%i is success, not internal', async (status) => {
    const { app, registry } = metricsApp();
    app.post('/v1/chat/completions', (_req, res) => {
      if (status === 304) res.status(304).end();
      else res.redirect(status, '/v2/chat/completions');
    });
    const served = await listen(app);
    try {
      expect((await request(served.port, 'POST', '/v1/chat/completions', {})).status).toBe(status);
      await settled(registry);
      expect(await total(registry, 'requests_total', { status: 'success', error_type: '' })).toBe(1);
      expect(await total(registry, 'requests_total', { status: 'error' })).toBe(0);
    } finally {
      await served.close();
    }
  });
});
