/**
 * A stream counts the same however it is split into writes, and engine-like streams (one event per write) count
 * exactly.
 */
import { CHAT, describeOnEachExpress, writeSse } from '../support/express-suite';
import { postJson } from '../support/http';
import { seededRandom } from '../support/prng';
import { chatChunk, codePoints, contentChunk, continuousUsageStream, cutAtRandom, DONE, finishChunk, RICH_STREAM_TOKENS, richChatStream, roleChunk, sse } from '../support/streams';

describeOnEachExpress((t) => {
  const { chatRoute, ended, get, start } = t;

  describe('split invariance', () => {
    const SNAPSHOT: [string, 'count' | 'sum' | undefined][] = [
      ['output_tokens_total', undefined],
      ['reasoning_tokens_total', undefined],
      ['requests_total', undefined],
      ['requests_started_total', undefined],
      ['requests_finished_total', undefined],
      ['input_tokens_total', undefined],
      ['time_to_first_token_seconds', 'count'],
      ['inter_token_latency_seconds', 'count'],
      ['output_sequence_tokens', 'sum'],
      ['input_sequence_tokens', 'sum'],
      ['cached_tokens', 'sum'],
      ['output_tokens_overcount_total', undefined],
    ];

    async function snapshot(model: string): Promise<Record<string, number>> {
      const result: Record<string, number> = {};
      for (const [name, part] of SNAPSHOT) result[name] = await get(name, { model }, part);
      result.success = await get('requests_total', { model, status: 'success', request_type: 'stream' });
      return result;
    }

    /** Cuts text at random code-point boundaries (a string piece must be whole characters). */
    function cutString(text: string, cuts: number, random: () => number): string[] {
      const points = [...text];
      const offsets = new Set<number>();
      while (offsets.size < cuts) offsets.add(1 + Math.floor(random() * (points.length - 1)));
      const pieces: string[] = [];
      let start = 0;
      for (const offset of [...offsets].sort((x, y) => x - y)) {
        pieces.push(points.slice(start, offset).join(''));
        start = offset;
      }
      pieces.push(points.slice(start).join(''));
      return pieces;
    }

    it.each([
      ['the rich chat stream (n=2, CRLF, comments, keep-alive, BOM, logprobs, emoji, CJK)', richChatStream, { output_tokens_total: RICH_STREAM_TOKENS, inter_token_latency_seconds: RICH_STREAM_TOKENS - 5, input_tokens_total: 13 }],
      ['the continuous-usage stream with a final usage chunk (choices: null)', continuousUsageStream, { output_tokens_total: 6, inter_token_latency_seconds: undefined, input_tokens_total: 11 }],
    ] as const)('counts %s the same however it is cut', async (_what, fixture, expected) => {
      const plans = new Map<string, (string | Buffer)[]>();
      const port = await start(chatRoute((req, res) => writeSse(res, plans.get((req.body as { model: string }).model) ?? [])));
      const random = seededRandom(424242);
      let insideCharacter = 0;
      let betweenCrLf = 0;
      const runs: string[] = [];
      const plan = (model: string, pieces: (string | Buffer)[]): void => {
        plans.set(model, pieces);
        runs.push(model);
      };
      plan('whole', [fixture('whole')]);
      plan('whole-buffer', [Buffer.from(fixture('whole-buffer'))]);
      for (let i = 0; i < 10; i++) {
        const model = `bytes-${i}`;
        const bytes = Buffer.from(fixture(model));
        const pieces = cutAtRandom(bytes, 5 + Math.floor(random() * 60), random);
        let offset = 0;
        for (const piece of pieces.slice(0, -1)) {
          offset += piece.length;
          if (((bytes[offset] as number) & 0xc0) === 0x80) insideCharacter++;
          if (bytes[offset - 1] === 0x0d && bytes[offset] === 0x0a) betweenCrLf++;
        }
        plan(model, pieces);
      }
      for (let i = 0; i < 6; i++) {
        const model = `text-${i}`;
        plan(model, cutString(fixture(model), 5 + Math.floor(random() * 40), random));
      }
      // One byte per write: every cut point at once.
      plan('single-bytes', [...Buffer.from(fixture('single-bytes'))].map((byte) => Buffer.from([byte])));
      expect(insideCharacter).toBeGreaterThan(0);
      expect(betweenCrLf).toBeGreaterThan(0);

      for (const model of runs) {
        const response = await postJson(port, CHAT, { model, stream: true });
        expect(response.body.equals(Buffer.concat((plans.get(model) ?? []).map((p) => Buffer.from(p))))).toBe(true);
      }
      await ended(runs.length);
      const reference = await snapshot('whole');
      expect(reference.output_tokens_total).toBe(expected.output_tokens_total);
      // The continuous-usage fixture's ITL count is checked on its own below (see "continuous usage: …").
      if (expected.inter_token_latency_seconds !== undefined) {
        expect(reference.inter_token_latency_seconds).toBe(expected.inter_token_latency_seconds);
      }
      expect(reference.input_tokens_total).toBe(expected.input_tokens_total);
      expect(reference.success).toBe(1);
      expect(reference.time_to_first_token_seconds).toBe(1);
      for (const model of runs) expect({ model, ...(await snapshot(model)) }).toEqual({ model, ...reference });
      expect(await get('parse_errors_total')).toBe(0);
    });
  });

  describe('engine-like streams (one event per write)', () => {
    // Deltas with characters that JSON escapes (quote, backslash, newline), that it keeps raw (U+2028, DEL), multi-byte
    // UTF-8 and a lone surrogate, so writes that differ only in their text sometimes have the same bytes around it.
    const ALPHABET = ['a', 'b', ' the', 'é', '你', '🌍', '"', '\\', '\n', '\u2028', '\u007f', '\ud800', 'x y', '{', '}', ':', 'data: '];
    function deltas(count: number, seed: number): string[] {
      const random = seededRandom(seed);
      return Array.from({ length: count }, () => {
        const parts = 1 + Math.floor(random() * 3);
        let text = '';
        for (let i = 0; i < parts; i++) text += ALPHABET[Math.floor(random() * ALPHABET.length)] as string;
        return text;
      });
    }
    const events = (model: string, texts: string[]): string[] => [
      roleChunk(model),
      ...texts.map((text) => contentChunk(model, text)),
      finishChunk(model),
      DONE,
    ];

    it('counts every delta exactly, whatever the write pattern', async () => {
      const texts = deltas(300, 99);
      const expected = texts.reduce((sum, text) => sum + codePoints(text), 0);
      const firstChunk = codePoints(texts[0] as string);
      const plans = new Map<string, (string | Buffer)[]>();
      const port = await start(chatRoute((req, res) => writeSse(res, plans.get((req.body as { model: string }).model) ?? [])));
      plans.set('per-event', events('per-event', texts));
      plans.set('per-event-buffers', events('per-event-buffers', texts).map((e) => Buffer.from(e)));
      plans.set('whole', [events('whole', texts).join('')]);
      plans.set('cut', cutAtRandom(Buffer.from(events('cut', texts).join('')), 200, seededRandom(5)));
      // Pairs of events per write, and events with a keep-alive comment in between.
      const pairs: string[] = [];
      const perEvent = events('pairs', texts);
      for (let i = 0; i < perEvent.length; i += 2) pairs.push(perEvent.slice(i, i + 2).join(''));
      plans.set('pairs', pairs);
      plans.set('comments', events('comments', texts).flatMap((e, i) => (i % 7 === 3 ? [': keep-alive\n\n', e] : [e])));
      for (const model of plans.keys()) {
        const response = await postJson(port, CHAT, { model, stream: true });
        expect(response.body.equals(Buffer.concat((plans.get(model) ?? []).map((p) => Buffer.from(p))))).toBe(true);
      }
      await ended(plans.size);
      for (const model of plans.keys()) {
        expect({ model, tokens: await get('output_tokens_total', { model }) }).toEqual({ model, tokens: expected });
        expect({ model, itl: await get('inter_token_latency_seconds', { model }, 'count') }).toEqual({ model, itl: expected - firstChunk });
        expect({ model, ok: await get('requests_total', { model, status: 'success' }) }).toEqual({ model, ok: 1 });
      }
      expect(await get('parse_errors_total')).toBe(0);
    });

    it('counts OpenAI-style chunks with "usage": null, an obfuscation pad and a final usage chunk exactly', async () => {
      const texts = deltas(120, 7);
      const estimate = texts.reduce((sum, text) => sum + codePoints(text), 0);
      const random = seededRandom(11);
      const openAiChunk = (text: string): string =>
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', service_tier: 'default', system_fingerprint: 'fp', choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }], usage: null, obfuscation: 'x'.repeat(Math.floor(random() * 8)) });
      const pieces = [
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], usage: null }),
        ...texts.map(openAiChunk),
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }], usage: null }),
        sse({ id: 'chatcmpl-9', object: 'chat.completion.chunk', created: 1, model: 'gpt-x', choices: [], usage: { prompt_tokens: 12, completion_tokens: estimate + 10, total_tokens: estimate + 22, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } } }),
        DONE,
      ];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { bodyParser: false });
      await postJson(port, CHAT, { model: 'gpt-x', stream: true });
      await ended();
      expect(await get('output_tokens_total', { model: 'gpt-x' })).toBe(estimate + 10);
      expect(await get('inter_token_latency_seconds', { model: 'gpt-x' }, 'count')).toBe(estimate - codePoints(texts[0] as string));
      expect(await get('input_tokens_total', { model: 'gpt-x' })).toBe(12);
      expect(await get('requests_total', { model: 'gpt-x', status: 'success' })).toBe(1);
      expect(await get('parse_errors_total')).toBe(0);
    });

    it('counts a write shaped like the previous deltas as the client reads it when an event is still open', async () => {
      const model = 'm';
      const pieces = [
        roleChunk(model),
        contentChunk(model, 'ab'),
        contentChunk(model, 'cd'),
        // An event left open: its data line has no end yet, so the next write continues that line.
        'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"',
        contentChunk(model, 'xyz'),
        contentChunk(model, 'ef'),
        finishChunk(model),
        DONE,
      ];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)));
      await postJson(port, CHAT, { model, stream: true });
      await ended();
      // The client sees one malformed event (the open line joined with the next write); "xyz" is not a delta.
      expect(await get('output_tokens_total', { model })).toBe(6);
      expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'invalid_json' })).toBe(1);
    });

    it('counts a write shaped like the previous deltas inside an oversized event as part of that event', async () => {
      const model = 'm';
      const pieces = [
        contentChunk(model, 'ab'),
        contentChunk(model, 'cd'),
        `data: ${'z'.repeat(3000)}\n`, // an oversized event whose blank line has not come yet
        contentChunk(model, 'xyz'), // ends that event: for a client it is the oversized event's second data line
        contentChunk(model, 'ef'),
        finishChunk(model),
        DONE,
      ];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)), { metrics: { maxEventBytes: 1024 } });
      await postJson(port, CHAT, { model, stream: true });
      await ended();
      expect(await get('output_tokens_total', { model })).toBe(6);
      expect(await get('parse_errors_total', { endpoint: 'chat_completions', reason: 'event_too_large' })).toBe(1);
    });

    it('keeps counting the right model and reasoning when the deltas switch fields', async () => {
      const model = 'm';
      const reasoningChunk = (text: string): string => sse(chatChunk(model, [{ delta: { reasoning_content: text } }]));
      const pieces = [roleChunk(model), reasoningChunk('think'), reasoningChunk('ing'), contentChunk(model, 'ans'), contentChunk(model, 'wer'), reasoningChunk('more'), finishChunk(model), DONE];
      const port = await start(chatRoute((_req, res) => writeSse(res, pieces)));
      await postJson(port, CHAT, { model, stream: true });
      await ended();
      expect(await get('output_tokens_total', { model })).toBe(5 + 3 + 3 + 3 + 4);
      expect(await get('reasoning_tokens_total', { model })).toBe(5 + 3 + 4);
    });
  });
});
