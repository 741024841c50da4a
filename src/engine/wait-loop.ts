/**
 * The one loop every wait of leasehold runs in — a lock's turn, a semaphore head's wait for room, a
 * barrier's wait, a double barrier's rounds — so that every primitive rides out an outage the same
 * way: a pass reads, decides, and watches; a transient etcd error (unreachable, a deadline, the
 * `etcd3` client's open breaker) is never the end of a wait, only a pause before the next pass. The
 * wait ends when a pass says it is done, when `signal` aborts (with its reason), or on a final error
 * (a permission refused, a foreign key, our own key gone).
 *
 * Each call that a pass makes is itself retried by the session's policy (about 6.5 s); before this
 * loop existed a `Barrier.wait` rejected with `EtcdUnavailableError` after those 6.5 s of a 12 s etcd
 * restart while a Mutex waiter waited it out (issue 19 §4).
 */
import { Backoff } from '../transport/backoff.js';
import type { EtcdOps } from '../transport/etcd.js';
import { isTransientError } from '../transport/retry.js';
import { waitForDelete } from './watch.js';

/**
 * What one pass of a wait found: `{ done }` ends the wait with that value; `'woke'` (a watch fired, or
 * the state moved on) runs the next pass at once; `'broke'` (a watch broke) runs it after a backoff
 * that grows while passes keep breaking.
 */
export type Pass<T> = { done: T } | 'woke' | 'broke';

/**
 * Runs `pass` until it is done; see the file comment. Transient errors are retried with backoff
 * until `signal` aborts; anything else rejects. Rejects with `signal.reason` on abort.
 */
export async function waitLoop<T>(signal: AbortSignal, pass: () => Promise<Pass<T>>): Promise<T> {
  const backoff = new Backoff();
  for (;;) {
    signal.throwIfAborted();
    try {
      const outcome = await pass();
      if (outcome === 'woke') {
        backoff.reset();
        continue;
      }
      if (outcome !== 'broke') return outcome.done;
    } catch (error) {
      if (signal.aborted || !isTransientError(error)) throw error;
    }
    await backoff.wait(signal);
  }
}

/** Runs `step` until it settles without a transient error (for idempotent steps between waits). */
export function retrying<T>(signal: AbortSignal, step: () => Promise<T>): Promise<T> {
  return waitLoop(signal, async () => ({ done: await step() }));
}

/**
 * Waits until `key` does not exist (a Barrier's wait): reads exactly that key and, while it exists,
 * watches it for deletion — a watch synced at birth, with a re-read when the revision moved between
 * the read and the watch's creation, so a delete in between is never missed (etcd PR 16223).
 */
export function untilAbsent(ops: EtcdOps, key: string, signal: AbortSignal): Promise<void> {
  return waitLoop(signal, async () => {
    const res = await ops.range({ key: ops.abs(key), keysOnly: true }, signal);
    const kv = res.kvs[0];
    if (!kv) return { done: undefined };
    const up = { key, bytes: Buffer.from(key), createRevision: kv.createRevision };
    return (await waitForDelete(ops, up, res.header.revision, signal)) ? 'woke' : 'broke';
  });
}
