/**
 * A look inside a handoff without touching leasehold: wraps one client's raw watch-stream factory
 * (the one leasehold's Session uses) to note when a watch response carrying events arrives.
 */
import type { Etcd3, IWatchResponse } from 'etcd3';

/** Returns a function giving the arrival time (performance.now()) of the latest watch event on `client`. */
export function watchEventProbe(client: Etcd3): () => number {
  let last = -Infinity;
  const watchClient = client.watchClient;
  const original = watchClient.watch.bind(watchClient);
  watchClient.watch = async (...args: Parameters<typeof original>) => {
    const stream = await original(...args);
    stream.on('data', (res: IWatchResponse) => {
      if (res.events.length > 0) last = performance.now();
    });
    return stream;
  };
  return () => last;
}
