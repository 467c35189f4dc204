import { EventEmitter } from 'node:events';

/** Just enough of a `ServerResponse` for the hook and the middleware, with no socket: what stays is our own cost. */
export class FakeResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  socket = null;
  written = 0;
  private readonly headers = new Map<string, string>();

  writeHead(statusCode: number, headers?: Record<string, string>): this {
    this.statusCode = statusCode;
    if (headers) for (const key of Object.keys(headers)) this.headers.set(key.toLowerCase(), headers[key] as string);
    this.headersSent = true;
    return this;
  }
  setHeader(name: string, value: string): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }
  getHeader(name: string): string | undefined {
    return this.headers.get(name.toLowerCase());
  }
  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }
  write(chunk: string | Uint8Array, _encoding?: unknown, _callback?: unknown): boolean {
    this.written += chunk.length;
    return true;
  }
  end(_chunk?: unknown, _encoding?: unknown, _callback?: unknown): this {
    this.emit('finish');
    this.emit('close');
    return this;
  }
  destroy(): this {
    this.emit('close');
    return this;
  }
}
