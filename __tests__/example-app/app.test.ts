import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { RequestHandler } from 'express';
import { encode } from 'gpt-tokenizer';
import { Registry } from 'prom-client';
import { createApp } from '../../example-app/app';
import type { RunningServer } from '../../example-app/listen';
import { fetchMetrics, sumOf } from '../../example-app/metrics-text';
import { start, startExample } from '../support/example-app';
import { eventually } from '../support/http';

const MODEL = 'mock-llama-3.1-8b-instruct';
const OTHER_MODEL = 'mock-qwen2.5-7b-instruct';
const M = 'dynamo_frontend_';

interface StreamResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Milliseconds after the request was sent at which each piece of the body arrived. */
  arrivals: number[];
  /** Set when the response broke before its end. */
  broken?: Error;
}

/** A POST over a fresh connection that records when each piece arrives and whether the body ended cleanly. */
function post(baseUrl: string, path: string, body: unknown, onData?: (piece: Buffer) => void): Promise<StreamResult> {
  const url = new URL(path, baseUrl);
  const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const sentAt = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': payload.length },
      },
      (res) => {
        const parts: Buffer[] = [];
        const arrivals: number[] = [];
        let settled = false;
        const settle = (broken?: Error) => {
          if (settled) return;
          settled = true;
          const result: StreamResult = {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts),
            arrivals,
          };
          if (broken) result.broken = broken;
          resolve(result);
        };
        res.on('data', (piece: Buffer) => {
          parts.push(piece);
          arrivals.push(performance.now() - sentAt);
          onData?.(piece);
        });
        res.on('end', () => settle());
        res.on('error', (error) => settle(error));
        res.on('close', () => settle(res.complete ? undefined : new Error('response closed before its end')));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function events(body: Buffer): unknown[] {
  return body
    .toString('utf8')
    .split('\n\n')
    .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
    .map((block) => JSON.parse(block.slice('data: '.length)) as unknown);
}

interface Chunk {
  model: string;
  choices: { index: number; delta?: { content?: string }; text?: string; logprobs: unknown; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [{ role: 'user', content: 'Tell me about lighthouses.' }],
  ...extra,
});

