import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { defaultBuckets } from '../../lib/metrics/buckets';
import type { HistogramName } from '../../lib/metrics/buckets';
import { STRICT_CONSUMER, typeCheck } from '../support/type-check';

/**
 * The public types: `types/public-api.ts` compiled under the strictest settings a consumer uses, and a doc comment
 * with `@defaultValue` on every public option field, read from the sources with the TypeScript compiler.
 */
const ROOT = path.resolve(__dirname, '..', '..');

const STRICTEST = {
  ...STRICT_CONSUMER,
  types: ['node'],
  typeRoots: [path.join(ROOT, 'node_modules', '@types')],
};

/** `types/public-api.ts`, or a variant of it, compiled in a scratch folder beside it (so its imports resolve). */
function compile(source: string): string {
  const dir = fs.mkdtempSync(path.join(__dirname, '.scratch-'));
  try {
    fs.writeFileSync(path.join(dir, 'public-api.ts'), source.replaceAll("'../../lib", "'../../../lib"));
    return typeCheck(dir, STRICTEST, ['public-api.ts']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const PUBLIC_API = fs.readFileSync(path.join(__dirname, 'public-api.ts'), 'utf8');

test('the type tests compile under strict, exactOptionalPropertyTypes and noUncheckedIndexedAccess', () => {
  expect(compile(PUBLIC_API)).toBe('');
}, 60_000);

test('a wrong type in the type tests is caught (the compile above can fail)', () => {
  // Without the directive the line under it is an error; the compile must report it.
  const broken = PUBLIC_API.replace('// @ts-expect-error maxModels is a number\n', '');
  expect(broken).not.toBe(PUBLIC_API);
  expect(compile(broken)).toMatch(/error TS2322: Type 'string' is not assignable to type 'number'/);
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
