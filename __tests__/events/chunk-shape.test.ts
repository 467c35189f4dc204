import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import { ChunkShape } from '../../lib/events/chunk-shape';
import { anthropicReader } from '../../lib/formats/anthropic';
import { ollamaReader } from '../../lib/formats/ollama';
import { openAiReader } from '../../lib/formats/openai';
import type { WireFormatReader } from '../../lib/formats/types';
import type { RequestState } from '../../lib/request/request-state';
import { ResponseReader } from '../../lib/http/response-reader';
import { SseParser } from '../../lib/events/sse';
import { seededRandom } from '../support/prng';
import { RecordingSink } from '../support/recording-sink';
import { blockDelta, chatChunk, DONE, messageStart, typedSse } from '../support/streams';

/**
 * The chunk shape's contract: whatever it takes, in the SSE parser's input or in its output, the full path (SSE
 * parser, wire-format reader) would have counted the same text with the same reasoning flag, in the same order.
 * Checked by reading the same stream twice: through the response reader as the middleware drives it (shortcut on),
 * and through the parser and reader alone (no shortcut), event by event.
 */

const MODEL = 'shape-model';
const MAX_EVENT = 64 * 1024;

/** The request state as the response reader sees it: a recording sink that also counts shaped text. */
class RecordingState extends RecordingSink {
  shaped = 0;
  textDelta(text: string, reasoning: boolean): void {
    this.shaped++;
    const tokens = this.estimate(text);
    this.generatedTokens(tokens, reasoning ? tokens : 0);
  }
  responseStarted(): void {}
  newWrite(): void {}
  bodyUnreadable(): void {}
  end(): void {}
}

const REQUEST = { headers: {}, body: { model: MODEL, stream: true } } as unknown as IncomingMessage;
const SSE_HEAD = (name: string): string | undefined => (name === 'content-type' ? 'text/event-stream' : undefined);

/** Through the response reader, in the given writes: what the middleware counts. */
function readWithShortcut(reader: WireFormatReader, writes: readonly (string | Buffer)[], maxEventBytes = MAX_EVENT): RecordingState {
  const state = new RecordingState();
  const settings = { maxEventBytes, maxBodyBytes: 1 << 20, internalError: (error: unknown) => { throw error; }, compressedBody: () => undefined, hints: () => undefined };
  // The response reader picks its wire-format reader from the request's endpoint label.
  const endpoint = reader === anthropicReader ? 'anthropic_messages' : 'chat_completions';
  const response = new ResponseReader(state as unknown as RequestState, { endpoint, byOption: false, url: undefined }, settings, REQUEST);
  response.onHead(200, SSE_HEAD);
  for (const write of writes) response.onBody(write, undefined);
  response.onBodyEnd();
  return state;
}

/** The full path only: every event parsed and read. */
function readInFull(reader: WireFormatReader, stream: string, maxEventBytes = MAX_EVENT): RecordingSink {
  const sink = new RecordingSink();
  const parser = new SseParser(
    {
      onEvent: (data, eventType) => void reader.readEvent(data, eventType, sink),
      onEventTooLarge: (eventType) => {
        sink.malformed('event_too_large');
        reader.readOversizedEvent?.(eventType, sink);
      },
    },
    maxEventBytes,
  );
  parser.feed(stream);
  parser.end();
  return sink;
}

/** What was counted, in order; the model is reported once by both (a shaped event repeats a model already seen). */
function counted(sink: RecordingSink): { estimated: string[]; seen: unknown[] } {
  const seen = sink.seen.filter((o) => o[0] !== 'model');
  return { estimated: sink.estimated, seen };
}

function expectSameCounts(shortcut: RecordingState, full: RecordingSink): void {
  expect(counted(shortcut)).toEqual(counted(full));
  expect(shortcut.of('model').slice(0, 1)).toEqual(full.of('model').slice(0, 1));
}

// ---- streams ------------------------------------------------------------------------------------------------------

/** Texts the shape takes, and texts it must leave to the parser (quotes, escapes, line ends, other controls). */
const deltaText = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(' the', ' cat', 'Héllo', '你好', '🌍', ' naïve', 'data: x', '\u2028', ' }', '":"', 'Ω') },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom('"', '\\', 'a\nb', '\t', '\r', 'é"', ' \\"', '\n\n', '') },
);

type Piece =
  | { kind: 'content' | 'reasoning' | 'raw'; text: string }
  | { kind: 'role' | 'finish' | 'usage' | 'comment' | 'done' | 'id' | 'typed' | 'split' };

