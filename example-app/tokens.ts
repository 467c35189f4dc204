import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decode, encode } from 'gpt-tokenizer';

export interface Token {
  id: number;
  text: string;
}

/**
 * The mock's output vocabulary: a plain-English text encoded with o200k (gpt-tokenizer's default) and cut back into
 * one string per token. The corpus is ASCII, so every piece decodes to whole characters and re-encodes to exactly
 * one token: a response's true token count is the number of pieces sent, whatever tokenizer a reader uses.
 */
const CORPUS: readonly Token[] = encode(readFileSync(join(__dirname, 'corpus.txt'), 'utf8')).map((id) => ({
  id,
  text: decode([id]),
}));

/** `count` tokens of the corpus starting at `offset`, wrapping around at its end. */
export function tokensFrom(offset: number, count: number): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < count; i++) tokens.push(CORPUS[(offset + i) % CORPUS.length] as Token);
  return tokens;
}

export function countPromptTokens(text: string): number {
  return encode(text).length;
}

/** A stable small hash, so the same prompt always starts at the same place and has the same natural length. */
export function hashText(text: string): number {
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 16777619);
  }
  return hash >>> 0;
}
