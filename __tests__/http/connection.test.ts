/**
 * One watch per real TCP connection: who closed it (the client, a server timeout, the server itself) and the
 * responses still open on it, each ended once when it closes, also when tracked after it closed.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ConnectionWatch } from '../../lib/http/connection';
import { eventually } from '../support/http';

interface Pair {
  /** The server's side of the connection, as a response's `req.socket`. */
  server: net.Socket;
  client: net.Socket;
  closed: Promise<void>;
}

let listener: net.Server | undefined;
const clients: net.Socket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await new Promise<void>((resolve) => (listener === undefined ? resolve() : listener.close(() => resolve())));
  listener = undefined;
});

async function connect(): Promise<Pair> {
  let accept: (socket: net.Socket) => void = () => undefined;
  const accepted = new Promise<net.Socket>((resolve) => (accept = resolve));
  listener = net.createServer((socket) => accept(socket));
  await new Promise<void>((resolve) => listener?.listen(0, '127.0.0.1', resolve));
  const client = net.connect((listener.address() as AddressInfo).port, '127.0.0.1');
  clients.push(client);
  client.on('error', () => undefined);
  const server = await accepted;
  server.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  return { server, client, closed };
}

describe('ConnectionWatch', () => {
  it('is one watch per connection, listening once however many responses ask', async () => {
    const { server } = await connect();
    const before = server.listenerCount('close');
    const watch = ConnectionWatch.of(server);
    expect(ConnectionWatch.of(server)).toBe(watch);
    expect(ConnectionWatch.of(server)).toBe(watch);
    expect(server.listenerCount('close')).toBe(before + 1);
    expect(server.listenerCount('timeout')).toBe(1);
  });

  it('says the client left when the client ends the connection', async () => {
    const { server, client, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    client.end();
    await eventually(() => server.readableEnded);
    server.destroy();
    await closed;
    expect(watch.cause).toBe('client_left');
  });

  it('says the client left when the client resets the connection', async () => {
    const { server, client, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    client.resetAndDestroy();
    await closed;
    expect(watch.cause).toBe('client_left');
  });

  it('says the server timed out when the socket timeout fired before the server closed it', async () => {
    const { server, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    server.setTimeout(20, () => server.destroy());
    await closed;
    expect(watch.cause).toBe('timed_out');
  });

  it("says the server timed out when Node's requestTimeout closed it", async () => {
    const { server, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    server.destroy(Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }));
    await closed;
    expect(watch.cause).toBe('timed_out');
  });

  it('forgets a timeout once a response on the connection has finished after it', async () => {
    const { server, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    server.setTimeout(10);
    await new Promise((resolve) => server.once('timeout', resolve));
    expect(watch.cause).toBe('timed_out');
    watch.responseFinished();
    server.destroy();
    await closed;
    expect(watch.cause).toBe('server_aborted');
  });

  it("does not take the client's answer to the server's own end for the client leaving", async () => {
    const { server, client, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    client.on('end', () => client.end());
    server.end();
    await closed;
    expect(watch.cause).toBe('server_aborted');
  });

  it('says the client left when first watched after the client had already ended the connection', async () => {
    const { server, client, closed } = await connect();
    client.end();
    await eventually(() => server.readableEnded);
    const watch = ConnectionWatch.of(server);
    server.destroy();
    await closed;
    expect(watch.cause).toBe('client_left');
  });

  it('says the server aborted when it closed a connection nobody else gave up on', async () => {
    const { server, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    server.destroy();
    await closed;
    expect(watch.cause).toBe('server_aborted');
  });

  it('ends every response still open when the connection closes, once, and not those untracked', async () => {
    const { server, closed } = await connect();
    const watch = ConnectionWatch.of(server);
    const ended: string[] = [];
    const first = (): number => ended.push('first');
    const second = (): number => ended.push('second');
    const finished = (): number => ended.push('finished normally');
    watch.track(first);
    watch.track(second);
    watch.track(finished);
    watch.untrack(finished);
    server.destroy();
    await closed;
    expect(ended.sort()).toEqual(['first', 'second']);
    // Tracked after the close: ended on the next tick, not at once.
    const late = (): number => ended.push('late');
    watch.track(late);
    expect(ended).not.toContain('late');
    await new Promise((resolve) => process.nextTick(resolve));
    expect(ended.filter((name) => name === 'late')).toHaveLength(1);
    expect(ended).toHaveLength(3);
  });

  it('knows a socket that was already destroyed when first watched is closed', async () => {
    const { server, closed } = await connect();
    server.destroy();
    await closed;
    const watch = ConnectionWatch.of(server);
    let ended = 0;
    watch.track(() => ended++);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(ended).toBe(1);
  });
});
