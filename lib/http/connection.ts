import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/** How a response that closed before finishing ended, judged by what its connection saw. */
export type CloseCause = 'client_left' | 'timed_out' | 'server_aborted';

/** What the response hook asks of the transport a response goes out on. */
export interface CloseWatch {
  /** Who closed it, for a response that closed before it was sent in full. */
  readonly cause: CloseCause;
  /** The response was broken off even if it reports `finish` (HTTP/2 reports it for a reset stream too). */
  readonly brokenOff: boolean;
  /** Calls `end` when the transport closes before the response could end by itself. */
  track(end: () => void): void;
  untrack(end: () => void): void;
  /** The response was sent in full: a timeout before it did not end the transport. */
  responseFinished(): void;
}

/** The watch for a request's response: its HTTP/1 connection's, or its own HTTP/2 stream's. */
export function closeWatchFor(req: IncomingMessage): CloseWatch | undefined {
  if (req.httpVersionMajor >= 2) return new StreamWatch(req);
  return req.socket === null || req.socket === undefined ? undefined : ConnectionWatch.of(req.socket);
}

/** Errors a socket gets from the network or the peer: the client went away (or sent what no server can parse). */
const CLIENT_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN']);

const WATCH = Symbol('express-dynamo-metrics.connection');

type Watched = Socket & { [WATCH]?: ConnectionWatch };

/**
 * What one connection has seen, shared by every response on it, so that a response that closes early is classified
 * by who closed the connection, not by the fact that it closed:
 *
 * - the client left: the socket read the peer's end of stream, or got a network error (reset, broken pipe);
 * - the server's socket timeout fired (`server.timeout`, `req.setTimeout`) and the server closed it;
 * - otherwise the server closed it: `res.destroy()`, `req.socket.destroy()`, Express destroying the socket after
 *   `next(err)` once headers were sent, a server shutting down.
 *
 * It also ends the responses a closed connection never reaches: Node emits neither `finish` nor `close` on a
 * pipelined response still queued behind another when the socket dies.
 */
export class ConnectionWatch implements CloseWatch {
  private clientGone = false;
  private timedOut = false;
  private closed = false;
  /** Responses on this connection that have not ended: each ends (once) when the connection closes. */
  private readonly open = new Set<() => void>();
  readonly brokenOff = false;

  /** The watch of a socket, created (and its listeners added, once per connection) on first use. */
  static of(socket: Socket): ConnectionWatch {
    const watched = socket as Watched;
    return (watched[WATCH] ??= new ConnectionWatch(socket));
  }

  private constructor(socket: Socket) {
    this.closed = socket.destroyed;
    // Mounted late (behind an async middleware), the watch may come after the client has already gone (and Node
    // has ended its side in answer).
    if (socket.readableEnded) this.clientGone = true;
    if (socket.errored !== null && socket.errored !== undefined) this.sawError(socket.errored as NodeJS.ErrnoException);
    socket.once('end', () => {
      // The peer's end of stream after the server's own had gone out is the answer to it, not the client leaving.
      // (Node's server ends its side in answer to a client's, in a listener before this one: that end has not
      // gone out yet.)
      if (!socket.writableFinished) this.clientGone = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => this.sawError(error));
    socket.on('timeout', () => {
      this.timedOut = true;
    });
    socket.once('close', () => {
      this.closed = true;
      for (const end of this.open) end();
      this.open.clear();
    });
  }

  get cause(): CloseCause {
    return this.clientGone ? 'client_left' : this.timedOut ? 'timed_out' : 'server_aborted';
  }

  responseFinished(): void {
    this.timedOut = false;
  }

  private sawError(error: NodeJS.ErrnoException): void {
    const code = error.code;
    if (typeof code !== 'string') return;
    // Node's requestTimeout: the request did not arrive in time, and the server closed the connection.
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT') this.timedOut = true;
    // A network error comes from the socket's own read or write (it names the system call); one an app made up and
    // passed to `socket.destroy(error)` is the server's doing. HPE_* errors: the client sent what no server parses.
    else if ((CLIENT_ERRORS.has(code) && typeof error.syscall === 'string') || code.startsWith('HPE_')) this.clientGone = true;
  }

  /** Calls `end` when the connection closes (at once, on the next tick, if it already has). */
  track(end: () => void): void {
    if (this.closed) process.nextTick(end);
    else this.open.add(end);
  }

  untrack(end: () => void): void {
    this.open.delete(end);
  }
}

type Http2Stream = {
  destroyed: boolean;
  closed: boolean;
  writableEnded: boolean;
  writableFinished: boolean;
  rstCode?: number;
  close: (...args: unknown[]) => void;
  session?: { socket?: { destroyed?: boolean } };
};

/** How often a response whose stream may have been reset unreported is looked at. */
const UNREPORTED_RESET_CHECK_MS = 1000;
type Http2Request = IncomingMessage & { aborted?: boolean; stream?: Http2Stream };

/**
 * An HTTP/2 response's own stream: many requests share one connection, so the connection says nothing about one
 * of them. Node reports `aborted` for a stream closed before the response was sent in full, whoever closed it: the
 * server broke it off when it destroyed the stream (`res.destroy()`, its session, its timeout) or closed it itself
 * (`stream.close()`, with any code) while the connection was up; otherwise the client left, whatever code it reset
 * the stream with (a browser's or undici's abort sends INTERNAL_ERROR, Node's `stream.close()` NO_ERROR), or it
 * dropped the connection. A stream reset after the response ended but before it was delivered was broken off too,
 * though Node reports `finish`. A response whose stream was reset is ended then, as Node may never report its
 * `finish` or `close` (a client's NO_ERROR reset while the app still writes). One reset after `end()` but before its
 * bytes went out, of a request whose body nobody read, Node never reports at all, nor the end of its connection:
 * it is found by looking at the stream once a second.
 */
class StreamWatch implements CloseWatch {
  private reset = false;
  private resetByServer = false;
  /** The server closed the stream itself (`stream.close()`) before its response ended, or with an error code. */
  private closedByServer = false;
  private readonly open = new Set<() => void>();
  private unreportedResetCheck: NodeJS.Timeout | undefined;

