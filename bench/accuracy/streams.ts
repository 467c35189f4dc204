import * as cl100k from 'gpt-tokenizer/cjs/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/cjs/encoding/o200k_base';
import llama3 from 'llama3-tokenizer-js';

/** A real tokenizer: the "model" whose tokens a generated stream carries. */
export interface Vocabulary {
  name: 'o200k' | 'cl100k' | 'llama3';
  encode(text: string): number[];
  /** The raw UTF-8 bytes of one token (a token can hold part of a character). */
  bytes(id: number): Uint8Array;
}

const utf8 = new TextEncoder();

type NativeDecoder = { decodeNativeGenerator(ids: Iterable<number>): Generator<Uint8Array | string> };

/** gpt-tokenizer's own decode() loses bytes of a character split across tokens; its per-token bytes do not. */
function gptBytes(api: unknown): (id: number) => Uint8Array {
  const core = (api as { bytePairEncodingCoreProcessor: NativeDecoder }).bytePairEncodingCoreProcessor;
  return (id) => {
    for (const part of core.decodeNativeGenerator([id])) return typeof part === 'string' ? utf8.encode(part) : part;
    return new Uint8Array(0);
  };
}

/** GPT-2 byte-level alphabet: the vocabulary stores byte b as this code point. */
function byteLevelDecoder(): Map<string, number> {
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    map.set(String.fromCodePoint(printable ? b : 256 + extra++), b);
  }
  return map;
}

function llamaBytes(): (id: number) => Uint8Array {
  const fromChar = byteLevelDecoder();
  return (id) => Uint8Array.from([...(llama3.vocabById[id] ?? '')].map((c) => fromChar.get(c) ?? 0));
}

export const VOCABULARIES: Record<Vocabulary['name'], Vocabulary> = {
  o200k: { name: 'o200k', encode: (t) => o200k.encode(t), bytes: gptBytes(o200k.default) },
  cl100k: { name: 'cl100k', encode: (t) => cl100k.encode(t), bytes: gptBytes(cl100k.default) },
  llama3: { name: 'llama3', encode: (t) => llama3.encode(t, { bos: false, eos: false }), bytes: llamaBytes() },
};

/** One SSE chunk of a generated stream: the text a client sees and the tokens the engine generated for it. */
export interface Chunk {
  text: string;
  tokens: number;
}

/** Length of the longest prefix of `bytes` that ends on a UTF-8 character boundary. */
function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back for the lead byte
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return back >= need ? n : n - back;
  }
  return n; // malformed: let the decoder replace it
}

/** How an engine server sends a token whose text ends inside a UTF-8 character. */
export type Utf8Convention = 'empty' | 'merge';

/**
 * Groups token ids into chunks of `size()` tokens and decodes them the way engine servers' incremental
 * detokenizers do when a chunk's text would end inside a character (its bytes are split across tokens):
 * - `empty` (vLLM, TGI): the chunk goes out with an empty delta, its text held back until the character is complete;
 * - `merge` (llama.cpp, Ollama, SGLang, hosted APIs): nothing goes out; its tokens arrive with the next chunk's.
 */
