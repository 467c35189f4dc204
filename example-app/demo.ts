import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createApp } from './app';
import { listen } from './listen';
import { MOCK_DEFAULTS } from './mock-llm';
import { plotTokensPerSecond } from './plot';
import { instantQuery } from './prom-api';
import { startPrometheus } from './prometheus-process';

const BURST_MODEL = 'mock-phi-3-mini-instruct';

function runLoad(baseUrl: string, env: Record<string, string>, echo: boolean): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'load.ts')], {
      env: { ...process.env, BASE_URL: baseUrl, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (piece: Buffer) => {
      output += piece.toString();
      if (echo) process.stdout.write(piece);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolvePromise(output) : reject(new Error(`load exited ${code}:\n${output}`))));
  });
}

/**
 * Produces the README picture from scratch: the example with its mock, a private Prometheus scraping it every
 * second, a steady load over three models and, a third of the way in, a burst on a fourth; then the plot.
 */
export async function runDemo(options: { out: string; durationSeconds: number }): Promise<void> {
  const duration = options.durationSeconds;
  const app = await listen(
    createApp({
      registry: new Registry(),
      mock: { models: [...MOCK_DEFAULTS.models, BURST_MODEL], tokensPerSecond: 20 },
    }),
    0,
    '127.0.0.1',
  );
  const prometheus = await startPrometheus({ target: new URL(app.url).host, scrapeIntervalSeconds: 1 });
  try {
    console.log(`example on ${app.url}, Prometheus on ${prometheus.url}`);
    for (let i = 0; i < 100; i++) {
      const up = await instantQuery(prometheus.url, 'up');
      if (up.resultType === 'vector' && up.result.some((s) => s.value[1] === '1')) break;
      await sleep(200);
    }
    const start = Date.now() / 1000;
    const steady = runLoad(
      app.url,
      { CONCURRENCY: '6', DURATION_S: String(duration), MODELS: MOCK_DEFAULTS.models.join(',') },
      true,
    );
    await sleep(duration * 300);
    const burst = runLoad(app.url, { CONCURRENCY: '8', DURATION_S: String(duration * 0.35), MODELS: BURST_MODEL }, false);
    const [, burstOutput] = await Promise.all([steady, burst]);
    console.log(`\nburst on ${BURST_MODEL}:\n${burstOutput.split('\n').slice(-4).join('\n')}`);
    // A few idle seconds so the picture shows the rate falling back to zero once the streams end.
    await sleep(6000);
    await plotTokensPerSecond(prometheus.url, { start: start - 3, end: Date.now() / 1000, out: options.out, window: '5s' });
  } finally {
    await Promise.allSettled([prometheus.stop(), app.close()]);
  }
}