const piece: fc.Arbitrary<Piece> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('content' as const), text: deltaText }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('reasoning' as const), text: deltaText }) },
  // Invalid JSON from a careless server: a raw control character (a tab, a line end) inside the string.
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('raw' as const), text: fc.constantFrom('a\tb', '\u0001', 'a\nb', '\r', 'x\n\ny') }) },
  { weight: 2, arbitrary: fc.constantFrom(...(['role', 'finish', 'usage', 'comment', 'done', 'id', 'typed', 'split'] as const)).map((kind) => ({ kind })) },
);

/**
 * How a server writes its lines: the usual way, or ways the shape must not take in the parser's input; and
 * whether it pads each chunk with OpenAI's `obfuscation` field (random characters, another length each time).
 */
type Style = { lineEnd: '\n' | '\r\n' | '\r'; space: boolean; obfuscation?: boolean };
const style: fc.Arbitrary<Style> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Style>({ lineEnd: '\n', space: true }) },
  { weight: 2, arbitrary: fc.constant<Style>({ lineEnd: '\n', space: true, obfuscation: true }) },
  { weight: 1, arbitrary: fc.record({ lineEnd: fc.constantFrom<Style['lineEnd']>('\n', '\r\n', '\r'), space: fc.boolean(), obfuscation: fc.boolean() }) },
);

/** OpenAI's padding for a chunk: mostly letters and digits, sometimes empty or with a character JSON escapes. */
function padding(text: string): string {
  const pads = ['', 'Zq', 'k3P9x', 'aB1', 'x'.repeat(9), 'q"w', 'z\\'];
  return pads[(text.length * 7 + (text.charCodeAt(0) || 0)) % pads.length] as string;
}

function chatEvent(p: Piece, s: Style): string {
  const padded = (payload: unknown): unknown =>
    s.obfuscation === true && typeof payload === 'object' ? { ...(payload as object), obfuscation: padding(JSON.stringify(payload)) } : payload;
  const line = (payload: unknown): string => `data:${s.space ? ' ' : ''}${typeof payload === 'string' ? payload : JSON.stringify(padded(payload))}${s.lineEnd}`;
  const event = (...lines: string[]): string => `${lines.join('')}${s.lineEnd}`;
  switch (p.kind) {
    case 'content':
      return event(line(chatChunk(MODEL, [{ delta: { content: p.text } }])));
    case 'reasoning':
      return event(line(chatChunk(MODEL, [{ delta: { reasoning_content: p.text } }])));
    case 'raw':
      return event(line(JSON.stringify(chatChunk(MODEL, [{ delta: { content: '@' } }])).replace('"@"', `"${p.text}"`)));
    case 'role':
      return event(line(chatChunk(MODEL, [{ delta: { role: 'assistant', content: '' } }])));
    case 'finish':
      return event(line(chatChunk(MODEL, [{ delta: {}, finish_reason: 'stop' }])));
    case 'usage':
      return event(line(chatChunk(MODEL, [], { prompt_tokens: 3, completion_tokens: 7 })));
    case 'comment':
      return `: keep-alive${s.lineEnd}${s.lineEnd}`;
    case 'done':
      return event(line('[DONE]'));
    case 'id':
      return event(`id: 7${s.lineEnd}`, line(chatChunk(MODEL, [{ delta: { content: ' id' } }])));
    case 'typed':
      // An `event:` line the OpenAI reader ignores: the same data under another type is another shape.
      return event(`event: delta${s.lineEnd}`, line(chatChunk(MODEL, [{ delta: { content: ' typed' } }])));
    case 'split': {
      // One event's data over two `data:` lines: joined with a line end, never one line to match.
      const json = JSON.stringify(chatChunk(MODEL, [{ delta: { content: ' split' } }]));
      const at = json.indexOf('"choices"');
      return event(line(json.slice(0, at)), line(json.slice(at)));
    }
  }
}

/** Cuts `text` at `cuts` random offsets (code units, so a surrogate pair or a CRLF can be split). */
function cut(text: string, cuts: number, random: () => number): string[] {
  const offsets = [...new Set(Array.from({ length: cuts }, () => 1 + Math.floor(random() * Math.max(1, text.length - 1))))].sort((a, b) => a - b);
  const pieces: string[] = [];
  let start = 0;
  for (const offset of offsets) {
    if (offset <= start || offset >= text.length) continue;
    pieces.push(text.slice(start, offset));
    start = offset;
  }
  pieces.push(text.slice(start));
  return pieces;
}

