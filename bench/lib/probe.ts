/**
 * A look inside a handoff without touching leasehold: wraps one client's watch streams (both ways
 * they are opened: etcd3's connection pool, which leasehold's watch hub uses, and the public
 * `watchClient.watch()`) to note when a watch response carrying events arrives.
 */
import type { Etcd3, IWatchResponse } from 'etcd3';

type Stream = { on(event: 'data', listener: (res: IWatchResponse) => void): unknown };
type WithConnection = (service: string, fn: (args: unknown) => unknown, ...rest: unknown[]) => Promise<unknown>;

/** Returns a function giving the arrival time (performance.now()) of the latest watch event on `client`. */
export function watchEventProbe(client: Etcd3): () => number {
  let last = -Infinity;
  const note = (stream: Stream): void => {
    stream.on('data', (res) => {
      if (res.events.length > 0) last = performance.now();
    });
  };
  const pool = (client as unknown as { pool?: { withConnection?: WithConnection } }).pool;
  if (pool?.withConnection) {
    const original = pool.withConnection.bind(pool);
    pool.withConnection = (service, fn, ...rest) =>
      original(
        service,
        (args) => {
          const result = fn(args);
          if (service === 'Watch') void Promise.resolve(result).then((s) => note(s as Stream), () => undefined);
          return result;
        },
        ...rest,
      );
  }
  const watchClient = client.watchClient;
  const originalWatch = watchClient.watch.bind(watchClient);
  watchClient.watch = async (...args: Parameters<typeof originalWatch>) => {
    const stream = await originalWatch(...args);
    note(stream as unknown as Stream);
    return stream;
  };
  return () => last;
}