  constructor(private readonly req: Http2Request) {
    const stream = req.stream;
    if (stream !== undefined && !stream.closed) this.watchClose(stream);
    // Mounted late (behind an async middleware), the watch may come after the stream was reset, and cleaned up.
    if (req.aborted === true) this.sawReset(false);
    else {
      req.once('aborted', () => {
        this.sawReset(req.stream?.destroyed === true);
        // After Node's own events for the reset: a response that reports its end itself ends once, by that.
        setImmediate(() => this.endOpen());
      });
    }
  }

  get brokenOff(): boolean {
    const rstCode = this.req.stream?.rstCode;
    return this.reset || (rstCode !== undefined && rstCode !== 0);
  }

  get cause(): CloseCause {
    return this.brokenOff && !this.resetByServer && !this.closedByServer ? 'client_left' : 'server_aborted';
  }

  /** Calls `end` when the stream is reset (reported or found); at once if it closed before the hook was installed. */
  track(end: () => void): void {
    const stream = this.req.stream;
    if (stream !== undefined && (stream.closed || stream.destroyed)) return void process.nextTick(end);
    this.open.add(end);
    if (stream === undefined || this.unreportedResetCheck !== undefined) return;
    this.unreportedResetCheck = setInterval(() => {
      if (stream.closed && !stream.destroyed && stream.writableEnded && !stream.writableFinished) {
        this.reset = true;
        this.endOpen();
      }
    }, UNREPORTED_RESET_CHECK_MS);
    this.unreportedResetCheck.unref();
  }

  untrack(end: () => void): void {
    this.open.delete(end);
    if (this.open.size === 0) clearInterval(this.unreportedResetCheck);
  }

  responseFinished(): void {}

  private endOpen(): void {
    for (const end of this.open) end();
    this.open.clear();
    clearInterval(this.unreportedResetCheck);
  }

  /** `destroyed`: the stream was destroyed when Node reported the reset, which only the server does. */
  private sawReset(destroyed: boolean): void {
    this.reset = true;
    this.resetByServer = destroyed || this.closedByServer;
  }

  /**
   * Notes the server's own `stream.close()`. Node calls it too: with NO_ERROR once a response ended (a graceful
   * close, breaking nothing off), and with CANCEL for every stream of a connection the client dropped.
   */
  private watchClose(stream: Http2Stream): void {
    const original = stream.close;
    const noteClose = (code: unknown): void => {
      if ((!stream.writableEnded || (code ?? 0) !== 0) && !connectionGone(stream)) this.closedByServer = true;
    };
    stream.close = function close(this: unknown, ...args: unknown[]) {
      noteClose(args[0]);
      return original.apply(this, args);
    };
  }
}

/** The stream's connection is closed (Node then closes each of its streams with CANCEL). */
function connectionGone(stream: Http2Stream): boolean {
  try {
    return stream.session?.socket?.destroyed !== false;
  } catch {
    // The session no longer has a socket to ask.
    return true;
  }
}
