/**
 * The HTTP suites run on both Express majors: each names the package it really loaded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describeOnEachExpress } from '../support/express-suite';

describeOnEachExpress((_t, variant, packageName) => {
  it('runs on the Express major it names', () => {
    const manifest = path.join(path.dirname(require.resolve(packageName)), 'package.json');
    const { version } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version: string };
    expect(version.split('.')[0]).toBe(variant.slice(-1));
  });
});
