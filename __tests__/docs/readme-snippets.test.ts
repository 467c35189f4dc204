import fs from 'node:fs';
import path from 'node:path';
import { STRICT_CONSUMER, typeCheck } from '../support/type-check';

/**
 * Every TypeScript snippet of the README compiles under strict settings (`exactOptionalPropertyTypes` included)
 * against the package's own types, so a user who pastes one gets no type error. Snippets are fragments of one app:
 * what they use without importing (`app`, `express`, `compression`, …) is declared once below.
 */
const ROOT = path.resolve(__dirname, '..', '..');

const FRAGMENT_CONTEXT = `import type { Express } from 'express';
declare global {
  const app: Express;
  const express: typeof import('express');
  const compression: typeof import('compression');
  const Registry: typeof import('prom-client').Registry;
  type Registry = import('prom-client').Registry;
  const dynamoMetrics: typeof import('express-dynamo-metrics').dynamoMetrics;
  const metricsRouter: typeof import('express-dynamo-metrics').metricsRouter;
}
export {};
`;

// The tokenizer package of the accuracy recipe is not a dependency here: the part of its API the recipe uses.
// (A file with no import or export, so that this declares the module rather than augmenting one.)
const ABSENT_MODULES = `declare module '@huggingface/tokenizers' {
  export class Tokenizer {
    constructor(tokenizer: object, config: object);
    encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  }
}
`;

function readmeSnippets(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1] as string);
}

test('the README has TypeScript snippets, recipes for NestJS and Fastify among them', () => {
  const snippets = readmeSnippets();
  expect(snippets.length).toBeGreaterThanOrEqual(5);
  expect(snippets.some((s) => s.includes("from '@nestjs/core'"))).toBe(true);
  expect(snippets.some((s) => s.includes("from 'fastify'"))).toBe(true);
});

test('every TypeScript snippet of the README compiles under strict settings', () => {
  const dir = fs.mkdtempSync(path.join(__dirname, '.readme-snippets-'));
  try {
    const files = readmeSnippets().map((snippet, i) => {
      const file = `snippet-${i + 1}.ts`;
      // Each snippet is its own module, so two snippets may both declare `registry`.
      fs.writeFileSync(path.join(dir, file), `${snippet}\nexport {};\n`);
      return file;
    });
    fs.writeFileSync(path.join(dir, 'context.d.ts'), FRAGMENT_CONTEXT);
    fs.writeFileSync(path.join(dir, 'absent-modules.d.ts'), ABSENT_MODULES);
    fs.writeFileSync(path.join(dir, 'app.module.ts'), 'export class AppModule {}\n');
    const output = typeCheck(
      dir,
      { ...STRICT_CONSUMER, noUncheckedIndexedAccess: false, types: ['node'], baseUrl: ROOT, paths: { 'express-dynamo-metrics': ['lib/index.ts'] } },
      ['context.d.ts', 'absent-modules.d.ts', ...files],
    );
    // On failure, show the snippet with the error.
    const failures = output
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const file = /^(snippet-\d+\.ts)\((\d+)/.exec(line);
        const source = file ? fs.readFileSync(path.join(dir, file[1] as string), 'utf8').split('\n')[Number(file[2]) - 1] : undefined;
        return source === undefined ? line : `${line}\n    ${source.trim()}`;
      });
    expect(failures).toEqual([]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
