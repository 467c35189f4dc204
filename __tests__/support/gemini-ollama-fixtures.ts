/**
 * Gemini and Ollama streams shaped as their documentation shows them (Gemini's API reference and captured
 * `alt=sse` streams; Ollama's docs/api.md and docs/api/streaming.mdx). Text pieces hold multi-byte characters, so
 * random cuts land inside UTF-8 sequences; token counts stated by the stream are chosen apart from the text's
 * code points, so a test can tell a stated count from an estimate.
 */
import { codePoints } from './chat-fixtures';

export const PIECES = ['Hé', 'llo', ' wörld', ' 🌍', ', ', 'ça', ' va', '?'];
export const THOUGHT_PIECES = ['Let', ' me', ' thïnk'];

// ---- Gemini ---------------------------------------------------------------------------------------------------

export interface GeminiShape {
  model: string;
  pieces: string[];
  thoughts?: string[];
  /** Stated cumulative answer tokens after each piece (defaults to 2 per piece). */
  answerTokens?: number[];
  /** Thinking tokens, stated on every chunk once thinking is done. */
  thoughtsTokens?: number;
  prompt?: number;
  cached?: number;
  finishReason?: string;
}

export function geminiChunks(shape: GeminiShape): Record<string, unknown>[] {
  const chunks: Record<string, unknown>[] = [];
  const answer = shape.answerTokens ?? shape.pieces.map((_, i) => 2 * (i + 1));
  for (const thought of shape.thoughts ?? []) {
    chunks.push({
      candidates: [{ content: { parts: [{ text: thought, thought: true }], role: 'model' }, index: 0 }],
      usageMetadata: {
        promptTokenCount: shape.prompt ?? 9,
        totalTokenCount: shape.prompt ?? 9,
        ...(shape.cached !== undefined ? { cachedContentTokenCount: shape.cached } : {}),
      },
      modelVersion: shape.model,
      responseId: 'resp-1',
    });
  }
  shape.pieces.forEach((text, i) => {
    const last = i === shape.pieces.length - 1;
    const usage: Record<string, unknown> = {
      promptTokenCount: shape.prompt ?? 9,
      candidatesTokenCount: answer[i],
      totalTokenCount: (shape.prompt ?? 9) + (answer[i] as number) + (shape.thoughtsTokens ?? 0),
      promptTokensDetails: [{ modality: 'TEXT', tokenCount: shape.prompt ?? 9 }],
    };
    if (shape.thoughtsTokens !== undefined) usage.thoughtsTokenCount = shape.thoughtsTokens;
    if (shape.cached !== undefined) usage.cachedContentTokenCount = shape.cached;
    chunks.push({
      candidates: [
        {
          content: { parts: [{ text }], role: 'model' },
          ...(last ? { finishReason: shape.finishReason ?? 'STOP' } : {}),
          index: 0,
        },
      ],
      usageMetadata: usage,
      modelVersion: shape.model,
      responseId: 'resp-1',
    });
  });
  return chunks;
}

/** `alt=sse` framing: Gemini ends its lines with CRLF. */
export function geminiSse(chunks: Record<string, unknown>[], lineEnd = '\r\n'): string {
  return chunks.map((chunk) => `data: ${JSON.stringify(chunk)}${lineEnd}${lineEnd}`).join('');
}

/** The unary `:generateContent` body for the same answer. */
export function geminiBody(shape: GeminiShape): Record<string, unknown> {
  const chunks = geminiChunks({ ...shape, thoughts: [] });
  const last = chunks[chunks.length - 1] as Record<string, unknown>;
  return {
    ...last,
    candidates: [{ content: { parts: [{ text: shape.pieces.join('') }], role: 'model' }, finishReason: shape.finishReason ?? 'STOP', index: 0 }],
  };
}

export const GEMINI_PATH = '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse';

// ---- Ollama ---------------------------------------------------------------------------------------------------

export interface OllamaShape {
  model: string;
  pieces: string[];
  thinking?: string[];
  kind?: 'chat' | 'generate';
  evalCount?: number;
  promptEvalCount?: number;
  doneReason?: string;
}

const CREATED = Date.UTC(2025, 9, 26, 17, 15, 24);

export function ollamaLines(shape: OllamaShape): Record<string, unknown>[] {
  const kind = shape.kind ?? 'chat';
  const lines: Record<string, unknown>[] = [];
  let at = CREATED;
  const line = (fields: Record<string, unknown>): Record<string, unknown> => ({ model: shape.model, created_at: new Date((at += 11)).toISOString(), ...fields });
  for (const thinking of shape.thinking ?? []) {
    lines.push(line(kind === 'chat' ? { message: { role: 'assistant', content: '', thinking }, done: false } : { response: '', thinking, done: false }));
  }
  for (const text of shape.pieces) {
    lines.push(line(kind === 'chat' ? { message: { role: 'assistant', content: text }, done: false } : { response: text, done: false }));
  }
  const final: Record<string, unknown> = {
    ...(kind === 'chat' ? { message: { role: 'assistant', content: '' } } : { response: '' }),
    done: true,
    done_reason: shape.doneReason ?? 'stop',
    total_duration: 4883583458,
    load_duration: 1334875,
    prompt_eval_duration: 342546000,
    eval_duration: 4535599000,
  };
  if (shape.promptEvalCount !== undefined) final.prompt_eval_count = shape.promptEvalCount;
  if (shape.evalCount !== undefined) final.eval_count = shape.evalCount;
  lines.push(line(final));
  return lines;
}

export function ndjson(lines: unknown[], lineEnd = '\n'): string {
  return lines.map((line) => `${JSON.stringify(line)}${lineEnd}`).join('');
}

/** The `stream: false` body for the same answer. */
export function ollamaBody(shape: OllamaShape): Record<string, unknown> {
  const lines = ollamaLines({ ...shape, thinking: [] });
  const last = lines[lines.length - 1] as Record<string, unknown>;
  const text = shape.pieces.join('');
  return (shape.kind ?? 'chat') === 'chat' ? { ...last, message: { role: 'assistant', content: text } } : { ...last, response: text };
}

export function countOf(pieces: string[]): number {
  return pieces.reduce((sum, piece) => sum + codePoints(piece), 0);
}
