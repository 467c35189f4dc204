import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { ConnectionWatch } from './connection';
import type { CloseWatch } from './connection';

/**
 * How a response ended, as the response hook saw it: sent in full; the client left; the server broke it off (the
 * app destroyed the response or its socket, an error after the head); the server's socket timeout fired; or its
 * connection died before it was its turn to be sent (pipelined behind another), with the client still there.
 */
export type ResponseOutcome = 'finished' | 'client_left' | 'server_aborted' | 'timed_out' | 'never_sent';

/** What the response hook reports; called inside try/catch, so a listener bug never reaches the handler. */
export interface ResponseListener {
  /** Once, before the first body byte: the status and a header lookup that also sees headers given to `writeHead`. */
  onHead(statusCode: number, header: (name: string) => string | undefined): void;
  /** Every body chunk the client can still receive, before it is passed on (not after `end()` or `destroy()`). */
  onBody(chunk: unknown, encoding: unknown): void;
  /** `res.end()` was called: the body is complete. */
  onBodyEnd(): void;
  /** Once: the response finished, or closed before finishing. */
  onDone(outcome: ResponseOutcome, statusCode: number): void;
  /** The listener threw; the response goes on untouched. */
  onListenerError(error: unknown): void;
}

type WriteCallback = (error?: Error | null) => void;

/**
 * A header given to `writeHead`. Given twice (`{...upstream, 'Content-Type': …}`), as the client reads it: `merged`
 * (a header was set before, as Express sets one), Node sends the last only; else it sends both, and a client reads
 * the first.
 */
function headerFromArgs(args: readonly unknown[], name: string, merged: boolean): string | undefined {
  const headers = args[args.length - 1];
  let found: string | undefined;
  if (Array.isArray(headers)) {
    // writeHead's raw form: [name, value, name, value, …] or [[name, value], …].
    for (let i = 0; i < headers.length; i++) {
      const entry = headers[i] as unknown;
      if (Array.isArray(entry)) {
        if (String(entry[0]).toLowerCase() === name) found = String(entry[1]);
      } else if (i % 2 === 0 && String(entry).toLowerCase() === name) {
        found = String(headers[i + 1]);
      }
      if (found !== undefined && !merged) return found;
    }
  } else if (headers !== null && typeof headers === 'object') {
    for (const [key, value] of Object.entries(headers as OutgoingHttpHeaders)) {
      if (key.toLowerCase() === name && value !== undefined) found = headerValue(value);
      if (found !== undefined && !merged) return found;
    }
  }
  return found;
}

/**
 * Whether Node would refuse these `writeHead` arguments (a status outside 100–999; a status message, header name
 * or value no HTTP message can carry, such as a client's text with a line break), throwing before anything is
 * sent: the app's error handler then answers instead, and that answer is the head to report.
 */
function refusedHead(args: readonly unknown[]): boolean {
  const status = statusFrom(args[0]);
  if (status === undefined || !(status >= 100 && status <= 999)) return true;
  // A status message is held to the characters a header value may hold.
  if (typeof args[1] === 'string' && /[^\t\x20-\x7e\x80-\xff]/.test(args[1])) return true;
  const headers = args[args.length - 1];
  if (args.length < 2 || headers === null || typeof headers !== 'object') return false;
  try {
    if (Array.isArray(headers)) {
      if (headers.every((entry) => Array.isArray(entry))) {
        for (const entry of headers as unknown[][]) validateHeader(entry[0], entry[1]);
      } else {
        for (let i = 0; i + 1 < headers.length; i += 2) validateHeader(headers[i], headers[i + 1]);
      }
    } else {
      for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) validateHeader(name, value);
    }
    return false;
  } catch {
    return true;
  }
}

/** The status `writeHead` makes of its first argument (`| 0`: `'503'` is 503), or undefined where that throws. */
function statusFrom(value: unknown): number | undefined {
  if (typeof value === 'bigint' || typeof value === 'symbol') return undefined;
  return Number(value) | 0;
}

function validateHeader(name: unknown, value: unknown): void {
  validateHeaderName(String(name));
  // Undefined values are skipped by writeHead; arrays are validated element by element.
  if (value === undefined) return;
  for (const item of Array.isArray(value) ? value : [value]) validateHeaderValue(String(name), String(item));
}

