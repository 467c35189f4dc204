import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import type { Browser } from 'puppeteer-core';

/** The system's Chromium (Debian: `apt-get install -y chromium`); `CHROMIUM_PATH` points elsewhere. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_INSTALL = 'apt-get install -y chromium';

export function chromiumFound(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export interface HeadlessChromium {
  browser: Browser;
  close(): Promise<void>;
}

/**
 * Headless Chromium with a fresh profile, kept off the network: no first-run, sync, component or background
 * fetches, so the only requests are the page's own.
 */
export async function launchChromium(): Promise<HeadlessChromium> {
  if (!chromiumFound()) throw new Error(`no Chromium at ${CHROMIUM_PATH}: install it with \`${CHROMIUM_INSTALL}\` or set CHROMIUM_PATH`);
  const profile = mkdtempSync(join(tmpdir(), 'edm-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