describe('the chunk shape counts exactly what the full path counts', () => {
  it('for any stream, style and cuts (writes of one event, several, or an event cut in two)', () => {
    const parse = jest.spyOn(JSON, 'parse');
    let events = 0;
    let parsed = 0;
    try {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(piece, fc.boolean()), { minLength: 1, maxLength: 40 }),
          style,
          fc.integer({ min: 0, max: 60 }),
          fc.integer(),
          fc.constantFrom<'strings' | 'buffers'>('strings', 'buffers'),
          (pieces, streamStyle, cuts, seed, kind) => {
            // Most events in the stream's style; some in the usual style, so a stream can switch.
            const usualStyle: Style = { lineEnd: '\n', space: true, obfuscation: streamStyle.obfuscation ?? false };
            const stream = pieces.map(([p, usual]) => chatEvent(p, usual ? usualStyle : streamStyle)).join('') + DONE;
            const writes = cut(stream, cuts, seededRandom(seed));
            parse.mockClear();
            const shortcut = readWithShortcut(openAiReader, kind === 'strings' ? writes : [Buffer.from(writes.join(''))]);
            parsed += parse.mock.calls.length;
            events += pieces.length + 1;
            expectSameCounts(shortcut, readInFull(openAiReader, stream));
          },
        ),
        { numRuns: 400, seed: 20261201 },
      );
    } finally {
      parse.mockRestore();
    }
    // Meaningful only if the shortcut was taken: far fewer parses than events.
    expect(parsed).toBeLessThan(events * 0.6);
  });

  it('takes chunks padded with OpenAI\'s obfuscation field, whatever the padding, in one parse', () => {
    const random = seededRandom(7);
    const pad = (): string => Array.from({ length: Math.floor(random() * 12) }, () => 'aZ09xQ'[Math.floor(random() * 6)]).join('');
    const deltas = Array.from({ length: 60 }, (_, i) => ` w${i}`);
    const stream =
      deltas.map((text) => `data: ${JSON.stringify({ ...chatChunk(MODEL, [{ delta: { content: text } }]), obfuscation: pad() })}\n\n`).join('') + DONE;
    const parse = jest.spyOn(JSON, 'parse');
    try {
      for (const writes of [[stream], cut(stream, 40, seededRandom(3)), [Buffer.from(stream)]]) {
        parse.mockClear();
        const shortcut = readWithShortcut(openAiReader, writes);
        expect(parse.mock.calls.length).toBeLessThanOrEqual(3);
        expectSameCounts(shortcut, readInFull(openAiReader, stream));
      }
    } finally {
      parse.mockRestore();
    }
  });

  it('takes events cut across writes and merged into one write, in the parser input', () => {
    const deltas = [' one', ' two', ' three', ' four', ' five', ' six'];
    const stream = deltas.map((text) => chatEvent({ kind: 'content', text }, { lineEnd: '\n', space: true })).join('');
    for (let at = 1; at < stream.length; at += 7) {
      const shortcut = readWithShortcut(openAiReader, [stream.slice(0, at), stream.slice(at)]);
      expectSameCounts(shortcut, readInFull(openAiReader, stream));
      // Learned from the first event; all others counted from the shape (the cut one in the parser's output).
      expect(shortcut.shaped).toBe(deltas.length - 1);
    }
  });

  it('follows typed events (Anthropic) and never takes an event of another type', () => {
    const delta = (text: string, event = 'content_block_delta'): string => typedSse({ ...blockDelta(0, { type: 'text_delta', text }), event });
    const start = typedSse(messageStart(MODEL, { input_tokens: 3 }));
    const stream = start + [delta(' a'), delta(' b'), delta(' c', 'other_event'), delta(' d'), delta(' e')].join('');
    const shortcut = readWithShortcut(anthropicReader, [stream]);
    expectSameCounts(shortcut, readInFull(anthropicReader, stream));
    // ' b' from the shape learned at ' a'; ' c' under another type is read in full (and learned from), so is ' d'
    // under the first type again; ' e' from the shape ' d' taught.
    expect(shortcut.shaped).toBe(2);
    expect(shortcut.estimated).toEqual([' a', ' b', ' c', ' d', ' e']);
  });

  it('leaves an event longer than maxEventBytes to the full path, which refuses it', () => {
    const long = ' x'.repeat(200);
    const stream = [' a', ' b', long, ' c'].map((text) => chatEvent({ kind: 'content', text }, { lineEnd: '\n', space: true })).join('');
    const shortcut = readWithShortcut(openAiReader, [stream], 300);
    expectSameCounts(shortcut, readInFull(openAiReader, stream, 300));
    expect(shortcut.of('malformed')).toEqual([['malformed', 'event_too_large']]);
  });
});