function headerValue(value: OutgoingHttpHeader | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/**
 * Wraps `writeHead`, `write`, `end` and `destroy` of one response (as `on-headers` and `compression` do): the
 * originals are kept, every argument is forwarded, the original's return value is returned (so `false` still means
 * backpressure), and callbacks are passed through untouched.
 *
 * The end is reported once: `finish`, or `close` before it, or the close of the connection for a pipelined
 * response that never got its turn. What closed early is classified by its transport (see `ConnectionWatch`): only
 * a client that left is `client_left`, and not when the server had broken the response off first (`res.destroy()`,
 * also with a network error's code, as `stream.pipeline` does with an upstream's).
 */
export function hookResponse(
  res: ServerResponse,
  listener: ResponseListener,
  watch: CloseWatch | undefined = res.socket === null ? undefined : ConnectionWatch.of(res.socket),
): void {
  const originalWriteHead = res.writeHead;
  const originalWrite = res.write;
  const originalEnd = res.end;
  const originalDestroy = res.destroy;
  let headSeen = false;
  /** `end()` or `destroy()` was called: what is written after never reaches the client. */
  let bodyEnded = false;
  /** `destroy()` was called while the client was still there. */
  let destroyedByServer = false;
  let done = false;

  const guard = (action: () => void): void => {
    try {
      action();
    } catch (error) {
      listener.onListenerError(error);
    }
  };

  const reportHead = (writeHeadArgs: readonly unknown[] | undefined): void => {
    headSeen = true;
    const statusCode = statusFrom(writeHeadArgs === undefined ? res.statusCode : writeHeadArgs[0]) ?? res.statusCode;
    const merged = writeHeadArgs !== undefined && writeHeadArgs.length > 1 && res.getHeaderNames().length > 0;
    listener.onHead(statusCode, (name) =>
      (writeHeadArgs !== undefined && writeHeadArgs.length > 1 ? headerFromArgs(writeHeadArgs, name, merged) : undefined) ??
      headerValue(res.getHeader(name)),
    );
  };

  res.writeHead = function writeHead(this: ServerResponse, ...args: unknown[]) {
    // Reported before the original runs (a compression() beneath us sets Content-Encoding in it, on bytes we read
    // before it compresses them), unless the original is about to refuse these arguments.
    if (!headSeen && !done) guard(() => (refusedHead(args) ? undefined : reportHead(args)));
    return (originalWriteHead as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['writeHead'];

  res.write = function write(this: ServerResponse, chunk: unknown, encoding?: unknown, callback?: WriteCallback) {
    if (!done && !bodyEnded) {
      try {
        if (!headSeen) reportHead(undefined);
        listener.onBody(chunk, encoding);
      } catch (error) {
        listener.onListenerError(error);
      }
    }
    return (originalWrite as (c: unknown, e: unknown, cb: unknown) => boolean).call(this, chunk, encoding, callback);
  } as ServerResponse['write'];

  res.end = function end(this: ServerResponse, chunk?: unknown, encoding?: unknown, callback?: WriteCallback) {
    if (!bodyEnded && !done) {
      bodyEnded = true;
      guard(() => {
        if (!headSeen) reportHead(undefined);
        if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
          listener.onBody(chunk, typeof encoding === 'function' ? undefined : encoding);
        }
        listener.onBodyEnd();
      });
    }
    return (originalEnd as (c: unknown, e: unknown, cb: unknown) => ServerResponse).call(this, chunk, encoding, callback);
  } as ServerResponse['end'];

  res.destroy = function destroy(this: ServerResponse, error?: Error) {
    bodyEnded = true;
    if (!done && watch?.cause !== 'client_left') destroyedByServer = true;
    return originalDestroy.call(this, error);
  } as ServerResponse['destroy'];

  const finish = (outcome: ResponseOutcome): void => {
    if (done) return;
    done = true;
    res.removeListener('finish', onFinish);
    res.removeListener('close', onClose);
    watch?.untrack(onConnectionClose);
    guard(() => listener.onDone(outcome, res.statusCode));
  };
  const closedEarly = (): ResponseOutcome => {
    const cause = watch?.cause ?? 'server_aborted';
    return cause === 'client_left' && destroyedByServer ? 'server_aborted' : cause;
  };
  const onFinish = (): void => {
    if (watch?.brokenOff === true) return finish(closedEarly());
    watch?.responseFinished();
    finish('finished');
  };
  const onClose = (): void => finish(closedEarly());
  // A response that never reached the socket was not sent: the client did not leave it, its connection died first.
  const onConnectionClose = (): void => {
    const cause = closedEarly();
    finish(res.socket === null && cause !== 'client_left' ? 'never_sent' : cause);
  };
  res.on('finish', onFinish);
  res.on('close', onClose);
  watch?.track(onConnectionClose);
}
