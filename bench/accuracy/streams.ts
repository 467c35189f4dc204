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

/** Deterministic PRNG so every run generates the same streams. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

/**
 * Groups token ids into chunks of `size()` tokens and decodes them the way engine servers' incremental
 * detokenizers do (vLLM, SGLang, TGI): when a chunk's text would end inside a character (its bytes are split
 * across tokens), the chunk goes out with an empty delta and its text is held back until the character is
 * complete. So a chunk can carry tokens and no text, and the next one carries text worth several tokens.
 */
export function toChunks(ids: number[], vocab: Vocabulary, size: () => number): Chunk[] {
  const out: Chunk[] = [];
  const decoder = new TextDecoder('utf-8');
  let pending: Uint8Array[] = [];
  let i = 0;
  while (i < ids.length) {
    const k = Math.max(1, Math.min(size(), ids.length - i));
    for (const id of ids.slice(i, i + k)) pending.push(vocab.bytes(id));
    i += k;
    const bytes = new Uint8Array(pending.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pending) {
      bytes.set(p, at);
      at += p.length;
    }
    if (completeLength(bytes) < bytes.length && i < ids.length) {
      out.push({ text: '', tokens: k });
      continue;
    }
    out.push({ text: decoder.decode(bytes), tokens: k });
    pending = [];
  }
  return out;
}

export interface Scenario {
  name: string;
  vocab: Vocabulary['name'];
  /** Tokens per chunk, drawn per chunk. */
  size: (rand: () => number) => number;
  description: string;
  multiToken: boolean;
  /** Wire format used when the real-middleware check streams it. */
  format: 'chat' | 'responses' | 'anthropic';
}

const between = (lo: number, hi: number) => (rand: () => number) => lo + Math.floor(rand() * (hi - lo + 1));

export const SCENARIOS: Scenario[] = [
  {
    name: '1 tok/chunk, o200k',
    vocab: 'o200k',
    size: () => 1,
    multiToken: false,
    format: 'chat',
    description: 'engine server (vLLM, SGLang, Dynamo), GPT-4o/gpt-oss vocabulary',
  },
  {
    name: '1 tok/chunk, cl100k',
    vocab: 'cl100k',
    size: () => 1,
    multiToken: false,
    format: 'chat',
    description: 'engine server, GPT-4/3.5 vocabulary',
  },
  {
    name: '1 tok/chunk, llama3',
    vocab: 'llama3',
    size: () => 1,
    multiToken: false,
    format: 'chat',
    description: 'engine server, Llama 3 vocabulary (not the o200k estimator\'s)',
  },
  {
    name: '2-8 tok/chunk, o200k',
    vocab: 'o200k',
    size: between(2, 8),
    multiToken: true,
    format: 'responses',
    description: 'hosted API packing several tokens per chunk',
  },
  {
    name: '2-8 tok/chunk, llama3',
    vocab: 'llama3',
    size: between(2, 8),
    multiToken: true,
    format: 'chat',
    description: 'hosted API, Llama 3 vocabulary',
  },
  {
    name: '5-20 tok/chunk, cl100k',
    vocab: 'cl100k',
    size: between(5, 20),
    multiToken: true,
    format: 'anthropic',
    description: 'Anthropic-like multi-token text deltas',
  },
];
