/**
 * A paced OpenAI-style streaming handler that keeps the ground truth the metrics are checked against: how many
 * tokens it handed to `res.write` while the response was still open, and how each response ended.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { chatEvent, codePoints } from './streams';

export interface StreamTruth {
  /** Requests that reached the handler. */
  arrived: number;
  /** Tokens (code points of content) in events handed to `res.write` before the response closed. */
  tokensWritten: number;
  finished: number;
  closedEarly: number;
}

export const newTruth = (): StreamTruth => ({ arrived: 0, tokensWritten: 0, finished: 0, closedEarly: 0 });

export const TEXTS = [' the', ' café', ' 你好', ' 🌍', ' naïve', ' 世界', ' data', ' ok'];

export interface PacedOptions {
  model: string;
  chunks: number;
  /** Pause between events; 0: the next turn of the event loop. */
  intervalMs: number;
  /** Events written per turn (each with its own `res.write`), corked into one packet. */
  burst?: number;
  /** Delay before the headers. */
  headDelayMs?: number;
  /** The server itself destroys the response after this many content events (a proxy whose upstream broke). */
  destroyAfter?: (req: IncomingMessage) => number | undefined;
}

/**
 * Streams `chunks` content events, one every `intervalMs`, then a finish event and `[DONE]`; stops writing as soon
 * as the response closes. Counts into `truth` only what it wrote while the response was open.
 */
export function pacedChat(truth: StreamTruth, options: PacedOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    truth.arrived++;
    req.resume();
    let closed = false;
    let cancel: (() => void) | undefined;
    // intervalMs 0: one event per turn of the event loop (as fast as the loop allows, other streams interleaved).
    const schedule = (ms: number): void => {
      if (ms > 0) {
        const timer = setTimeout(next, ms);
        cancel = () => clearTimeout(timer);
      } else {
        const immediate = setImmediate(next);
        cancel = () => clearImmediate(immediate);
      }
    };
    res.on('close', () => {
      closed = true;
      cancel?.();
      if (res.writableFinished) truth.finished++;
      else truth.closedEarly++;
    });
    let sent = 0;
    const destroyAfter = options.destroyAfter?.(req);
    function next(): void {
      cancel = undefined;
      if (closed) return;
      if (destroyAfter !== undefined && sent >= destroyAfter) {
        res.destroy();
        return;
      }
      if (sent === 0) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
        res.write(chatEvent(options.model, '', undefined).replace('"delta":{"content":""}', '"delta":{"role":"assistant","content":""}'));
      }
      if (sent < options.chunks) {
        // A burst of events per turn, corked into one packet: each event still gets its own res.write.
        res.cork();
        for (let i = 0; i < (options.burst ?? 1) && sent < options.chunks && (destroyAfter === undefined || sent < destroyAfter); i++, sent++) {
          const text = TEXTS[sent % TEXTS.length] as string;
          truth.tokensWritten += codePoints(text);
          res.write(chatEvent(options.model, text));
        }
        process.nextTick(() => res.uncork());
        schedule(options.intervalMs);
        return;
      }
      res.write(chatEvent(options.model, undefined, 'stop'));
      res.end('data: [DONE]\n\n');
    }
    schedule(options.headDelayMs ?? 0);
  };
}

/** Tokens in the complete chat events of an SSE text (what a client received). */
export function tokensInEvents(text: string): number {
  let tokens = 0;
  const complete = text.slice(0, text.lastIndexOf('\n\n') + 2);
  for (const block of complete.split('\n\n')) {
    if (!block.startsWith('data: {')) continue;
    const chunk = JSON.parse(block.slice(6)) as { choices?: { delta?: { content?: string } }[] };
    tokens += codePoints(chunk.choices?.[0]?.delta?.content ?? '');
  }
  return tokens;
}
