/**
 * Which requests are LLM requests, and how their end is classified: a POST by default (listing stored
 * completions or reading a thread is not), and redirects or 304 are answers, not errors.
 */
import { listen, request } from '../support/http';
import { metricsApp } from '../support/metered-app';
import { settled, total } from '../support/registry-values';

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
