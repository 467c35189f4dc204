import { encode } from 'gpt-tokenizer/cjs/encoding/o200k_base';
import o200k from 'gpt-tokenizer/cjs/encoding/o200k_base';

/** The shapes servers cut generated text into, from a real vocabulary (o200k), for tests of the token count. */

type NativeDecoder = { decodeNativeGenerator(ids: number[]): Generator<Uint8Array | string> };
const core = (o200k as unknown as { bytePairEncodingCoreProcessor: NativeDecoder }).bytePairEncodingCoreProcessor;
const utf8 = new TextEncoder();

/** UTF-8 length of one token (a token can hold part of a character). */
function tokenBytes(id: number): number {
  for (const part of core.decodeNativeGenerator([id])) return typeof part === 'string' ? utf8.encode(part).length : part.length;
  return 0;
}

function endsOnCharacter(bytes: Uint8Array): boolean {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(4, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return back >= need;
  }
  return true;
}

/**
 * One delta per o200k token, as engine servers send them. A token that ends inside a character goes out as `""`
 * (`empty`: vLLM, TGI) or not at all, its bytes arriving with the next token (`merge`: llama.cpp, Ollama).
 */
export function oneTokenStream(text: string, convention: 'empty' | 'merge'): { deltas: string[]; tokens: number } {
  const ids = encode(text);
  const bytes = utf8.encode(text);
  const decoder = new TextDecoder('utf-8');
  const deltas: string[] = [];
  let sent = 0;
  let byteAt = 0;
  for (const id of ids) {
    byteAt += tokenBytes(id);
    const prefix = bytes.subarray(0, byteAt);
    if (!endsOnCharacter(prefix)) {
      if (convention === 'empty') deltas.push('');
      continue;
    }
    const decoded = decoder.decode(prefix);
    deltas.push(decoded.slice(sent));
    sent = decoded.length;
  }
  return { deltas, tokens: ids.length };
}

/** The text cut into pieces of `size` characters (code points) wherever they fall, after a first piece of `offset`. */
export function pieces(text: string, size: number, offset = 0): string[] {
  const chars = [...text];
  const out = offset > 0 ? [chars.slice(0, offset).join('')] : [];
  for (let at = offset; at < chars.length; at += size) out.push(chars.slice(at, at + size).join(''));
  return out;
}

export const o200kTokens = (text: string): number => encode(text).length;
