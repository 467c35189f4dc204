/**
 * Streams a sample of the generated streams through the real middleware on a real Express server, in the
 * scenario's wire format (chat completions, Responses or Anthropic Messages), and reads the counters back from the
 * registry: (a) without usage, the live total must equal the benchmark's own sum of
 * estimates (the simulation measures what the middleware does); (b) with a final usage chunk,
 * output_tokens_total − output_tokens_overcount_total must equal the true count (final error 0).
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics } from '../../lib';
import type { Category } from './corpus';
import type { Estimator } from './estimators';
import type { Chunk, Scenario, Vocabulary } from './streams';

export interface MiddlewareCheck {
  ok: boolean;
  requests: number;
  mismatches: string[];
  note?: string;
}

interface Stored {
  chunks: Chunk[];
  usage: boolean;
  model: string;
  format: Scenario['format'];
}

const PATHS: Record<Scenario['format'], string> = {
  chat: '/v1/chat/completions',
  responses: '/v1/responses',
  anthropic: '/v1/messages',
};

const PREFIX = 'dynamo_frontend';

async function counterValue(registry: Registry, name: string, model: string): Promise<number> {
  const metric = registry.getSingleMetric(`${PREFIX}_${name}`);
  if (!metric) return 0;
  const data = await metric.get();
  return data.values.filter((v) => v.labels.model === model).reduce((a, v) => a + v.value, 0);
}

const sse = (body: unknown, event?: string) =>
  `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(body)}\n\n`;

/** OpenAI chat completions as an engine writes it: role chunk, one write per chunk, finish, usage, [DONE]. */
function writeChat(res: express.Response, s: Stored, completion: number): void {
  const base = { id: 'chatcmpl-acc', object: 'chat.completion.chunk', created: 1, model: s.model };
  res.write(sse({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }));
  for (const c of s.chunks) {
    res.write(sse({ ...base, choices: [{ index: 0, delta: { content: c.text }, finish_reason: null }] }));
  }
  res.write(sse({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
  if (s.usage) {
    const usage = { prompt_tokens: 12, completion_tokens: completion, total_tokens: 12 + completion };
    res.write(sse({ ...base, choices: [], usage }));
  }
  res.end('data: [DONE]\n\n');
}

/** OpenAI Responses: typed events; the usage is in response.completed. */
function writeResponses(res: express.Response, s: Stored, completion: number): void {
  const response = { id: 'resp_acc', object: 'response', model: s.model };
  res.write(sse({ type: 'response.created', response: { ...response, status: 'in_progress' } }, 'response.created'));
  for (const c of s.chunks) {
    const delta = { type: 'response.output_text.delta', item_id: 'msg_acc', output_index: 0, content_index: 0, delta: c.text };
    res.write(sse(delta, delta.type));
  }
  const usage = {
    input_tokens: 12,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: completion,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 12 + completion,
  };
  const done = { ...response, status: 'completed', ...(s.usage ? { usage } : {}) };
  res.end(sse({ type: 'response.completed', response: done }, 'response.completed'));
}

/** Anthropic Messages: message_start's output_tokens is a placeholder; message_delta's is the cumulative total. */
function writeAnthropic(res: express.Response, s: Stored, completion: number): void {
  const message = { id: 'msg_acc', type: 'message', role: 'assistant', content: [], model: s.model };
  res.write(sse({ type: 'message_start', message: { ...message, usage: { input_tokens: 12, output_tokens: 1 } } }, 'message_start'));
  res.write(sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'));
  for (const c of s.chunks) {
    res.write(sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: c.text } }, 'content_block_delta'));
  }
  res.write(sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'));
  const usage = s.usage ? { usage: { output_tokens: completion } } : {};
  res.write(sse({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, ...usage }, 'message_delta'));
  res.end(sse({ type: 'message_stop' }, 'message_stop'));
}

const WRITERS = { chat: writeChat, responses: writeResponses, anthropic: writeAnthropic };

export async function verifyWithMiddleware(
  generated: Map<string, { id: string; category: Category; chunks: Chunk[] }[]>,
  scenarios: Scenario[],
  estimators: Estimator[],
  perScenario = 4,
): Promise<MiddlewareCheck> {
  const registry = new Registry();
  // The model label carries the estimator and the stream's vocabulary, so countTokens can dispatch on it.
  const byModel = new Map<string, { est: Estimator; vocab: Vocabulary['name'] }>();
  const modelFor = (ei: number, vocab: Vocabulary['name']) => {
    const model = `acc-${ei}-${vocab}`;
    byModel.set(model, { est: estimators[ei]!, vocab });
    return model;
  };
  const countTokens = (text: string, model: string): number => {
    const m = byModel.get(model);
    if (!m) throw new Error(`unexpected model label ${model}`);
    return m.est.count(text, m.vocab);
  };
  const streams = new Map<string, Stored>();
  const app = express();
  app.use(express.json());
  app.use(dynamoMetrics({ registry, countTokens }));
  for (const path of Object.values(PATHS)) {
    app.post(path, (req, res) => {
      const s = streams.get(String((req.body as { stream_id?: unknown }).stream_id));
      if (!s) {
        res.status(404).json({ error: { message: 'no such stream' } });
        return;
      }
      res.setHeader('Content-Type', 'text/event-stream');
      WRITERS[s.format](res, s, s.chunks.reduce((a, c) => a + c.tokens, 0));
    });
  }
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;

  const mismatches: string[] = [];
  let requests = 0;
  try {
    for (const sc of scenarios) {
      const all = generated.get(sc.name) ?? [];
      // A spread of text kinds: the first stream of each category, then round-robin.
      const sample: typeof all = [];
      const cats = [...new Set(all.map((s) => s.category))];
      for (let round = 0; sample.length < perScenario && round < all.length; round++) {
        for (const cat of cats) {
          const s = all.filter((x) => x.category === cat)[round];
          if (s && sample.length < perScenario) sample.push(s);
        }
      }
      for (const [ei, est] of estimators.entries()) {
        if (est.hypothetical) continue;
        const model = modelFor(ei, sc.vocab);
        for (const s of sample) {
          const truth = s.chunks.reduce((a, c) => a + c.tokens, 0);
          const simulated = s.chunks.reduce((a, c) => a + est.count(c.text, sc.vocab), 0);
          for (const usage of [false, true]) {
            const key = `${requests}`;
            streams.set(key, { chunks: s.chunks, usage, model, format: sc.format });
            const before = await counterValue(registry, 'output_tokens_total', model);
            const overBefore = await counterValue(registry, 'output_tokens_overcount_total', model);
            const res = await fetch(`http://127.0.0.1:${port}${PATHS[sc.format]}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ model, stream: true, stream_id: key }),
            });
            await res.text();
            await new Promise((r) => setTimeout(r, 2)); // let the response's 'finish' handlers run
            requests++;
            streams.delete(key);
            const counted = (await counterValue(registry, 'output_tokens_total', model)) - before;
            const over = (await counterValue(registry, 'output_tokens_overcount_total', model)) - overBefore;
            const where = `${sc.name} (${sc.format}) / ${est.name} / ${s.id} (${usage ? 'with' : 'without'} usage)`;
            if (!usage && counted !== simulated) mismatches.push(`${where}: live total ${counted}, simulated ${simulated}`);
            if (usage && counted - over !== truth) {
              mismatches.push(`${where}: output ${counted} − overcount ${over} = ${counted - over}, usage ${truth}`);
            }
            if (usage && counted !== Math.max(simulated, truth)) {
              mismatches.push(`${where}: output ${counted}, expected max(live ${simulated}, usage ${truth})`);
            }
          }
        }
      }
    }
  } finally {
    server.close();
  }
  return { ok: mismatches.length === 0 && requests > 0, requests, mismatches };
}
