/**
 * Unary (non-streamed) responses.
 */
import type { Response } from 'express';
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { postJson } from '../support/http';
import { contentChunk, DONE, finishChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, gauges, get, start } = t;

  describe('unary responses', () => {
    const completion = (model: string): Record<string, unknown> => ({
      id: 'c',
      object: 'chat.completion',
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: 'short' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12, prompt_tokens_details: { cached_tokens: 2 } },
    });

    it.each([
      ['res.json()', (res: Response, body: Record<string, unknown>) => res.json(body)],
      ['res.send(object)', (res: Response, body: Record<string, unknown>) => res.send(body)],
      ['res.type(json).send(string)', (res: Response, body: Record<string, unknown>) => res.type('application/json').send(JSON.stringify(body))],
      ['res.send(Buffer) with a JSON content type', (res: Response, body: Record<string, unknown>) => res.type('application/json').send(Buffer.from(JSON.stringify(body)))],
      ['res.write() pieces then res.end()', (res: Response, body: Record<string, unknown>) => {
        const text = JSON.stringify(body);
        res.setHeader('Content-Type', 'application/json');
        res.write(text.slice(0, 10));
        res.write(Buffer.from(text.slice(10, 30)));
        res.end(text.slice(30));
      }],
    ])('adds usage.completion_tokens exactly for a body sent with %s', async (_how, send) => {
      const port = await start(
        chatRoute((_req, res) => {
          send(res, completion('m'));
        }),
      );
      await postJson(port, CHAT, { model: 'm', stream: false });
      await ended();
      expect(await get('output_tokens_total', { model: 'm' })).toBe(7);
      expect(await get('input_tokens_total', { model: 'm' })).toBe(5);
      expect(await get('cached_tokens', { model: 'm' }, 'sum')).toBe(2);
      expect(await get('requests_started_total', { model: 'm', endpoint: 'chat_completions', request_type: 'unary' })).toBe(1);
      expect(await get('requests_total', { model: 'm', endpoint: 'chat_completions', request_type: 'unary', status: 'success', error_type: '' })).toBe(1);
      expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(7);
      expect(await get('requests_finished_total', { model: 'm', finish_reason: 'stop' })).toBe(1);
      expect(await get('time_to_first_token_seconds', {}, 'count')).toBe(0);
      expect(await gauges('m')).toEqual([0, 0, 0]);
    });

    it('labels stream and unary requests of the same model apart', async () => {
      const port = await start(
        chatRoute((req, res) => {
          if ((req.body as { stream?: boolean }).stream) writeSse(res, [contentChunk('m', 'ab'), finishChunk('m'), DONE]);
          else res.json(completion('m'));
        }),
      );
      await postJson(port, CHAT, { model: 'm', stream: true });
      await postJson(port, CHAT, { model: 'm', stream: false });
      await postJson(port, CHAT, { model: 'm', stream: false });
      await ended(3);
      expect(await get('requests_started_total', { model: 'm', request_type: 'stream' })).toBe(1);
      expect(await get('requests_started_total', { model: 'm', request_type: 'unary' })).toBe(2);
      expect(await get('requests_total', { model: 'm', request_type: 'stream', status: 'success' })).toBe(1);
      expect(await get('requests_total', { model: 'm', request_type: 'unary', status: 'success' })).toBe(2);
      expect(await get('output_tokens_total', { model: 'm' })).toBe(2 + 14);
    });
  });
});
