/** The example app, served the way it serves itself (its own listen() on 127.0.0.1) and closed after the test. */
import type express from 'express';
import { Registry } from 'prom-client';
import { createApp } from '../../example-app/app';
import type { ExampleAppOptions } from '../../example-app/app';
import { listen } from '../../example-app/listen';
import type { RunningServer } from '../../example-app/listen';

const running: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

/** Serves `app` (the example app, or an upstream a test builds for it) on a free port. */
export async function start(app: express.Express): Promise<RunningServer> {
  const server = await listen(app, 0, '127.0.0.1');
  running.push(server);
  return server;
}

/** The example app on a fresh registry. */
export function startExample(options: ExampleAppOptions = {}): Promise<RunningServer> {
  return start(createApp({ registry: new Registry(), ...options }));
}
