import type { Socket } from 'node:net';

/** How a response that closed before finishing ended, judged by what its connection saw. */
export type CloseCause = 'client_left' | 'timed_out' | 'server_aborted';

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
export class ConnectionWatch {
  private clientGone = false;
  private timedOut = false;
  private closed = false;
  /** Responses on this connection that have not ended: each ends (once) when the connection closes. */
  private readonly open = new Set<() => void>();

  /** The watch of a socket, created (and its listeners added, once per connection) on first use. */
  static of(socket: Socket): ConnectionWatch {
    const watched = socket as Watched;
    return (watched[WATCH] ??= new ConnectionWatch(socket));
  }

  private constructor(socket: Socket) {
    this.closed = socket.destroyed;
    socket.once('end', () => {
      this.clientGone = true;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (typeof error.code === 'string' && (CLIENT_ERRORS.has(error.code) || error.code.startsWith('HPE_'))) this.clientGone = true;
    });
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

  /** Calls `end` when the connection closes (at once, on the next tick, if it already has). */
  track(end: () => void): void {
    if (this.closed) process.nextTick(end);
    else this.open.add(end);
  }

  untrack(end: () => void): void {
    this.open.delete(end);
  }
}
