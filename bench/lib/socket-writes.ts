import net from 'node:net';

type SocketWrite = (this: net.Socket, ...args: unknown[]) => unknown;

/**
 * BENCH_SOCKET_WRITES=1: counts this process's writes to its sockets (`net.Socket`'s `_write`, and `_writev` with
 * the chunks it carries) and prints on stderr, every 2 s of load, how many buffered writes each socket write
 * carried. A middleware that made the server write to its sockets more often (less batching) would cost more in the
 * loaded server than in process; this shows whether it does.
 */
export function countSocketWrites(label: string): void {
  const proto = net.Socket.prototype as unknown as { _write: SocketWrite; _writev: SocketWrite };
  const write = proto._write;
  const writev = proto._writev;
  const total = { single: 0, vectored: 0, chunks: 0 };
  proto._write = function countedWrite(...args) {
    total.single++;
    return write.apply(this, args);
  };
  proto._writev = function countedWritev(...args) {
    total.vectored++;
    total.chunks += (args[0] as unknown[]).length;
    return writev.apply(this, args);
  };
  let last = { ...total };
  setInterval(() => {
    const single = total.single - last.single;
    const vectored = total.vectored - last.vectored;
    const chunks = total.chunks - last.chunks;
    last = { ...total };
    if (single + vectored < 1000) return;
    const perWrite = (single + chunks) / (single + vectored);
    console.error(`socket writes ${label}: ${single + vectored} in 2 s, ${perWrite.toFixed(2)} buffered writes each (${vectored} vectored)`);
  }, 2000).unref();
}
