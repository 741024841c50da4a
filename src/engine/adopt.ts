/**
 * Resuming what an adopted lease already holds, for the primitives whose keys are per acquisition
 * (Semaphore, ReadWriteLock: `<prefix><leaseHex>-<nonce><counter>`). A Mutex or an Election needs
 * none of this: its key is `name/<leaseHex>`, so the next acquisition finds it by name.
 *
 * A process that adopts a lease (`SessionOptions.leaseId`, for example after a restart) inherits the
 * keys the lease holds. Left alone, they would block it for ever: they live as long as the lease it
 * now keeps alive, and a new acquisition would queue behind them. So the first acquisition of a name
 * on an adopted session (per primitive) reads the lease's keys under that name once and
 *   - resumes one that matches what it asks for (same mode; same weight and permits), oldest first:
 *     a held one is handed out at once with its old token, a queued one goes on waiting in its place;
 *   - deletes the others (guarded by their create revisions): their owner is gone.
 * Later acquisitions of that name on that session skip the read. Sessions that granted their own
 * lease never read anything here.
 */
import { removeUntilGone } from './cleanup.js';
import type { Kv } from '../transport/etcd.js';
import { internals, type SessionLike } from './session-internals.js';

const done = new WeakMap<SessionLike, Map<string, Promise<void>>>();

/**
 * On an adopted session, the first call per `scope` returns the oldest leftover key of the lease
 * under `prefixes` that `wanted` accepts (and deletes the rest); every other call returns undefined.
 * Concurrent calls for one scope wait for the first one.
 */
export async function resumeLeftover(
  session: SessionLike,
  scope: string,
  prefixes: readonly string[],
  wanted: (kv: Kv, prefix: string) => boolean,
): Promise<{ kv: Kv; prefix: string } | undefined> {
  const s = internals(session);
  if (!s.adopted) return undefined;
  let scopes = done.get(session);
  if (!scopes) done.set(session, (scopes = new Map()));
  const earlier = scopes.get(scope);
  if (earlier) {
    await earlier;
    return undefined;
  }
  let finish!: () => void;
  scopes.set(scope, new Promise<void>((resolve) => (finish = resolve)));
  try {
    const leftovers: { kv: Kv; prefix: string }[] = [];
    for (const prefix of prefixes) {
      const res = await s.ops.range(s.ops.prefixRange(prefix), session.signal);
      for (const raw of res.kvs) {
        const kv = s.ops.decode(raw);
        if (kv.lease === session.leaseId) leftovers.push({ kv, prefix });
      }
    }
    leftovers.sort((a, b) => (a.kv.createRevision < b.kv.createRevision ? -1 : 1));
    const resumed = leftovers.find(({ kv, prefix }) => wanted(kv, prefix));
    for (const { kv } of leftovers) {
      if (kv === resumed?.kv) continue;
      await removeUntilGone(session.signal, (signal) => s.ops.deleteIfCreated(kv.bytes, kv.createRevision, signal));
    }
    return resumed;
  } catch (error) {
    scopes.delete(scope); // the next acquisition tries again
    throw error;
  } finally {
    finish();
  }
}
