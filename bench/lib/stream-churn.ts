import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { DEFAULT_BODY } from './load';

/** The memory bench's client: many short streams in a row, completed or left after their first event. */

const HOST = '127.0.0.1';
const BODY = Buffer.from(DEFAULT_BODY);
const PHASE_TIMEOUT_MS = 180_000;

export interface StreamOutcome {
  ok: boolean;
}

export function postStream(
  agent: http.Agent,
  port: number,
  query: string,
  onEvents?: (eventsSoFar: number, req: http.ClientRequest) => void,
): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    let events = 0;
    let settled = false;
    const settle = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      resolve({ ok });
    };
    const req = http.request(
      {
        host: HOST,
        port,
        agent,
        method: 'POST',
        path: `/v1/chat/completions${query}`,
        headers: { 'content-type': 'application/json', 'content-length': String(BODY.length) },
      },
      (res) => {
        res.on('data', (buf: Buffer) => {
          let at = buf.indexOf('\n\n');
          while (at !== -1) {
            events++;
            at = buf.indexOf('\n\n', at + 2);
          }
          onEvents?.(events, req);
        });
        res.on('close', () => settle(res.complete));
        res.on('error', () => settle(false));
      },
    );
    req.on('error', () => settle(false));
    req.end(BODY);
  });
}

/** Runs `total` streams, `concurrency` at a time; `query` picks the server behaviour per stream. */
export async function churn(
  port: number,
  total: number,
  concurrency: number,
  query: string,
  abortAfterFirstEvent: boolean,
): Promise<{ ok: number; failed: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let started = 0;
  let ok = 0;
  let failed = 0;
  const deadline = performance.now() + PHASE_TIMEOUT_MS;
  const worker = async (): Promise<void> => {
    while (started < total && performance.now() < deadline) {
      started++;
      const outcome = await postStream(agent, port, query, (events, req) => {
        // The client leaves mid-stream, as a user closing the tab: the server sees 'close' before 'finish'.
        if (abortAfterFirstEvent && events >= 2) req.destroy();
      });
      if (outcome.ok) ok++;
      else failed++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  agent.destroy();
  if (process.env.MEM_VERBOSE) console.log(`    churn ${total} ${query}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { ok, failed };
}
