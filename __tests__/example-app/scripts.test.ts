import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { defaultOutput, README_PNG } from '../../example-app/plot';

/**
 * What `npm run example:load` and `npm run example:plot` say when what they need is not there: the URL they could
 * not reach and how to get it running, instead of a bare "Connection error." or "fetch failed".
 */
const ROOT = path.resolve(__dirname, '..', '..');

/** A port nothing listens on: taken from the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function runScript(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', path.join(ROOT, 'example-app', script), ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('example:load names the URL it could not reach, with or without --models', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  for (const extra of [[], ['--models', 'mock-llama-3.1-8b-instruct']]) {
    const result = await runScript('load.ts', ['--base-url', url, '--duration', '1', ...extra]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`could not reach the gateway at ${url} (connect ECONNREFUSED`);
    expect(result.stderr).toContain('npm run example');
  }
}, 60_000);

test('example:plot says Prometheus is needed, how to get it, and where it looked', async () => {
  const url = `http://127.0.0.1:${await closedPort()}`;
  const result = await runScript('plot.ts', ['--prometheus', url]);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`could not reach Prometheus at ${url} (connect ECONNREFUSED`);
  expect(result.stderr).toContain('apt-get install -y prometheus');
  expect(result.stderr).toContain('--demo');
}, 60_000);

test("example:plot writes a new file named after the time by default, never the README's picture", () => {
  const first = defaultOutput(new Date('2026-12-01T03:04:05Z'), '/somewhere');
  expect(first).toBe('/somewhere/tokens-per-second-20261201-030405.png');
  expect(defaultOutput(new Date('2026-12-01T03:04:06Z'), '/somewhere')).not.toBe(first);
  expect(defaultOutput()).not.toBe(README_PNG);
  expect(path.dirname(defaultOutput())).toBe(process.cwd());
});
