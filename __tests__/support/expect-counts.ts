/**
 * `expectCounts(stream, { outputTokens: 75, … })`: a stream written by a real server through the middleware, the
 * client checked to receive it unchanged, and the counts read back from the registry, stated in one line.
 */
import { postJson } from './http';
import { meteredApp } from './metered-app';
import type { MeteredApp, MeteredOptions } from './metered-app';
import type { Labels } from './registry-values';

export interface ExpectedCounts {
  outputTokens?: number;
  reasoningTokens?: number;
  inputTokens?: number;
  /** The sum of the `cached_tokens` histogram. */
  cachedTokens?: number;
  /** Observations of time to first token. */
  firstTokens?: number;
  /** `output_tokens_overcount_total` over every series. */
  overcount?: number;
  /** `parse_errors_total` over every series. */
  parseErrors?: number;
  /** The request ended once under these labels of `requests_total`. */
  ended?: Labels;
  /** The request ended once with this `finish_reason`. */
  finishReason?: string;
}

export interface StreamRequest {
  path: string;
  body: unknown;
  contentType: string;
  /** The labels every count is read under (the model); not applied to `overcount` and `parseErrors`. */
  labels?: Labels;
  /** Names the case in a failure (which line ends, which cuts). */
  where?: string;
  app?: MeteredOptions;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Writes `pieces` with one `res.write` each (yielding to the event loop now and then), asserts, returns the app. */
export async function expectCounts(pieces: readonly Buffer[], expected: ExpectedCounts, request: StreamRequest): Promise<MeteredApp> {
  const app = await meteredApp(async (_req, res) => {
    res.writeHead(200, { 'Content-Type': request.contentType });
    for (let i = 0; i < pieces.length; i++) {
      res.write(pieces[i]);
      if (i % 16 === 15) await tick();
    }
    res.end();
  }, request.app);
  const response = await postJson(app.port, request.path, request.body);
  const where = request.where ?? '';
  expect({ where, unchanged: response.body.equals(Buffer.concat(pieces)) }).toEqual({ where, unchanged: true });
  await app.ended();
  await expectAppCounts(app, expected, request.labels, where);
  return app;
}

/** The counts an app's registry holds now, read under `labels` (see {@link StreamRequest.labels}). */
export async function expectAppCounts(app: MeteredApp, expected: ExpectedCounts, labels: Labels = {}, where = ''): Promise<void> {
  const actual: Record<string, unknown> = {};
  const read = async (key: keyof ExpectedCounts, suffix: string, filter: Labels, part?: 'sum' | 'count'): Promise<void> => {
    if (expected[key] !== undefined) actual[key] = await app.get(suffix, filter, part);
  };
  await read('outputTokens', 'output_tokens_total', labels);
  await read('reasoningTokens', 'reasoning_tokens_total', labels);
  await read('inputTokens', 'input_tokens_total', labels);
  await read('cachedTokens', 'cached_tokens', labels, 'sum');
  await read('firstTokens', 'time_to_first_token_seconds', labels, 'count');
  await read('overcount', 'output_tokens_overcount_total', {});
  await read('parseErrors', 'parse_errors_total', {});
  if (expected.ended !== undefined) {
    actual.ended = (await app.get('requests_total', { ...labels, ...expected.ended })) === 1 ? expected.ended : 'not once under these labels';
  }
  if (expected.finishReason !== undefined) {
    const once = (await app.get('requests_finished_total', { ...labels, finish_reason: expected.finishReason })) === 1;
    actual.finishReason = once ? expected.finishReason : `not once with ${expected.finishReason}`;
  }
  expect({ where, ...actual }).toEqual({ where, ...expected });
}
