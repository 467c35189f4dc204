/** The OpenTelemetry GenAI attributes of the Gemini, Ollama and AI SDK requests (a real SDK MeterProvider). */
import express from 'express';
import { Registry } from 'prom-client';
import { dynamoMetrics, GEN_AI_INSTRUMENTS } from '../../lib';
import { closedAfterEach, eventually, listen, postJson } from '../support/http';
import { OtelHarness } from '../support/otel-reader';
import { GEMINI_PATH, geminiChunks, geminiSse, ndjson, ollamaLines, PIECES } from '../support/streams';

const servers = closedAfterEach();

async function start(otel: OtelHarness): Promise<number> {
  const app = express();
  app.use(express.json());
  app.use(dynamoMetrics({ registry: new Registry(), meter: otel.meter }));
  app.post(/.*/, (req, res) => {
    if (req.path.endsWith(':streamGenerateContent')) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(geminiSse(geminiChunks({ model: 'gemini-2.5-flash', pieces: PIECES })));
    } else if (req.path === '/api/generate') {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      res.end(ndjson(ollamaLines({ model: 'llama3.2', pieces: PIECES, kind: 'generate', evalCount: 30 })));
    } else {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'x-vercel-ai-ui-message-stream': 'v1' });
      res.end('data: {"type":"text-delta","id":"0","delta":"Hi"}\n\ndata: {"type":"finish","finishReason":"stop"}\n\ndata: [DONE]\n\n');
    }
  });
  const server = await listen(app);
  servers.push(server);
  return server.port;
}

test('operation and provider names follow the wire format', async () => {
  const otel = new OtelHarness();
  const port = await start(otel);
  await postJson(port, GEMINI_PATH, {});
  await postJson(port, '/api/generate', { model: 'llama3.2', prompt: 'x' });
  await postJson(port, '/chat', {});
  let seen: string[] = [];
  await eventually(async () => {
    const points = await otel.histogram(GEN_AI_INSTRUMENTS.requestDuration);
    seen = points.map((p) => `${String(p.attributes['gen_ai.operation.name'])} ${String(p.attributes['gen_ai.provider.name'])}`).sort();
    return seen.length === 3;
  });
  expect(seen).toEqual(['chat vercel.ai_sdk', 'generate_content gcp.gemini', 'text_completion ollama']);
});
