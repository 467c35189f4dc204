import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One piece of real text that becomes one generated stream per scenario. */
export interface Segment {
  id: string;
  category: Category;
  text: string;
}

export type Category = 'prose' | 'markdown' | 'code' | 'cjk' | 'hindi-thai' | 'other-lang' | 'emoji';

const ROOT = join(__dirname, '..', '..');
const NM = join(ROOT, 'node_modules');
const OWN = join(__dirname, 'corpus');

/** Target size of one stream's text: ~2.5 k characters is 500–900 tokens of English, a typical chat answer. */
const SEGMENT_CHARS = 2500;

interface Source {
  category: Category;
  /** Path relative to node_modules (text a package ships) or to bench/accuracy/corpus (ours). */
  file: string;
  own?: boolean;
  /** Most segments taken from this file, so one large file does not dominate its category. */
  max?: number;
  /** TypeScript's translated diagnostic messages: a JSON object of strings. */
  json?: boolean;
}

const SOURCES: Source[] = [
  { category: 'prose', file: 'en-answer.md', own: true },
  { category: 'prose', file: 'en-story.md', own: true },
  { category: 'prose', file: 'typescript/lib/de/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'markdown', file: 'gpt-tokenizer/README.md', max: 3 },
  { category: 'markdown', file: 'prom-client/README.md', max: 3 },
  { category: 'markdown', file: 'express/Readme.md', max: 2 },
  { category: 'markdown', file: 'eventsource-parser/README.md', max: 2 },
  { category: 'markdown', file: 'commander/Readme.md', max: 2 },
  { category: 'code', file: 'express/lib/response.js', max: 2 },
  { category: 'code', file: 'prom-client/lib/histogram.js', max: 2 },
  { category: 'code', file: 'eventsource-parser/src/parse.ts', max: 2 },
  { category: 'code', file: 'gpt-tokenizer/src/GptEncoding.ts', max: 2 },
  { category: 'code', file: 'llama3-tokenizer-js/src/data-conversion.py', max: 1 },
  { category: 'code', file: 'flatted/python/flatted.py', max: 2 },
  { category: 'cjk', file: 'zh-answer.md', own: true },
  { category: 'cjk', file: 'ja-answer.md', own: true },
  { category: 'cjk', file: 'ko-answer.md', own: true },
  { category: 'cjk', file: 'typescript/lib/zh-cn/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'cjk', file: 'typescript/lib/zh-tw/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'cjk', file: 'typescript/lib/ja/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'cjk', file: 'typescript/lib/ko/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'other-lang', file: 'ru-answer.md', own: true },
  { category: 'hindi-thai', file: 'hi-answer.md', own: true },
  { category: 'hindi-thai', file: 'th-answer.md', own: true },
  { category: 'other-lang', file: 'typescript/lib/ru/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'other-lang', file: 'typescript/lib/fr/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'other-lang', file: 'typescript/lib/es/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'other-lang', file: 'typescript/lib/pl/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'other-lang', file: 'typescript/lib/tr/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'other-lang', file: 'typescript/lib/cs/diagnosticMessages.generated.json', json: true, max: 1 },
  { category: 'emoji', file: 'emoji-chat.md', own: true },
  { category: 'emoji', file: 'fast-check/README.md', max: 1 },
  { category: 'emoji', file: 'hookified/README.md', max: 1 },
];

/** Cuts text at line ends into pieces of about SEGMENT_CHARS, the way an answer ends at a paragraph. */
function segments(text: string, max: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const line of text.split(/(?<=\n)/)) {
    current += line;
    if (current.length >= SEGMENT_CHARS) {
      out.push(current);
      current = '';
      if (out.length >= max) return out;
    }
  }
  if (current.trim().length > 200 && out.length < max) out.push(current);
  return out;
}

/** Translated messages read as running text; the middle of the file skips the shortest, most repetitive entries. */
function jsonMessages(raw: string): string {
  const values = Object.values(JSON.parse(raw) as Record<string, string>);
  const start = Math.floor(values.length / 3);
  return values.slice(start, start + 80).join('\n');
}

export function loadCorpus(): Segment[] {
  const out: Segment[] = [];
  for (const src of SOURCES) {
    const path = src.own ? join(OWN, src.file) : join(NM, src.file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      continue; // a package that moved a file must not break the benchmark; the count of streams is printed
    }
    if (src.json) text = jsonMessages(text);
    segments(text, src.max ?? 2).forEach((t, i) => {
      out.push({ id: `${src.file}#${i}`, category: src.category, text: t });
    });
  }
  return out;
}