describe('mock model', () => {
  const fast = { mock: { tokensPerSecond: 0 } };

  test('lists its models in the OpenAI list shape', async () => {
    const { url } = await startExample(fast);
    const list = (await (await fetch(`${url}/v1/models`)).json()) as { object: string; data: { id: string; object: string }[] };
    expect(list.object).toBe('list');
    expect(list.data.map((m) => m.id)).toEqual(expect.arrayContaining([MODEL, OTHER_MODEL]));
    expect(list.data.every((m) => m.object === 'model')).toBe(true);
  });

  test.each([
    ['malformed JSON', 400, '{"model": ', null, 'invalid_json'],
    ['no messages', 400, { model: MODEL }, 'messages', null],
    ['empty messages', 400, { model: MODEL, messages: [] }, 'messages', null],
    ['max_tokens 0', 400, chat({ max_tokens: 0 }), 'max_tokens', null],
    ['max_tokens beyond the context', 400, chat({ max_tokens: 8190 }), 'max_tokens', 'context_length_exceeded'],
    ['max_tokens not an integer', 400, chat({ max_tokens: 2.5 }), 'max_tokens', null],
    ['n out of range', 400, chat({ n: 0 }), 'n', null],
    ['stream_options without stream', 400, chat({ stream_options: { include_usage: true } }), 'stream_options', null],
    ['unknown model', 404, chat({ model: 'no-such-model' }), 'model', 'model_not_found'],
  ])('%s gets an OpenAI-style %i', async (_name, status, body, param, code) => {
    const { url } = await startExample(fast);
    const response = await post(url, '/v1/chat/completions', body);
    expect(response.status).toBe(status);
    const error = (JSON.parse(response.body.toString()) as { error: Record<string, unknown> }).error;
    expect(error).toEqual({ message: expect.any(String), type: 'invalid_request_error', param, code });
  });

  test('a unary answer reports exactly the tokens it contains', async () => {
    const { url } = await startExample(fast);
    const response = await post(url, '/v1/chat/completions', chat({ max_tokens: 40, ignore_eos: true }));
    const body = JSON.parse(response.body.toString()) as {
      object: string;
      choices: { message: { content: string }; finish_reason: string }[];
      usage: { completion_tokens: number; prompt_tokens: number; total_tokens: number };
    };
    expect(body.object).toBe('chat.completion');
    expect(body.usage.completion_tokens).toBe(40);
    expect(encode(body.choices[0]?.message.content ?? '')).toHaveLength(40);
    expect(body.choices[0]?.finish_reason).toBe('length');
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + 40);
  });

  test('streams one real token per chunk and ends with usage and [DONE]', async () => {
    const { url } = await startExample(fast);
    const response = await post(url, '/v1/chat/completions', chat({ stream: true, stream_options: { include_usage: true } }));
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(response.body.toString().endsWith('data: [DONE]\n\n')).toBe(true);
    const chunks = events(response.body) as Chunk[];
    const pieces = chunks.flatMap((c) => c.choices.map((choice) => choice.delta?.content ?? '')).filter((t) => t !== '');
    const usage = chunks.at(-1)?.usage;
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(pieces.length).toBe(usage?.completion_tokens);
    expect(pieces.every((piece) => encode(piece).length === 1)).toBe(true);
    expect(chunks.some((c) => c.choices[0]?.finish_reason === 'stop')).toBe(true);
  });

  test('packs MOCK_TOKENS_PER_CHUNK tokens into each chunk', async () => {
    const { url } = await startExample({ mock: { tokensPerSecond: 0, tokensPerChunk: 3 } });
    const response = await post(url, '/v1/completions', {
      model: MODEL,
      prompt: 'Once',
      max_tokens: 10,
      ignore_eos: true,
      stream: true,
    });
    const texts = (events(response.body) as Chunk[]).map((c) => c.choices[0]?.text ?? '').filter((t) => t !== '');
    expect(texts.map((t) => encode(t).length)).toEqual([3, 3, 3, 1]);
  });

  test('continuous_usage_stats puts cumulative usage on every chunk', async () => {
    const { url } = await startExample(fast);
    const response = await post(
      url,
      '/v1/chat/completions',
      chat({ stream: true, max_tokens: 12, ignore_eos: true, stream_options: { continuous_usage_stats: true } }),
    );
    const chunks = events(response.body) as Chunk[];
    let previous = 0;
    for (const chunk of chunks) {
      const content = chunk.choices[0]?.delta?.content ?? '';
      const completion = chunk.usage?.completion_tokens ?? NaN;
      expect(completion - previous).toBe(content === '' ? 0 : encode(content).length);
      previous = completion;
    }
    expect(previous).toBe(12);
  });

  test('logprobs carry one entry per token, for chat and completions', async () => {
    const { url } = await startExample(fast);
    const chatBody = JSON.parse(
      (await post(url, '/v1/chat/completions', chat({ max_tokens: 7, ignore_eos: true, logprobs: true, top_logprobs: 2 })))
        .body.toString(),
    ) as { choices: { logprobs: { content: { token: string; top_logprobs: unknown[] }[] } }[] };
    const entries = chatBody.choices[0]?.logprobs.content ?? [];
    expect(entries).toHaveLength(7);
    expect(entries.every((e) => e.top_logprobs.length === 2)).toBe(true);

    const streamed = await post(url, '/v1/completions', {
      model: MODEL,
      prompt: 'The keeper',
      max_tokens: 5,
      ignore_eos: true,
      logprobs: 1,
      stream: true,
    });
    const tokenLists = (events(streamed.body) as Chunk[])
      .map((c) => (c.choices[0]?.logprobs as { tokens: string[] } | null)?.tokens)
      .filter((t): t is string[] => t !== undefined);
    expect(tokenLists.flat()).toHaveLength(5);
    expect(tokenLists.every((t) => t.length === 1)).toBe(true);
  });

  test('n gives several choices, all counted in usage', async () => {
    const { url } = await startExample(fast);
    const response = await post(
      url,
      '/v1/chat/completions',
      chat({ n: 3, max_tokens: 5, ignore_eos: true, stream: true, stream_options: { include_usage: true } }),
    );
    const chunks = events(response.body) as Chunk[];
    const indices = new Set(chunks.flatMap((c) => c.choices.map((choice) => choice.index)));
    expect([...indices].sort()).toEqual([0, 1, 2]);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(15);
  });

  test('stops generating when the client leaves, leaving no timer behind', async () => {
    const { url } = await startExample({ mock: { tokensPerSecond: 50 } });
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    await new Promise<void>((resolve, reject) => {
      const req = http.request(new URL('/v1/chat/completions', url), {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json' },
      });
      req.on('response', (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
      req.end(JSON.stringify(chat({ stream: true, max_tokens: 500, ignore_eos: true })));
    });
    await eventually(async () => {
      const metrics = await fetchMetrics(url);
      expect(sumOf(metrics, `${M}inflight_requests`)).toBe(0);
      expect(timers()).toBeLessThanOrEqual(before);
    });
  });

  test('the gateway counts every streamed token of the mock, per model', async () => {
    const { url } = await startExample(fast);
    const body = chat({ stream: true, max_tokens: 25, ignore_eos: true, stream_options: { continuous_usage_stats: true } });
    await post(url, '/v1/chat/completions', body);
    await post(url, '/v1/chat/completions', { ...body, model: OTHER_MODEL, max_tokens: 9 });
    await eventually(async () => {
      const metrics = await fetchMetrics(url);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: MODEL })).toBe(25);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: OTHER_MODEL })).toBe(9);
    });
  });
});

