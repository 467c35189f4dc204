import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const TSC = path.resolve(__dirname, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');

/** As strict as a careful consumer sets it, `exactOptionalPropertyTypes` and `noUncheckedIndexedAccess` included. */
export const STRICT_CONSUMER = {
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  module: 'commonjs',
  moduleResolution: 'node',
  target: 'ES2022',
  esModuleInterop: true,
  noEmit: true,
  skipLibCheck: true,
};

/**
 * Writes `dir/tsconfig.json` with these options and files and type-checks it with the repo's TypeScript (run by the
 * current Node); returns what tsc printed, empty when everything compiled.
 */
export function typeCheck(dir: string, compilerOptions: Record<string, unknown>, files: readonly string[]): string {
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }));
  try {
    return execFileSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  } catch (error) {
    return String((error as { stdout?: string }).stdout ?? error);
  }
}
