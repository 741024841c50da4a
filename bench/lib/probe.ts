/**
 * A look inside a handoff without touching leasehold: wraps one client's watch streams (every way
 * they are opened: the h2 transport's `watch()`, which leasehold's watch hub uses by default; etcd3's
 * connection pool, which the hub uses on the etcd3 transport; and the public `watchClient.watch()`)
 * to note when a watch response carrying events arrives.
 */
import type { Etcd3, IWatchResponse } from 'etcd3';
import type { WatchResponse } from '../../src/transport/messages.js';
import type { StreamHandlers } from '../../src/transport/port.js';
import { transportFor } from '../../src/transport/select.js';

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
  // The h2 transport of this client (made here if the client has none yet: it connects only when used).
  const { transport } = transportFor(client, 'h2');
  const originalH2Watch = transport.watch.bind(transport);
  transport.watch = (handlers: StreamHandlers<WatchResponse>, options) =>
    originalH2Watch(
      {
        message: (res) => {
          if (res.events.length > 0) last = performance.now();
          handlers.message(res);
        },
        end: (error) => handlers.end(error),
      },
      options,
    );
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