describe('metrics of the mock\'s traffic (the contract, checked on known token counts)', () => {
  test('time to first token once per stream; inter-token latency once per token after the first chunk', async () => {
    const { url } = await startExample({ mock: { tokensPerSecond: 400, tokensPerChunk: 4 } });
    const response = await post(url, '/v1/chat/completions', chat({ stream: true, max_tokens: 20, ignore_eos: true, stream_options: { include_usage: true, continuous_usage_stats: true } }));
    const usage = (events(response.body) as Chunk[]).at(-1)?.usage;
    await eventually(async () => {
      const metrics = await fetchMetrics(url);
      const model = { model: MODEL };
      expect({
        output: sumOf(metrics, `${M}output_tokens_total`, model),
        ttft: sumOf(metrics, `${M}time_to_first_token_seconds_count`, model),
        // 5 chunks of 4 tokens (exact, from the continuous usage): the first chunk's get no sample, each later 4.
        itl: sumOf(metrics, `${M}inter_token_latency_seconds_count`, model),
        isl: sumOf(metrics, `${M}input_sequence_tokens_sum`, model),
        osl: sumOf(metrics, `${M}output_sequence_tokens_sum`, model),
        finishedByLength: sumOf(metrics, `${M}requests_finished_total`, { ...model, finish_reason: 'length' }),
        inflight: sumOf(metrics, `${M}inflight_requests`),
        queued: sumOf(metrics, `${M}queued_requests`),
      }).toEqual({
        output: 20,
        ttft: 1,
        itl: 16,
        isl: usage?.prompt_tokens,
        osl: 20,
        finishedByLength: 1,
        inflight: 0,
        queued: 0,
      });
    });
  });

  test('logprobs alone (no usage) give an exact count', async () => {
    const { url } = await startExample({ mock: { tokensPerSecond: 0, tokensPerChunk: 3 } });
    await post(url, '/v1/completions', { model: MODEL, prompt: 'Once', max_tokens: 31, ignore_eos: true, logprobs: 0, stream: true });
    await eventually(async () => {
      expect(sumOf(await fetchMetrics(url), `${M}output_tokens_total`, { model: MODEL })).toBe(31);
    });
  });

  test('with final usage only, the estimate is reconciled: total minus the published overcount is the usage', async () => {
    const { url } = await startExample({ mock: { tokensPerSecond: 0, tokensPerChunk: 2 } });
    const response = await post(url, '/v1/chat/completions', chat({ stream: true, n: 2, stream_options: { include_usage: true } }));
    const usage = (events(response.body) as Chunk[]).at(-1)?.usage;
    await eventually(async () => {
      const metrics = await fetchMetrics(url);
      const counted = sumOf(metrics, `${M}output_tokens_total`, { model: MODEL });
      const overcount = sumOf(metrics, `${M}output_tokens_overcount_total`, { model: MODEL });
      expect(counted - overcount).toBe(usage?.completion_tokens);
    });
  });

  test('a client that leaves mid-stream is counted as cancelled and disconnected', async () => {
    const { url } = await startExample({ mock: { tokensPerSecond: 50 } });
    await new Promise<void>((resolve) => {
      const req = http.request(new URL('/v1/chat/completions', url), {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json' },
      });
      req.on('response', (res) => res.once('data', () => (req.destroy(), resolve())));
      req.on('error', () => undefined);
      req.end(JSON.stringify(chat({ stream: true, max_tokens: 200, ignore_eos: true })));
    });
    await eventually(async () => {
      const metrics = await fetchMetrics(url);
      expect({
        cancelled: sumOf(metrics, `${M}requests_total`, { model: MODEL, status: 'error', error_type: 'cancelled' }),
        disconnected: sumOf(metrics, `${M}disconnected_clients`),
        cancellations: sumOf(metrics, `${M}model_cancellation_total`, { model: MODEL }),
        inflight: sumOf(metrics, `${M}inflight_requests`),
      }).toEqual({ cancelled: 1, disconnected: 1, cancellations: 1, inflight: 0 });
    });
  });
});

