import express from 'express';
import OpenAI from 'openai';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import { closedAfterEach, listen, request } from '../support/http';
import { m, valueFromText } from '../support/registry-values';
import { o200kTokens, oneTokenStream, pieces } from '../support/token-streams';

// Over a real socket, with the official OpenAI SDK as the client and the default estimator: the counters read back
// from /metrics for the stream shapes servers really send.

const TEXTS = [
  'The harbour was quiet at dawn. Fishing boats rocked against the pier while gulls argued over scraps. 🐟🌅 By noon the market filled with voices, baskets of oysters, lemons and fresh bread.',
  '서울의 가을은 짧지만 아름답습니다. 단풍이 물든 산길을 걸으면 마음이 편안해져요. 🍁 주말에는 친구들과 함께 북한산에 오를 계획입니다.',
  'To reverse a list in Python, call items.reverse() to change it in place, or use reversed(items) for an iterator. Slicing with items[::-1] returns a reversed copy. ✅',
];

type Shape = 'engine' | 'pieces20';

const servers = closedAfterEach();

async function serve(): Promise<{ client: OpenAI; scrape: () => Promise<string> }> {
  const registry = new Registry();
  const app = express();
  app.use(express.json());
  app.use(dynamoMetrics({ registry }));
  app.use(metricsRouter({ registry }));
  app.post('/v1/chat/completions', async (req, res) => {
    const body = req.body as { model: string; messages: { content: string }[]; stream_options?: { include_usage?: boolean } };
    const [shape, index] = body.messages[0]!.content.split(':') as [Shape, string];
    const text = TEXTS[Number(index)]!;
    const deltas = shape === 'engine' ? oneTokenStream(text, 'empty').deltas : pieces(text, 20);
    const base = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: body.model };
    const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    res.setHeader('Content-Type', 'text/event-stream');
    send({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
    for (const content of deltas) {
      send({ ...base, choices: [{ index: 0, delta: { content }, finish_reason: null }] });
      await new Promise((resolve) => setImmediate(resolve));
    }
    send({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
    if (body.stream_options?.include_usage === true) {
      const completion = o200kTokens(text);
      send({ ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: completion, total_tokens: 9 + completion } });
    }
    res.end('data: [DONE]\n\n');
  });
  const server = await listen(app);
  servers.push(server);
  return {
    client: new OpenAI({ apiKey: 'test', baseURL: `${server.url}/v1`, maxRetries: 0 }),
    scrape: async () => (await request(server.port, 'GET', '/metrics')).body.toString('utf8'),
  };
}

async function stream(client: OpenAI, model: string, prompt: string, usage: boolean): Promise<string> {
  const chunks = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: prompt }],
    stream: true,
    ...(usage ? { stream_options: { include_usage: true } } : {}),
  });
  let text = '';
  for await (const chunk of chunks) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

const counter = (text: string, suffix: string, model: string): number => valueFromText(text, m(suffix), { model }) ?? 0;

describe('token counts over HTTP, read from /metrics', () => {
  it('counts an engine stream with "" deltas for split characters close to its tokens, all of it estimated', async () => {
    const { client, scrape } = await serve();
    for (const [i, text] of TEXTS.entries()) {
      const before = await scrape();
      expect(await stream(client, 'engine-model', `engine:${i}`, false)).toBe(text);
      const after = await scrape();
      const counted = counter(after, 'output_tokens_total', 'engine-model') - counter(before, 'output_tokens_total', 'engine-model');
      const tokens = o200kTokens(text);
      expect(Math.abs(counted - tokens) / tokens).toBeLessThanOrEqual(0.1);
    }
    const text = await scrape();
    expect(counter(text, 'output_tokens_estimated_total', 'engine-model')).toBe(counter(text, 'output_tokens_total', 'engine-model'));
  });

  it('ends every request from the 4th on exactly at its usage, on text re-buffered into 20-character pieces', async () => {
    const { client, scrape } = await serve();
    const increases: { output: number; overcount: number; usage: number }[] = [];
    for (let r = 0; r < 9; r++) {
      const i = r % TEXTS.length;
      const before = await scrape();
      await stream(client, 'proxied-model', `pieces20:${i}`, true);
      const after = await scrape();
      const delta = (suffix: string) => counter(after, suffix, 'proxied-model') - counter(before, suffix, 'proxied-model');
      increases.push({ output: delta('output_tokens_total'), overcount: delta('output_tokens_overcount_total'), usage: o200kTokens(TEXTS[i]!) });
      expect(delta('output_tokens_estimated_total')).toBe(0);
    }
    for (const step of increases.slice(3)) expect(step).toEqual({ output: step.usage, overcount: 0, usage: step.usage });
    const text = await scrape();
    // What usage confirmed is the whole total except the early overshoot, published as overcount.
    const confirmed = counter(text, 'output_tokens_total', 'proxied-model') - counter(text, 'output_tokens_overcount_total', 'proxied-model');
    expect(confirmed).toBe(increases.reduce((a, s) => a + s.usage, 0));
  });
});