describe('ChunkShape', () => {
  const delta = (text: string): string => JSON.stringify(chatChunk(MODEL, [{ delta: { content: text } }]));
  const learned = (): { shape: ChunkShape; texts: string[] } => {
    const texts: string[] = [];
    const shape = new ChunkShape(openAiReader, Object.assign(new RecordingSink(), { textDelta: (text: string) => void texts.push(text) }));
    shape.readEvent(delta(' first'), undefined);
    return { shape, texts };
  };

  it('takes a whole usual-form event at a position and says where it ends', () => {
    const { shape, texts } = learned();
    const text = `data: ${delta(' a')}\n\ndata: ${delta(' b')}\n\n`;
    const first = shape.take(text, 0, MAX_EVENT);
    expect(text.slice(0, first)).toBe(`data: ${delta(' a')}\n\n`);
    expect(shape.take(text, first, MAX_EVENT)).toBe(text.length);
    expect(texts).toEqual([' a', ' b']);
  });

  it('refuses texts that could change the structure around them, partial events and other shapes', () => {
    const { shape, texts } = learned();
    for (const text of ['"', '\\n', 'a\\"b']) expect(shape.take(`data: ${delta(text)}\n\n`, 0, MAX_EVENT)).toBe(-1);
    expect(shape.take(`data: ${delta(' a')}\n`, 0, MAX_EVENT)).toBe(-1);
    expect(shape.take(`data: ${delta(' a')}\r\n\r\n`, 0, MAX_EVENT)).toBe(-1);
    expect(shape.take(`data: ${JSON.stringify(chatChunk('other', [{ delta: { content: ' a' } }]))}\n\n`, 0, MAX_EVENT)).toBe(-1);
    expect(shape.take(`data: ${delta(' a')}\n\n`, 0, 20)).toBe(-1);
    expect(shape.takeEvent(delta(' a'), 'typed')).toBe(false);
    expect(texts).toEqual([]);
  });

  it('does not learn data joined from several lines, data with escapes, nor text it cannot locate once', () => {
    const shapeFor = (): ChunkShape => new ChunkShape(openAiReader, Object.assign(new RecordingSink(), { textDelta: () => undefined }));
    const plain = chatChunk(MODEL, [{ delta: { content: ' x' } }]);
    const multiline = shapeFor();
    multiline.readEvent(JSON.stringify(plain, null, 1), undefined);
    expect(multiline.known).toBe(false);
    const twice = shapeFor();
    twice.readEvent(JSON.stringify({ ...plain, other: { content: ' x' } }), undefined);
    expect(twice.known).toBe(false);
    const escaped = shapeFor();
    escaped.readEvent(JSON.stringify({ ...plain, system_fingerprint: 'a\\b' }), undefined);
    expect(escaped.known).toBe(false);
    const usual = shapeFor();
    usual.readEvent(JSON.stringify(plain), undefined);
    expect(usual.known).toBe(true);
  });

  it('never learns from a chunk counted by its logprobs, even when the estimate of its text happens to agree', () => {
    const logprobs = { content: [{ token: 'x', logprob: -1 }, { token: 'y', logprob: -1 }] };
    const event = (text: string): string => JSON.stringify(chatChunk(MODEL, [{ delta: { reasoning_content: text }, logprobs }]));
    const stream = ['ab', 'abcd', 'abcdef'].map((text) => `data: ${event(text)}\n\n`).join('');
    const shortcut = readWithShortcut(openAiReader, [stream]);
    expectSameCounts(shortcut, readInFull(openAiReader, stream));
    expect(shortcut.tokens()).toEqual({ tokens: 6, reasoning: 6 });
    expect(shortcut.shaped).toBe(0);
  });

  it('learns only from readers whose events can repeat but for their text', () => {
    const chunk = JSON.stringify({ model: MODEL, created_at: '2026-12-01T00:00:00Z', message: { role: 'assistant', content: ' x' }, done: false });
    const shape = new ChunkShape(ollamaReader, Object.assign(new RecordingSink(), { textDelta: () => undefined }));
    shape.readEvent(chunk, undefined);
    expect(shape.known).toBe(false);
  });

  it('stops learning after shapes that never took an event, and counts every event in full from then on', () => {
    const sink = Object.assign(new RecordingSink(), { shaped: 0, textDelta: () => void sink.shaped++ });
    const shape = new ChunkShape(openAiReader, sink);
    // A server that stamps each event (llama.cpp's `created`, say, when every event falls in another second).
    const stamped = (i: number): string => JSON.stringify({ ...chatChunk(MODEL, [{ delta: { content: ` w${i}` } }]), created: 1764201600 + i });
    for (let i = 0; i < 10; i++) shape.readEvent(stamped(i), undefined);
    expect(sink.shaped).toBe(0);
    expect(sink.estimated).toEqual(Array.from({ length: 10 }, (_, i) => ` w${i}`));
    // Events that repeat do get taken again after a change of shape.
    const again = new ChunkShape(openAiReader, sink);
    for (let i = 0; i < 3; i++) again.readEvent(stamped(i), undefined);
    again.readEvent(stamped(2).replace(' w2', ' w3'), undefined);
    expect(sink.shaped).toBe(1);
  });
});
