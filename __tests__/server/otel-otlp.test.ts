/**
 * `meter` with the OTLP exporter, as docs/opentelemetry.md describes it for a collector: an app in its own process
 * (`fixtures/otlp-gateway.ts`: the real SDK's `PeriodicExportingMetricReader` around the real `OTLPMetricExporter`,
 * OTLP/HTTP with JSON) sends to a receiver on a local socket that keeps what it is sent, as a collector's OTLP/HTTP
 * receiver would receive it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { GEN_AI_INSTRUMENTS } from '../../lib';
import { OTLP_MODEL, OTLP_USAGE } from '../fixtures/otlp-gateway';
import { parseMetrics, sumOf } from '../../example-app/metrics-text';
import { closedAfterEach, eventually, listen, postJson, scrape } from '../support/http';
import { m } from '../support/registry-values';

const ROOT = path.resolve(__dirname, '..', '..');
const servers = closedAfterEach();
let child: ChildProcessWithoutNullStreams | undefined;

afterEach(async () => {
  if (child === undefined || child.exitCode !== null) return;
  const exited = new Promise((resolve) => child?.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
});

/** Starts the app sending to `collectorUrl`; resolves with its port once it listens. */
async function startApp(collectorUrl: string): Promise<number> {
  const app = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '..', 'fixtures', 'otlp-gateway.ts'), collectorUrl], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  child = app;
  let errors = '';
  app.stderr.on('data', (piece: Buffer) => (errors += piece.toString()));
  return new Promise<number>((resolve, reject) => {
    let output = '';
    app.stdout.on('data', (piece: Buffer) => {
      output += piece.toString();
      const port = /^http:\/\/127\.0\.0\.1:(\d+)$/m.exec(output)?.[1];
      if (port !== undefined) resolve(Number(port));
    });
    app.once('exit', (code) => reject(new Error(`the app exited with ${String(code)} before listening:\n${errors}`)));
  });
}

/** An OTLP/HTTP JSON number: an int64 arrives as a string or a number, depending on the serializer. */
type OtlpNumber = number | string;
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: OtlpNumber; boolValue?: boolean };
}
interface OtlpPoint {
  attributes: OtlpAttribute[];
  count?: OtlpNumber;
  sum?: number;
  asInt?: OtlpNumber;
  asDouble?: number;
}
interface OtlpMetric {
  name: string;
  unit?: string;
  histogram?: { dataPoints: OtlpPoint[] };
  sum?: { dataPoints: OtlpPoint[]; isMonotonic?: boolean };
}
interface OtlpRequest {
  resourceMetrics: { scopeMetrics: { scope: { name: string }; metrics: OtlpMetric[] }[] }[];
}

/** What the receiver was sent: each export request's path, content type and parsed body. */
interface Received {
  path: string | undefined;
  contentType: string | undefined;
  body: OtlpRequest;
}

async function startReceiver(): Promise<{ port: number; received: Received[] }> {
  const received: Received[] = [];
  const server = await listen((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      received.push({ path: req.url, contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(parts).toString('utf8')) as OtlpRequest });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  servers.push(server);
  return { port: server.port, received };
}

const attributes = (point: OtlpPoint): Record<string, unknown> =>
  Object.fromEntries(point.attributes.map(({ key, value: v }) => [key, v.stringValue ?? v.boolValue ?? (v.intValue === undefined ? undefined : Number(v.intValue))]));

/** The last export's metric of that name (cumulative temporality: the last export holds the totals). */
function lastMetric(received: Received[], name: string): OtlpMetric | undefined {
  for (let i = received.length - 1; i >= 0; i--) {
    for (const resource of (received[i] as Received).body.resourceMetrics) {
      for (const scope of resource.scopeMetrics) {
        const found = scope.metrics.find((metric) => metric.name === name);
        if (found !== undefined) return found;
      }
    }
  }
  return undefined;
}

test('a streamed request reaches an OTLP/HTTP receiver through the real exporter: token usage, usage counters, durations', async () => {
  const receiver = await startReceiver();
  const port = await startApp(`http://127.0.0.1:${receiver.port}/v1/metrics`);
  const response = await postJson(port, '/v1/chat/completions', { model: OTLP_MODEL, stream: true, stream_options: { include_usage: true } });
  expect(response.status).toBe(200);
  const counted = async (name: string, labels: Record<string, string> = {}): Promise<number> => sumOf(parseMetrics(await scrape(port)), m(name), labels);
  await eventually(async () => (await counted('requests_total')) === 1);
  expect((await postJson(port, '/flush', {})).status).toBe(204);

  expect(receiver.received.length).toBeGreaterThan(0);
  expect(receiver.received[0]).toMatchObject({ path: '/v1/metrics', contentType: 'application/json' });

  const usage = lastMetric(receiver.received, GEN_AI_INSTRUMENTS.tokenUsage);
  expect(usage?.unit).toBe('{token}');
  const byType = Object.fromEntries((usage?.histogram?.dataPoints ?? []).map((point) => [attributes(point)['gen_ai.token.type'], point]));
  expect(Number(byType.output?.sum)).toBe(OTLP_USAGE.completion_tokens);
  expect(Number(byType.input?.sum)).toBe(OTLP_USAGE.prompt_tokens);
  expect(attributes(byType.output as OtlpPoint)).toMatchObject({ 'gen_ai.request.model': OTLP_MODEL, 'gen_ai.operation.name': 'chat' });

  const outputTotal = lastMetric(receiver.received, GEN_AI_INSTRUMENTS.usageOutputTokens);
  expect(outputTotal?.sum?.isMonotonic).toBe(true);
  const outputPoint = outputTotal?.sum?.dataPoints[0];
  expect(Number(outputPoint?.asInt ?? outputPoint?.asDouble)).toBe(OTLP_USAGE.completion_tokens);

  expect(Number(lastMetric(receiver.received, GEN_AI_INSTRUMENTS.requestDuration)?.histogram?.dataPoints[0]?.count)).toBe(1);
  expect(Number(lastMetric(receiver.received, GEN_AI_INSTRUMENTS.timeToFirstToken)?.histogram?.dataPoints[0]?.count)).toBe(1);
  // Prometheus, beside it, counted the same request.
  expect(await counted('output_tokens_total', { model: OTLP_MODEL })).toBe(OTLP_USAGE.completion_tokens);
}, 30_000);
