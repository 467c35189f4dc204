/**
 * Time to first token and inter-token latency: which chunks bear tokens.
 */
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { postJson, sleep } from '../support/http';
import { contentChunk, continuousUsageStream, DONE, finishChunk, roleChunk } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, get, start } = t;

  it('times TTFT to the first token-bearing chunk, not the role chunk; ITL samples = tokens after it, zero-token chunks do not reset', async () => {
    const port = await start(
      chatRoute(async (_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.write(roleChunk('m'));
        await sleep(60);
        res.write(contentChunk('m', 'ab')); // first token-bearing chunk: TTFT, no ITL samples
        await sleep(60);
        res.write(contentChunk('m', '')); // zero tokens: no reset
        res.write(roleChunk('m'));
        res.write(contentChunk('m', 'cde')); // 3 samples of ≈ 20 ms
        res.write(contentChunk('m', 'f'));
        res.write(finishChunk('m'));
        res.end(DONE);
      }),
    );
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('time_to_first_token_seconds', { model: 'm' }, 'count')).toBe(1);
    expect(await get('time_to_first_token_seconds', { model: 'm' }, 'sum')).toBeGreaterThanOrEqual(0.055);
    expect(await get('inter_token_latency_seconds', { model: 'm' }, 'count')).toBe(4);
    const itlSum = await get('inter_token_latency_seconds', { model: 'm' }, 'sum');
    expect(itlSum).toBeGreaterThanOrEqual(0.055);
    expect(itlSum).toBeLessThan(5);
    expect(await get('output_tokens_total', { model: 'm' })).toBe(6);
    // request_duration_seconds: once, from arrival to the end (≥ the two 60 ms pauses).
    expect(await get('request_duration_seconds', { model: 'm' }, 'count')).toBe(1);
    expect(await get('request_duration_seconds', { model: 'm' }, 'sum')).toBeGreaterThanOrEqual(0.115);
  });

  it('continuous usage: a chunk whose cumulative usage grows is token-bearing even when its text is empty (ITL/TTFT)', async () => {
    const port = await start(chatRoute((req, res) => writeSse(res, [continuousUsageStream((req.body as { model: string }).model)])));
    await postJson(port, CHAT, { model: 'm', stream: true });
    await ended();
    expect(await get('output_tokens_total', { model: 'm' })).toBe(6);
    expect(await get('time_to_first_token_seconds', { model: 'm' }, 'count')).toBe(1);
    // Chunks of 2, 2, 1 and 1 tokens (usage 0→2→4→5→6): every token after the first chunk's 2 gets a sample.
    expect(await get('inter_token_latency_seconds', { model: 'm' }, 'count')).toBe(4);
    expect(await get('input_tokens_total', { model: 'm' })).toBe(11);
    expect(await get('cached_tokens', { model: 'm' }, 'sum')).toBe(3);
    expect(await get('requests_total', { model: 'm', status: 'success' })).toBe(1);
  });
});