describe('proxy mode', () => {
  /** Records the bytes each upstream response wrote, to compare with what the client got through the proxy. */
  function tap(sent: Buffer[]): RequestHandler {
    return (_req, res, next) => {
      const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
      const end = res.end.bind(res) as (...args: unknown[]) => typeof res;
      const record = (chunk: unknown) => {
        if (chunk !== undefined && typeof chunk !== 'function') sent.push(Buffer.from(chunk as string));
      };
      res.write = ((chunk: unknown, ...rest: unknown[]) => {
        record(chunk);
        return write(chunk, ...rest);
      }) as typeof res.write;
      res.end = ((chunk?: unknown, ...rest: unknown[]) => {
        record(chunk);
        return end(chunk, ...rest);
      }) as typeof res.end;
      next();
    };
  }

  async function gatewayTo(upstreamUrl: string, timeoutMs = 5000): Promise<RunningServer> {
    return startExample({ upstream: { url: upstreamUrl, timeoutMs } });
  }

  /** An upstream that answers every request with `handler`. */
  async function fakeUpstream(handler: RequestHandler): Promise<RunningServer> {
    const app = express();
    app.use(handler);
    return start(app);
  }

  async function errorCounts(url: string, errorType: string) {
    const metrics = await fetchMetrics(url);
    return {
      errors: sumOf(metrics, `${M}requests_total`, { status: 'error', error_type: errorType }),
      inflight: sumOf(metrics, `${M}inflight_requests`),
    };
  }

  test('streams through byte for byte, as it arrives, and the tokens are counted exactly', async () => {
    const sent: Buffer[] = [];
    const upstreamApp = express();
    upstreamApp.use(tap(sent));
    upstreamApp.use(createApp({ registry: new Registry(), mock: { tokensPerSecond: 100 } }));
    const upstream = await start(upstreamApp);
    const gateway = await gatewayTo(upstream.url);

    const response = await post(
      gateway.url,
      '/v1/chat/completions',
      chat({ stream: true, max_tokens: 40, ignore_eos: true, stream_options: { include_usage: true, continuous_usage_stats: true } }),
    );
    expect(response.status).toBe(200);
    expect(response.body.equals(Buffer.concat(sent))).toBe(true);
    // 40 tokens at 100/s take 400 ms: a buffering proxy would deliver everything at the end.
    expect(response.arrivals.length).toBeGreaterThan(10);
    expect((response.arrivals[1] ?? Infinity) < (response.arrivals.at(-1) ?? 0) - 200).toBe(true);

    await eventually(async () => {
      const metrics = await fetchMetrics(gateway.url);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: MODEL })).toBe(40);
      expect(sumOf(metrics, `${M}requests_total`, { model: MODEL, status: 'success' })).toBe(1);
    });
  });

  test('forwards the body the client sent, not a re-serialised copy', async () => {
    let received = '';
    const upstream = await fakeUpstream((req, res) => {
      req.setEncoding('utf8');
      req.on('data', (piece: string) => (received += piece));
      req.on('end', () => res.status(400).json({ error: { message: 'x', type: 'invalid_request_error', param: null, code: null } }));
    });
    const gateway = await gatewayTo(upstream.url);
    const raw = '{ "model" : "m",\n  "n": 1.0, "messages": [] }';
    await post(gateway.url, '/v1/chat/completions', raw);
    expect(received).toBe(raw);
  });

  test('a proxied unary answer is counted from its usage', async () => {
    const upstream = await startExample({ mock: { tokensPerSecond: 0 } });
    const gateway = await gatewayTo(upstream.url);
    const response = await post(gateway.url, '/v1/completions', { model: OTHER_MODEL, prompt: 'x', max_tokens: 11, ignore_eos: true });
    expect(response.status).toBe(200);
    await eventually(async () => {
      const metrics = await fetchMetrics(gateway.url);
      expect(sumOf(metrics, `${M}output_tokens_total`, { model: OTHER_MODEL })).toBe(11);
    });
  });

  test('an unreachable upstream gives 502 and an internal error', async () => {
    const gateway = await gatewayTo(`http://127.0.0.1:${await freePort()}`);
    const response = await post(gateway.url, '/v1/chat/completions', chat({ stream: true }));
    expect(response.status).toBe(502);
    expect(JSON.parse(response.body.toString())).toEqual({
      error: { message: expect.stringContaining('ECONNREFUSED'), type: 'server_error', param: null, code: 'ECONNREFUSED' },
    });
    await eventually(async () => expect(await errorCounts(gateway.url, 'internal')).toEqual({ errors: 1, inflight: 0 }));
  });

  test.each([
    [429, 'overload'],
    [503, 'unavailable'],
  ])('an upstream %i reaches the client as is and is counted as %s', async (status, errorType) => {
    const body = { error: { message: 'busy', type: 'server_error', param: null, code: null } };
    const upstream = await fakeUpstream((_req, res) => void res.status(status).json(body));
    const gateway = await gatewayTo(upstream.url);
    const response = await post(gateway.url, '/v1/chat/completions', chat({ stream: true }));
    expect(response.status).toBe(status);
    expect(JSON.parse(response.body.toString())).toEqual(body);
    await eventually(async () => expect(await errorCounts(gateway.url, errorType)).toEqual({ errors: 1, inflight: 0 }));
  });

  test('an upstream that never answers gives 504 after the timeout', async () => {
    const upstream = await fakeUpstream(() => undefined);
    const gateway = await gatewayTo(upstream.url, 300);
    const started = Date.now();
    const response = await post(gateway.url, '/v1/chat/completions', chat({ stream: true }));
    expect(response.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect((JSON.parse(response.body.toString()) as { error: { code: string } }).error.code).toBe('upstream_timeout');
    await eventually(async () => expect(await errorCounts(gateway.url, 'internal')).toEqual({ errors: 1, inflight: 0 }));
  });

  test('an upstream that dies mid-stream breaks the client stream and nothing stays in flight', async () => {
    const upstream = await fakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: MODEL, choices: [{ index: 0, delta: { content: ' Hello' }, finish_reason: null }] };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      setTimeout(() => res.destroy(), 100);
    });
    const gateway = await gatewayTo(upstream.url);
    const response = await post(gateway.url, '/v1/chat/completions', chat({ stream: true }));
    expect(response.status).toBe(200);
    expect(response.broken).toBeDefined();
    expect(response.body.toString()).toContain(' Hello');
    await eventually(async () => {
      const metrics = await fetchMetrics(gateway.url);
      expect(sumOf(metrics, `${M}inflight_requests`)).toBe(0);
      expect(sumOf(metrics, `${M}requests_total`, { model: MODEL, status: 'error', error_type: 'internal' })).toBe(1);
    });
  });

  test('a client that leaves cancels the upstream request', async () => {
    let upstreamClosed = false;
    const upstream = await fakeUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[]}\n\n');
      res.on('close', () => (upstreamClosed = true));
    });
    const gateway = await gatewayTo(upstream.url);
    await new Promise<void>((resolve) => {
      const req = http.request(new URL('/v1/chat/completions', gateway.url), {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json' },
      });
      req.on('response', (res) => res.once('data', () => (req.destroy(), resolve())));
      req.on('error', () => undefined);
      req.end(JSON.stringify(chat({ stream: true })));
    });
    await eventually(async () => expect(upstreamClosed).toBe(true));
  });
});