export function toChunks(ids: number[], vocab: Vocabulary, size: () => number, utf8: Utf8Convention = 'empty'): Chunk[] {
  const out: Chunk[] = [];
  const decoder = new TextDecoder('utf-8');
  let pending: Uint8Array[] = [];
  let heldTokens = 0;
  let i = 0;
  while (i < ids.length) {
    const k = Math.max(1, Math.min(size(), ids.length - i));
    for (const id of ids.slice(i, i + k)) pending.push(vocab.bytes(id));
    i += k;
    const bytes = concat(pending);
    if (completeLength(bytes) < bytes.length && i < ids.length) {
      if (utf8 === 'empty') out.push({ text: '', tokens: k });
      else heldTokens += k;
      continue;
    }
    out.push({ text: decoder.decode(bytes), tokens: k + heldTokens });
    heldTokens = 0;
    pending = [];
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  return bytes;
}

/**
 * The text re-cut into pieces by `cut`: of `chars` characters (code points), as a content filter, guardrail, gateway
 * or mock server does, cuts falling anywhere, inside words; or word by word. A piece's true tokens are those whose
 * bytes end within the text sent so far.
 */
export function toPieces(ids: number[], vocab: Vocabulary, cut: (text: string) => string[]): Chunk[] {
  const ends: number[] = [];
  let bytes = 0;
  for (const id of ids) ends.push((bytes += vocab.bytes(id).length));
  const text = new TextDecoder('utf-8').decode(concat(ids.map((id) => vocab.bytes(id))));
  const pieces = cut(text);
  const out: Chunk[] = [];
  let sentBytes = 0;
  let counted = 0;
  pieces.forEach((piece, i) => {
    sentBytes += utf8.encode(piece).length;
    let done = counted;
    while (done < ends.length && ends[done]! <= sentBytes) done++;
    if (i === pieces.length - 1) done = ends.length;
    out.push({ text: piece, tokens: done - counted });
    counted = done;
  });
  return out;
}

/** Pieces of `chars` code points. */
export const fixedPieces =
  (chars: number) =>
  (text: string): string[] => {
    const points = [...text];
    const out: string[] = [];
    for (let at = 0; at < points.length; at += chars) out.push(points.slice(at, at + chars).join(''));
    return out;
  };

/** Word by word, each word with the whitespace after it, as the AI SDK's `smoothStream()` cuts by default. */
export const wordPieces = (text: string): string[] => text.match(/\s*\S+\s*/g) ?? [text];

export type Shape =
  | { kind: 'engine'; size: (rand: () => number) => number; utf8: Utf8Convention }
  | { kind: 'pieces'; chars: number }
  | { kind: 'words' };

export interface Scenario {
  name: string;
  vocab: Vocabulary['name'];
  shape: Shape;
  /** Which targets apply: one token per chunk, or several / cut anywhere. */
  group: 'one-token' | 'multi';
  description: string;
}

const between = (lo: number, hi: number) => (rand: () => number) => lo + Math.floor(rand() * (hi - lo + 1));

const SHAPES: { name: string; shape: Shape; group: Scenario['group']; description: string }[] = [
  { name: '1 tok, "" for split chars', shape: { kind: 'engine', size: () => 1, utf8: 'empty' }, group: 'one-token', description: 'vLLM, TGI, Dynamo' },
  { name: '1 tok, split chars merged', shape: { kind: 'engine', size: () => 1, utf8: 'merge' }, group: 'one-token', description: 'llama.cpp, Ollama, SGLang' },
  { name: 'stream-interval 4', shape: { kind: 'engine', size: () => 4, utf8: 'empty' }, group: 'multi', description: 'vLLM --stream-interval 4, TensorRT-LLM stream_interval' },
  { name: '2-8 tok/chunk', shape: { kind: 'engine', size: between(2, 8), utf8: 'merge' }, group: 'multi', description: 'hosted APIs, speculative decoding' },
  { name: '3-12 tok/chunk', shape: { kind: 'engine', size: between(3, 12), utf8: 'merge' }, group: 'multi', description: 'hosted APIs, MTP' },
  { name: '5-20 tok/chunk', shape: { kind: 'engine', size: between(5, 20), utf8: 'merge' }, group: 'multi', description: 'Anthropic-like text deltas' },
  { name: '20-char pieces', shape: { kind: 'pieces', chars: 20 }, group: 'multi', description: 'gateway / mock server re-buffering' },
  { name: '50-char pieces', shape: { kind: 'pieces', chars: 50 }, group: 'multi', description: 'content-filter / guardrail buffering' },
  { name: 'words', shape: { kind: 'words' }, group: 'multi', description: "the AI SDK's smoothStream(), word-by-word relays" },
];

export const SCENARIOS: Scenario[] = SHAPES.flatMap((s) =>
  (['o200k', 'cl100k', 'llama3'] as const).map((vocab) => ({ ...s, name: `${s.name}, ${vocab}`, vocab })),
);

/** The chunks of one text in one scenario; `rand` draws the chunk sizes. */
export function generate(sc: Scenario, text: string, rand: () => number): Chunk[] {
  const vocab = VOCABULARIES[sc.vocab];
  const ids = vocab.encode(text);
  const { shape } = sc;
  if (shape.kind === 'engine') return toChunks(ids, vocab, () => shape.size(rand), shape.utf8);
  return toPieces(ids, vocab, shape.kind === 'words' ? wordPieces : fixedPieces(shape.chars));
}
