import { createApp } from './app';
import { configFromEnv } from './config';
import { listen } from './listen';

async function main(): Promise<void> {
  const config = await configFromEnv();
  const { url, close } = await listen(createApp(config.app), config.port, config.host);
  const upstream = config.app.upstream;
  const model = config.app.mock?.models?.[0] ?? 'mock-llama-3.1-8b-instruct';
  console.log(
    upstream
      ? `example gateway on ${url}, proxying /v1/*, /v1beta/* (Gemini), /api/chat and /api/generate (Ollama) to ${upstream.url}`
      : `example gateway on ${url} with a mock model (${config.app.mock?.tokensPerSecond} tokens/s per stream)`,
  );
  if (!upstream) {
    console.log('\ntry:');
    console.log(
      `  curl -N ${url}/v1/chat/completions -H 'Content-Type: application/json' \\\n` +
        `    -d '{"model":"${model}","stream":true,"stream_options":{"include_usage":true},` +
        `"messages":[{"role":"user","content":"Tell me a story"}]}'`,
    );
    console.log(`  curl -N ${url}/api/chat -d '{"model":"${model}","messages":[{"role":"user","content":"Why is the sky blue?"}]}'   (Ollama)`);
    console.log(`  curl -N ${url}/api/assistant -H 'Content-Type: application/json' -d '{"messages":[]}'   (Vercel AI SDK)`);
  }
  console.log(`\nlive page: ${url}/   (tokens/s per model, drawn from /metrics while traffic runs)`);
  console.log(`metrics: ${url}/metrics   (watch: watch -n1 "curl -s ${url}/metrics | grep output_tokens_total")`);
  if (config.app.openTelemetry) console.log(`OpenTelemetry (GenAI conventions, via exporter-prometheus): ${url}/otel/metrics`);
  console.log(`load:    BASE_URL=${url} npm run example:load`);

  const stop = (): void => {
    void close()
      .then(() => config.app.openTelemetry?.shutdown())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
