import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { defaultBuckets } from '../lib/metrics/buckets';
import type { HistogramName } from '../lib/metrics/buckets';

/**
 * The public types: `types/public-api.ts` compiled under the strictest settings a consumer uses, and a doc comment
 * with `@defaultValue` on every public option field, read from the sources with the TypeScript compiler.
 */
const ROOT = path.resolve(__dirname, '..');

function compile(compilerOptions: Record<string, unknown>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edm-types-'));
  try {
    const config = path.join(dir, 'tsconfig.json');
    fs.writeFileSync(config, JSON.stringify({ compilerOptions, files: [path.join(__dirname, 'types', 'public-api.ts')] }));
    return execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], {
      cwd: ROOT,
      encoding: 'utf8',
    });
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const STRICTEST = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noPropertyAccessFromIndexSignature: false,
  module: 'commonjs',
  moduleResolution: 'node',
  target: 'ES2022',
  esModuleInterop: true,
  noEmit: true,
  skipLibCheck: true,
  types: ['node'],
  typeRoots: [path.join(ROOT, 'node_modules', '@types')],
};

test('the type tests compile under strict, exactOptionalPropertyTypes and noUncheckedIndexedAccess', () => {
  expect(compile(STRICTEST)).toBe('');
}, 60_000);

test('a wrong type in the type tests is caught (the compile above can fail)', () => {
  const source = fs.readFileSync(path.join(__dirname, 'types', 'public-api.ts'), 'utf8');
  // Without the directive the line under it is an error; the compile must report it.
  const broken = source.replace('// @ts-expect-error maxModels is a number\n', '');
  const dir = fs.mkdtempSync(path.join(__dirname, 'types', '.broken-'));
  try {
    fs.writeFileSync(path.join(dir, 'public-api.ts'), broken.replaceAll("'../../lib", "'../../../lib"));
    const config = path.join(dir, 'tsconfig.json');
    fs.writeFileSync(config, JSON.stringify({ compilerOptions: STRICTEST, files: ['public-api.ts'] }));
    let output = '';
    try {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], { cwd: dir, encoding: 'utf8' });
    } catch (error) {
      output = String((error as { stdout?: string }).stdout);
    }
    expect(output).toMatch(/error TS2322: Type 'string' is not assignable to type 'number'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

describe('doc comments', () => {
  const program = ts.createProgram([path.join(ROOT, 'lib', 'index.ts')], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
  });
  const checker = program.getTypeChecker();
  const index = program.getSourceFile(path.join(ROOT, 'lib', 'index.ts')) as ts.SourceFile;
  const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(index) as ts.Symbol);
  const resolve = (name: string): ts.Symbol => {
    const symbol = exported.find((s) => s.name === name);
    if (symbol === undefined) throw new Error(`${name} is not exported`);
    return symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  };
  const typeOf = (symbol: ts.Symbol): ts.Type =>
    symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)
      ? checker.getDeclaredTypeOfSymbol(symbol)
      : checker.getTypeOfSymbol(symbol);
  /** Every property of the type (of each member of a union), with its documentation and tags. */
  const fields = (name: string): { field: string; doc: string; defaultValue: string | undefined }[] => {
    const type = typeOf(resolve(name));
    const members = type.isUnion() ? type.types : [type];
    return members.flatMap((member) =>
      member.getProperties().map((property) => ({
        field: `${name}.${property.name}`,
        doc: ts.displayPartsToString(property.getDocumentationComment(checker)),
        defaultValue: property.getJsDocTags(checker).find((tag) => tag.name === 'defaultValue')?.text?.map((part) => part.text).join(''),
      })),
    );
  };

  test.each(['DynamoMetricsOptions', 'MetricsRouterOptions', 'BucketOptions', 'MetricsAuth', 'ExtraLabelOptions', 'DEFAULTS'])(
    'every field of %s says what it is and its default',
    (name) => {
      const all = fields(name);
      expect(all.length).toBeGreaterThan(0);
      const undocumented = all.filter((f) => f.doc.trim() === '' || f.defaultValue === undefined || f.defaultValue.trim() === '');
      expect(undocumented.map((f) => f.field)).toEqual([]);
    },
  );

  test('the bucket defaults in the doc comments are the bounds the middleware uses', () => {
    for (const { field, defaultValue } of fields('BucketOptions')) {
      const histogram = field.split('.')[1] as HistogramName;
      expect({ field, bounds: JSON.parse((defaultValue ?? '').replaceAll('`', '').trim()) }).toEqual({ field, bounds: defaultBuckets(histogram, {}) });
    }
  });
});
