/**
 * Totals end exactly at the usage a stream states.
 */
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import type { Handler } from '../support/express-suite';
import { postJson } from '../support/http';
import { chatChunk, contentChunk, DONE, finishChunk, roleChunk, sse } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, get, start } = t;

  describe('exactness against the final usage', () => {
    const streamWithUsage = (completionTokens: number): Handler => (_req, res) =>
      writeSse(res, [
        roleChunk('m'),
        contentChunk('m', 'one'),
        contentChunk('m', 'two'),
        contentChunk('m', 'six'),
        finishChunk('m'),
        sse(chatChunk('m', [], { prompt_tokens: 4, completion_tokens: completionTokens, total_tokens: 4 + completionTokens })),
        DONE,
      ]);

    it('raises a low live estimate to completion_tokens', async () => {
      const port = await start(chatRoute(streamWithUsage(20)), { metrics: { countTokens: () => 1 } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'm' })).toBe(20);
      expect(await get('output_tokens_overcount_total', { model: 'm' })).toBe(0);
      expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(20);
      expect(await get('input_tokens_total', { model: 'm' })).toBe(4);
    });

    it('publishes an overshoot in output_tokens_overcount_total', async () => {
      const port = await start(chatRoute(streamWithUsage(20)), { metrics: { countTokens: () => 10 } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'm' })).toBe(30);
      expect(await get('output_tokens_overcount_total', { model: 'm' })).toBe(10);
      expect(await get('output_sequence_tokens', { model: 'm' }, 'sum')).toBe(20);
    });

    it('adds exactly completion_tokens per request over several requests (the increase per request)', async () => {
      const port = await start(chatRoute(streamWithUsage(9)), { metrics: { countTokens: () => 2 } });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended(1);
      const afterFirst = await get('output_tokens_total', { model: 'm' });
      await postJson(port, CHAT, { model: 'm', stream: true });
      await ended(2);
      expect(afterFirst).toBe(9);
      expect((await get('output_tokens_total', { model: 'm' })) - afterFirst).toBe(9);
    });
  });
});
