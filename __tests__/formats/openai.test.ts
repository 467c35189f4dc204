import { openAiReader } from '../../lib/formats/openai';
import { RecordingSink } from '../support/recording-sink';
import { chatChunk, codePoints, logprobs } from '../support/streams';

function read(payload: unknown): RecordingSink {
  const sink = new RecordingSink();
  openAiReader.readEvent(typeof payload === 'string' ? payload : JSON.stringify(payload), undefined, sink);
  return sink;
}

const tokensOf = (sink: RecordingSink): number => sink.of('tokens').reduce((sum, [, n]) => sum + n, 0);

describe('openAiReader.readEvent (streamed chat and completions)', () => {
  it('reads [DONE] as the end marker and nothing else', () => {
    expect(read('[DONE]').seen).toEqual([['completed']]);
  });

  it('reports the model and a role-only chunk as zero tokens', () => {
    const sink = read(chatChunk('m1', [{ delta: { role: 'assistant', content: '' } }]));
    expect(sink.of('model')).toEqual([['model', 'm1']]);
    expect(tokensOf(sink)).toBe(0);
    expect(sink.of('completed')).toEqual([]);
  });

  it('counts content, reasoning_content, reasoning, refusal and tool-call arguments', () => {
    const sink = read(
      chatChunk('m', [
        {
          delta: {
            content: 'abc',
            reasoning_content: 'de',
            reasoning: 'f',
            refusal: 'gh',
            tool_calls: [{ index: 0, function: { name: 'fn', arguments: '{"x":1}' } }],
          },
        },
      ]),
    );
    // 3 + 2 + 1 + 2 + 2 + 7
    expect(sink.of('tokens')).toEqual([['tokens', 17, 3]]);
  });

  it("counts vLLM's reasoning once when it sends the same text as reasoning and reasoning_content", () => {
    expect(read(chatChunk('m', [{ delta: { reasoning: 'abcd', reasoning_content: 'abcd' } }])).of('tokens')).toEqual([['tokens', 4, 4]]);
    // Two different texts are two texts.
    expect(read(chatChunk('m', [{ delta: { reasoning: 'ab', reasoning_content: 'cde' } }])).of('tokens')).toEqual([['tokens', 5, 5]]);
    // With exact logprobs, the reasoning part is still estimated once.
    const exact = read(chatChunk('m', [{ delta: { reasoning: 'ab', reasoning_content: 'ab' }, logprobs: logprobs(['a', 'b', 'c']) }]));
    expect(exact.of('tokens')).toEqual([['tokens', 3, 2]]);
  });

  it("counts Mistral's content parts: text as output, thinking as reasoning, other parts as nothing", () => {
    const thinking = read(chatChunk('magistral', [{ delta: { content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'hmm, so' }] }] } }]));
    expect(thinking.of('tokens')).toEqual([['tokens', 7, 7]]);
    const text = read(chatChunk('magistral', [{ delta: { content: [{ type: 'text', text: 'Hello' }] } }]));
    expect(text.of('tokens')).toEqual([['tokens', 5, 0]]);
    const mixed = read(
      chatChunk('magistral', [
        { delta: { content: [{ type: 'thinking', thinking: 'ab' }, { type: 'text', text: 'cde' }, { type: 'reference', reference_ids: [1] }, 'x', null] } },
      ]),
    );
    expect(mixed.of('tokens')).toEqual([['tokens', 5, 2]]);
    expect(mixed.of('malformed')).toEqual([]);
  });

  it("reads a relay of Mistral's TypeScript SDK: each chunk wrapped in data, its fields in camelCase", () => {
    const text = read({ data: { id: 'x', object: 'chat.completion.chunk', model: 'mistral-small', choices: [{ index: 0, delta: { content: 'Bonjour' }, finishReason: null }] } });
    expect(text.of('model')).toEqual([['model', 'mistral-small']]);
    expect(text.of('tokens')).toEqual([['tokens', 7, 0]]);
    const last = read({
      data: { id: 'x', model: 'mistral-small', choices: [{ index: 0, delta: { content: '' }, finishReason: 'stop' }], usage: { promptTokens: 9, completionTokens: 50, totalTokens: 59 } },
    });
    expect(last.of('finish')).toEqual([['finish', 'stop']]);
    expect(last.of('completed')).toHaveLength(1);
    expect(last.of('stated')).toEqual([['stated', 50, undefined, { tokens: 0, reasoning: 0 }, true]]);
    expect(last.of('prompt')).toEqual([['prompt', 9, undefined]]);
  });

  it('counts every choice when n > 1', () => {
    const sink = read(chatChunk('m', [{ index: 0, delta: { content: 'ab' } }, { index: 1, delta: { content: '你好世' } }]));
    expect(tokensOf(sink)).toBe(5);
  });

  it('counts one token per logprobs entry, over the text estimate', () => {
    const sink = read(chatChunk('m', [{ delta: { content: 'abcdefgh' }, logprobs: logprobs(['abcd', 'efgh']) }]));
    expect(tokensOf(sink)).toBe(2);
  });

  it('counts legacy completions text and its logprobs.tokens', () => {
    const text = read({ id: 'c', object: 'text_completion', model: 'm', choices: [{ index: 0, text: 'hello', finish_reason: null }] });
    expect(tokensOf(text)).toBe(5);
    const withLogprobs = read({
      object: 'text_completion',
      model: 'm',
      choices: [{ index: 0, text: 'hello', logprobs: { tokens: ['hel', 'lo'], token_logprobs: [-1, -1] } }],
    });
    expect(tokensOf(withLogprobs)).toBe(2);
  });

  it('reports finish_reason as the end marker', () => {
    const sink = read(chatChunk('m', [{ delta: {}, finish_reason: 'length' }]));
    expect(sink.of('finish')).toEqual([['finish', 'length']]);
    expect(sink.of('completed')).toHaveLength(1);
  });

  it('hands usage on a chunk over as the stated cumulative total, with the chunk count', () => {
    const sink = read(
      chatChunk('m', [{ delta: { content: 'abc' } }], {
        prompt_tokens: 9,
        completion_tokens: 4,
        prompt_tokens_details: { cached_tokens: 2 },
        completion_tokens_details: { reasoning_tokens: 1 },
      }),
    );
    expect(sink.of('stated')).toEqual([['stated', 4, 1, { tokens: 3, reasoning: 0 }, true]]);
    expect(sink.of('tokens')).toEqual([]);
    expect(sink.of('prompt')).toEqual([['prompt', 9, 2]]);
  });

  it('marks usage on a generation chunk as live even when its text is empty (the stop token)', () => {
    const sink = read(chatChunk('m', [{ delta: { content: '' }, finish_reason: 'stop' }], { prompt_tokens: 1, completion_tokens: 6 }));
    expect(sink.of('stated')).toEqual([['stated', 6, undefined, { tokens: 0, reasoning: 0 }, true]]);
  });

  it("states usage on a chunk of one choice as that choice's (vLLM and SGLang with n > 1), else as the request's", () => {
    const one = read(chatChunk('m', [{ index: 1, delta: { content: 'ab' } }], { prompt_tokens: 5, completion_tokens: 3 }));
    expect(one.of('stated')).toEqual([['stated', 3, undefined, { tokens: 2, reasoning: 0 }, true]]);
    expect(one.statedFor).toEqual([1]);
    const final = read(chatChunk('m', [], { prompt_tokens: 5, completion_tokens: 7 }));
    expect(final.statedFor).toEqual([undefined]);
    const two = read(chatChunk('m', [{ delta: { content: 'a' } }, { delta: { content: 'b' } }], { prompt_tokens: 5, completion_tokens: 2 }));
    expect(two.statedFor).toEqual([undefined]);
    // An index no request can have is no choice of its own.
    for (const index of [128, -1, 1.5, '0']) {
      expect(read({ ...chatChunk('m', [{ delta: { content: 'a' } }], { completion_tokens: 1 }), choices: [{ index, delta: { content: 'a' } }] }).statedFor).toEqual([undefined]);
    }
  });

  it("reads Moonshot's usage, stated inside the last chunk's choice, as the request's", () => {
    const sink = read(chatChunk('moonshot-v1-8k', [{ delta: {}, finish_reason: 'stop' }]));
    expect(sink.of('stated')).toEqual([]);
    const chunk = chatChunk('moonshot-v1-8k', [{ delta: {}, finish_reason: 'stop' }]);
    (chunk.choices as Record<string, unknown>[])[0]!.usage = { prompt_tokens: 39, completion_tokens: 211, total_tokens: 250 };
    const stated = read(chunk);
    expect(stated.of('stated')).toEqual([['stated', 211, undefined, { tokens: 0, reasoning: 0 }, true]]);
    expect(stated.statedFor).toEqual([undefined]);
    expect(stated.of('prompt')).toEqual([['prompt', 39, undefined]]);
  });

  it("counts an audio answer's transcript, its only text", () => {
    const sink = read(chatChunk('gpt-4o-audio-preview', [{ delta: { content: null, audio: { id: 'audio_1', transcript: 'Hello there', data: 'AAAA' } } }]));
    expect(tokensOf(sink)).toBe(codePoints('Hello there'));
  });

  it("reads xAI's usage, which states reasoning apart from completion_tokens, as output of both", () => {
    const xai = read(chatChunk('grok-3-mini', [], { prompt_tokens: 12, completion_tokens: 2, total_tokens: 354, completion_tokens_details: { reasoning_tokens: 340 } }));
    expect(xai.of('stated')).toEqual([['stated', 342, 340, { tokens: 0, reasoning: 0 }, false]]);
    // OpenAI's, whose completion_tokens include the reasoning, as it is.
    const openai = read(chatChunk('o4-mini', [], { prompt_tokens: 12, completion_tokens: 342, total_tokens: 354, completion_tokens_details: { reasoning_tokens: 340 } }));
    expect(openai.of('stated')).toEqual([['stated', 342, 340, { tokens: 0, reasoning: 0 }, false]]);
    // Without a total that adds up so, completion_tokens stands.
    const unknown = read(chatChunk('m', [], { prompt_tokens: 12, completion_tokens: 2, completion_tokens_details: { reasoning_tokens: 340 } }));
    expect(unknown.of('stated')).toEqual([['stated', 2, 340, { tokens: 0, reasoning: 0 }, false]]);
    const body = new RecordingSink();
    openAiReader.readBody(
      { model: 'grok-3-mini', choices: [{ message: { role: 'assistant', content: 'Hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 12, completion_tokens: 2, total_tokens: 354, completion_tokens_details: { reasoning_tokens: 340 } } },
      body,
    );
    expect(body.of('stated')).toEqual([['stated', 342, 340, { tokens: 2, reasoning: 0 }, false]]);
  });

  it('reads the final usage chunk with choices: [] and with choices: null', () => {
    for (const choices of [[], null]) {
      const sink = read(chatChunk('m', choices, { prompt_tokens: 5, completion_tokens: 12, total_tokens: 17 }));
      expect(sink.of('stated')).toEqual([['stated', 12, undefined, { tokens: 0, reasoning: 0 }, false]]);
      expect(sink.of('prompt')).toEqual([['prompt', 5, undefined]]);
    }
  });

  it("reads Groq's usage, stated under x_groq on its last chunk", () => {
    const chunk = { ...chatChunk('llama3-8b-8192', [{ delta: {}, finish_reason: 'stop' }]), x_groq: { id: 'req_1', usage: { queue_time: 0.07, prompt_tokens: 23, completion_tokens: 19, total_tokens: 42 } } };
    const sink = read(chunk);
    expect(sink.of('stated')).toEqual([['stated', 19, undefined, { tokens: 0, reasoning: 0 }, true]]);
    expect(sink.of('prompt')).toEqual([['prompt', 23, undefined]]);
    // Its other chunks carry x_groq without usage: counted from their text as usual.
    expect(tokensOf(read({ ...chatChunk('m', [{ delta: { content: 'abc' } }]), x_groq: { id: 'req_1' } }))).toBe(3);
  });

  it('reports an error event as failed with its mapped error type', () => {
    expect(read({ error: { message: 'boom', type: 'server_error' } }).of('failed')).toEqual([['failed', 'internal']]);
    expect(read({ error: { message: 'slow', code: 429 } }).of('failed')).toEqual([['failed', 'overload']]);
  });

  it("reads an SSE error event whose data is a plain message (NestJS's) as the stream failing, not as malformed", () => {
    const sink = new RecordingSink();
    openAiReader.readEvent('Internal server error', 'error', sink);
    openAiReader.readEvent('"Internal server error"', 'error', sink);
    expect(sink.seen).toEqual([['failed', 'internal'], ['failed', 'internal']]);
  });

  it('reports malformed JSON and JSON that is not an object, without throwing', () => {
    expect(read('{"choices": [').of('malformed')).toEqual([['malformed', 'invalid_json']]);
    expect(read('42').of('malformed')).toHaveLength(1);
    expect(read('[1,2]').of('malformed')).toHaveLength(1);
    expect(read('null').of('malformed')).toHaveLength(1);
  });

  it('ignores choices and deltas of unexpected shapes', () => {
    const sink = read({ model: 'm', choices: [null, 3, 'x', { delta: 'text' }, { delta: { content: 5 } }] });
    expect(tokensOf(sink)).toBe(0);
    expect(sink.of('malformed')).toEqual([]);
  });
});

describe('openAiReader.readBody (unary)', () => {
  const body = (usage?: Record<string, unknown>): Record<string, unknown> => ({
    id: 'c',
    object: 'chat.completion',
    model: 'm2',
    choices: [
      { index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' },
      { index: 1, message: { role: 'assistant', content: 'hi' }, finish_reason: 'length' },
    ],
    ...(usage === undefined ? {} : { usage }),
  });

  it('states usage.completion_tokens and prompt tokens, and marks the response complete', () => {
    const sink = new RecordingSink();
    openAiReader.readBody(body({ prompt_tokens: 3, completion_tokens: 42, total_tokens: 45 }), sink);
    expect(sink.of('model')).toEqual([['model', 'm2']]);
    expect(sink.of('stated')).toEqual([['stated', 42, undefined, { tokens: 7, reasoning: 0 }, false]]);
    expect(sink.of('prompt')).toEqual([['prompt', 3, undefined]]);
    expect(sink.of('completed')).toHaveLength(1);
    expect(sink.of('finish').length).toBeGreaterThan(0);
  });

  it('estimates from the messages when there is no usage', () => {
    const sink = new RecordingSink();
    openAiReader.readBody(body(), sink);
    expect(tokensOf(sink)).toBe(7);
  });

  it("estimates a Mistral reasoning model's message of thinking and text parts", () => {
    const sink = new RecordingSink();
    const content = [{ type: 'thinking', thinking: [{ type: 'text', text: 'abc' }] }, { type: 'text', text: 'de' }];
    openAiReader.readBody({ model: 'magistral', choices: [{ message: { role: 'assistant', content }, finish_reason: 'stop' }] }, sink);
    expect(sink.of('tokens')).toEqual([['tokens', 5, 3]]);
  });

  it('reads a legacy completions body', () => {
    const sink = new RecordingSink();
    openAiReader.readBody({ object: 'text_completion', model: 'm', choices: [{ text: 'abcd', finish_reason: 'stop' }] }, sink);
    expect(tokensOf(sink)).toBe(4);
  });

  it('reports an error body as failed', () => {
    const sink = new RecordingSink();
    openAiReader.readBody({ error: { message: 'nope', type: 'invalid_request_error' } }, sink);
    expect(sink.of('failed')).toEqual([['failed', 'validation']]);
  });

  it('reports a body that is not an object as malformed', () => {
    const sink = new RecordingSink();
    openAiReader.readBody([1, 2], sink);
    expect(sink.of('malformed')).toHaveLength(1);
  });
});
