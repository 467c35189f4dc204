import fs from 'node:fs';
import path from 'node:path';

/**
 * The house rules a newcomer relies on: `lib/` files stay small and are all drawn in docs/architecture.md, the
 * README stays a five-minute read, and neither it nor the code carries figures' provenance (issue numbers, commit
 * hashes), which lives in docs/ with the command that reproduces each figure.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const MAX_LINES = 300;
const MAX_README_BYTES = 16 * 1024;

function libFiles(dir = path.join(ROOT, 'lib')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return libFiles(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

const relative = (file: string): string => path.relative(path.join(ROOT, 'lib'), file).split(path.sep).join('/');

/** A commit hash as written in prose: 7 to 40 hex digits with at least one letter among them. */
const COMMIT_HASH = /\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b/g;
const ISSUE_NUMBER = /\b(?:issue|PR)\s*#?\d+\b|(?<![\w&/])#\d{1,5}\b/gi;

test(`every lib/ file holds at most ${MAX_LINES} lines`, () => {
  const long = libFiles()
    .map((file) => ({ file: relative(file), lines: fs.readFileSync(file, 'utf8').split('\n').length - 1 }))
    .filter(({ lines }) => lines > MAX_LINES);
  expect(long).toEqual([]);
});

test('docs/architecture.md names every lib/ file', () => {
  const architecture = fs.readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const missing = libFiles()
    .map(relative)
    .filter((file) => !file.endsWith('index.ts'))
    .filter((file) => !architecture.includes(path.posix.basename(file)));
  expect(missing).toEqual([]);
});

test(`the README is at most ${MAX_README_BYTES / 1024} KB`, () => {
  expect(fs.statSync(path.join(ROOT, 'README.md')).size).toBeLessThanOrEqual(MAX_README_BYTES);
});

test('neither the README nor lib/ carries issue numbers or commit hashes', () => {
  const found = ['README.md', ...libFiles().map((file) => path.relative(ROOT, file))].flatMap((file) => {
    const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
    return [...text.matchAll(COMMIT_HASH), ...text.matchAll(ISSUE_NUMBER)].map((match) => `${file}: ${match[0]}`);
  });
  expect(found).toEqual([]);
});
