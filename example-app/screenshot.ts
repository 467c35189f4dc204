import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { createApp } from './app';
import { launchChromium } from './browser';
import { listen } from './listen';
import { MOCK_DEFAULTS } from './mock-llm';

/**
 * A picture of the live page under load, for the docs: the example with its mock, `example:load` over its models
 * (a child process, as a user runs it), and headless Chromium taking the screenshot after `--after` seconds.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' }, after: { type: 'string' } } });
  const out = resolve(values.out ?? 'live-page.png');
  const afterSeconds = Number(values.after ?? 20);
  const app = await listen(createApp({ registry: new Registry(), mock: { tokensPerSecond: 20 } }), 0, '127.0.0.1');
  const chromium = await launchChromium();
  const load = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'load.ts')], {
    env: { ...process.env, BASE_URL: app.url, CONCURRENCY: '6', DURATION_S: String(afterSeconds + 10), MODELS: MOCK_DEFAULTS.models.join(',') },
    stdio: 'ignore',
  });
  try {
    const page = await chromium.browser.newPage();
    await page.setViewport({ width: 1100, height: 800, deviceScaleFactor: 1 });
    await page.goto(`${app.url}/`, { waitUntil: 'load' });
    await sleep(afterSeconds * 1000);
    await mkdir(dirname(out), { recursive: true });
    await page.screenshot({ path: out as `${string}.png`, fullPage: true });
    console.log(`wrote ${out}`);
  } finally {
    load.kill();
    await Promise.allSettled([chromium.close(), app.close()]);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
