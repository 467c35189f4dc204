/**
 * Shared by the reliability suites: an Express app with the middleware on a fresh registry, served on 127.0.0.1,
 * and readers for what a fault must leave behind (gauges back at their start, each request ended once).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import express from 'express';
import type { Express } from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, metricsRouter } from '../../lib';
import type { DynamoMetricsOptions } from '../../lib';
import { samples, value } from './registry-values';
import type { Labels } from './registry-values';

export const P = 'dynamo_frontend';

export interface MetricsApp {
  app: Express;
  registry: Registry;
}

/** An app with `dynamoMetrics()` mounted first on a fresh registry; routes are added by the test. */
export function metricsApp(options: Omit<DynamoMetricsOptions, 'registry'> = {}): MetricsApp {
  const registry = new Registry();
  const app = express();
  app.use(dynamoMetrics({ ...options, registry }));
  app.use(metricsRouter({ registry }));
  return { app, registry };
}

export interface Served {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function serve(app: Express | ((req: never, res: never) => void)): Promise<Served> {
  const server = (app as Express).listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sum over every series of a counter or gauge (with `labels`, of the matching ones). */
export const total = (registry: Registry, suffix: string, labels: Labels = {}): Promise<number> => value(registry, `${P}_${suffix}`, labels);

/** The in-flight gauges summed over models: all three must come back to where they started after any fault. */
export async function gauges(registry: Registry): Promise<{ inflight: number; active: number; queued: number }> {
  return {
    inflight: await total(registry, 'inflight_requests'),
    active: await total(registry, 'active_requests'),
    queued: await total(registry, 'queued_requests'),
  };
}

/** Every series of every gauge is 0 (not only their sum): a request moved between labels must leave none behind. */
export async function everyGaugeSeriesZero(registry: Registry): Promise<boolean> {
  for (const suffix of ['inflight_requests', 'active_requests', 'queued_requests']) {
    for (const sample of await samples(registry, `${P}_${suffix}`)) if (sample.value !== 0) return false;
  }
  return true;
}

/** Polls `check` until it holds (requests may end a moment after the client saw its response). */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Waits until every started request has ended and every gauge series is back to 0. */
export async function settled(registry: Registry, timeoutMs = 5_000): Promise<void> {
  await waitFor(
    async () =>
      (await everyGaugeSeriesZero(registry)) &&
      (await total(registry, 'requests_started_total')) === (await total(registry, 'requests_total')),
    timeoutMs,
  );
}

/** A raw HTTP/1.1 request with a JSON body, as bytes for a `net` socket. */
export function rawRequest(path: string, body: unknown, method = 'POST', extraHeaders = ''): string {
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return (
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(payload)}\r\n${extraHeaders}\r\n${payload}`
  );
}

/** A raw socket that collects what the server sends; resolves once connected. */
export async function rawClient(port: number): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  socket.on('data', (part: Buffer) => parts.push(part));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, received: () => Buffer.concat(parts).toString('latin1'), closed };
}

/** Resolves when `text()` contains `needle`. */
export function until(text: () => string, needle: string, timeoutMs = 5_000): Promise<void> {
  return waitFor(() => text().includes(needle), timeoutMs);
}
