/**
 * Node cluster mode through prom-client's AggregatorRegistry: a primary with two workers (fixtures/cluster.ts),
 * each streaming with dynamoMetrics() on the global registry after
 * enableClusterWorkerMetrics(); the primary serves metricsRouter({ cluster: true }). Streams go through both
 * workers (no keep-alive, so connections are spread), and the primary's aggregated counters equal the sums.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { bounded } from '../support/bounded';
import { request } from '../support/http';
import { tokensInEvents } from '../support/paced-stream';
import { P, valueFromText } from '../support/registry-values';

const REQUESTS = 60;

interface Ports {
  metricsPort: number;
  workerPort: number;
  workers: number[];
}

let primary: ChildProcess | undefined;
let ports: Ports | undefined;

function killAll(): void {
  for (const pid of ports?.workers ?? []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  if (primary !== undefined && primary.exitCode === null) primary.kill('SIGKILL');
}

beforeAll(async () => {
  const script = path.join(__dirname, '..', 'fixtures', 'cluster.ts');
  primary = spawn(process.execPath, ['--import', 'tsx', script], { cwd: path.join(__dirname, '..', '..'), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  primary.stderr?.on('data', (part: Buffer) => (stderr += part.toString()));
  ports = await new Promise<Ports>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the cluster did not start in 30 s: ${stderr}`)), 30_000);
    let stdout = '';
    primary?.stdout?.on('data', (part: Buffer) => {
      stdout += part.toString();
      const line = stdout.split('\n').find((l) => l.startsWith('{'));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Ports);
      }
    });
    primary?.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the primary exited (${code}): ${stderr}`));
    });
  });
}, 40_000);

afterAll(async () => {
  primary?.stdin?.end();
  killAll();
  if (primary !== undefined && primary.exitCode === null) await new Promise((resolve) => primary?.once('exit', resolve));
});

function stream(port: number, chunks: number): Promise<{ worker: string; tokens: number }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify({ model: 'm', stream: true, chunks });
    const req = http.request(
      { host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => resolve({ worker: String(res.headers['x-worker-id']), tokens: tokensInEvents(Buffer.concat(parts).toString()) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

test('the primary serves the sum over both workers', async () => {
  const { metricsPort, workerPort } = ports as Ports;
  const perWorker = new Map<string, { requests: number; tokens: number }>();
  let tokens = 0;
  await bounded(REQUESTS, 6, async (i) => {
    const result = await stream(workerPort, 3 + (i % 17));
    tokens += result.tokens;
    const entry = perWorker.get(result.worker) ?? { requests: 0, tokens: 0 };
    entry.requests++;
    entry.tokens += result.tokens;
    perWorker.set(result.worker, entry);
  });
  // Both workers served some of the streams.
  expect([...perWorker.keys()].sort()).toEqual(['1', '2']);
  for (const entry of perWorker.values()) expect(entry.requests).toBeGreaterThan(0);

  const response = await request(metricsPort, 'GET', '/metrics');
  const [status, text] = [response.status, response.body.toString()];
  expect(status).toBe(200);
  expect(valueFromText(text, `${P}_output_tokens_total`, { model: 'm' })).toBe(tokens);
  expect(
    valueFromText(text, `${P}_requests_total`, { model: 'm', endpoint: 'chat_completions', request_type: 'stream', status: 'success', error_type: '' }),
  ).toBe(REQUESTS);
  expect(valueFromText(text, `${P}_inflight_requests`, { model: 'm' })).toBe(0);
  process.stdout.write(`hardening-cluster: ${JSON.stringify({ requests: REQUESTS, tokens, perWorker: Object.fromEntries(perWorker) })}\n`);
}, 30_000);
