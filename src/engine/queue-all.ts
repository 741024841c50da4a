/**
 * Joining several queues at once, for a MultiLock: one key per name, all written by one txn, so they
 * all get the same create revision. That shared revision does all the work. Any two acquisitions that
 * meet on several names are ordered the same way on every one of them (the one that joined first is
 * ahead on all of them), so waiting in each name's queue in turn can never close a circle. That gives
 * FIFO per name and no deadlock, with no sorting of names and no backing off. The same revision is
 * also the one fencing token.
 *
 * A key of ours (`name/<leaseHex>`) can already exist before the join in two ways:
 *   - our own earlier attempt of this same txn applied but its answer was lost. Then every key exists
 *     with one create revision, and we adopt them;
 *   - it is a stray left on an adopted lease by the lease's earlier owner. Then we delete it (guarded
 *     by its create revision) and join again.
 */
import { LeaseholdError } from '../errors.js';
import { guardCompare, rangeOp, type EtcdOps } from '../transport/etcd.js';
import { blockerQuery, notOurs, OwnKeyGone, pick, type Enqueued, type QueueSpec } from './queue.js';
import type { Blocker } from './watch.js';

/** One key to join and the queue it joins. */
export interface Entry {
  /** Our key (relative to the namespace). */
  key: string;
  /** Which keys can block it. */
  spec: QueueSpec;
}

/** The result of joining every queue. */
export interface JoinedAll {
  /** The create revision of every key: our place in every queue, and the fencing token. */
  ownRevision: bigint;
  /** Per entry, in order: what `enqueue` reports for one queue. */
  joined: Enqueued[];
}

const createdNot = (key: Buffer) => ({ key, target: 'create' as const, result: 'equal' as const, createRevision: 0n });

/**
 * Joins every queue of `entries` in one txn: when none of our keys exists, it puts all of them
 * (bound to `lease`) and reads the newest contender of each queue from before the puts. Idempotent:
 * a retry after an ambiguous outcome finds the keys it created, all with one create revision, and
 * takes that revision.
 * @throws LeaseholdError when keys of ours keep appearing on these names between two joins.
 */
export async function enqueueAll(ops: EtcdOps, entries: readonly Entry[], lease: string, signal?: AbortSignal): Promise<JoinedAll> {
  const keys = entries.map((e) => ops.abs(e.key));
  const value = Buffer.alloc(0);
  for (let attempt = 0; ; attempt++) {
    const res = await ops.txn(
      {
        compare: keys.map(createdNot),
        success: [...entries.map((e) => rangeOp(blockerQuery(ops, e.spec, undefined, 1))), ...keys.map((key) => ({ put: { key, value, lease } }))],
        failure: keys.map((key) => rangeOp({ key, keysOnly: true })),
      },
      signal,
    );
    const revision = res.header.revision;
    if (res.succeeded) {
      const joined = entries.map((e, i): Enqueued => {
        const blocker = pick(ops, e.spec, res.responses[i]!.range!, true, e.key);
        return { ownRevision: revision, blocker, checkedAt: revision, created: true };
      });
      return { ownRevision: revision, joined };
    }
    const found = res.responses.map((r) => r.range!.kvs[0]);
    const first = found[0];
    if (first && first.lease === lease && found.every((kv) => kv?.lease === lease && kv.createRevision === first.createRevision)) {
      const ownRevision = first.createRevision;
      return { ownRevision, joined: entries.map(() => ({ ownRevision, blocker: undefined, checkedAt: revision, created: false })) };
    }
    if (attempt > 0) {
      throw new LeaseholdError(`keys of lease ${lease} keep appearing on ${entries.map((e) => e.key).join(', ')} while joining their queues`);
    }
    // A key with our name on another lease was written by another program: never ours to delete.
    for (const [i, kv] of found.entries()) {
      if (kv && kv.lease !== lease) throw notOurs(entries[i]!.key, kv.lease, lease);
    }
    // Strays of an earlier owner of this lease: whatever they held is over. Delete them and join again.
    for (const [i, kv] of found.entries()) {
      if (kv) await ops.deleteIfCreated(entries[i]!.key, kv.createRevision, signal);
    }
  }
}

/**
 * Reads, in one txn guarded by every key of ours, the contender just ahead of each of our keys: a
 * read that finds no one ahead anywhere is also the check, for every key at one revision, that the
 * keys are still ours (etcd issue 11456). A queue whose answer was cut at a nested name is read in
 * full (every queue then, in one more guarded read).
 * @throws OwnKeyGone naming the first key that no longer has create revision `ownRevision`.
 */
export async function findBlockers(
  ops: EtcdOps,
  entries: readonly Entry[],
  ownRevision: bigint,
  signal?: AbortSignal,
): Promise<{ blockers: (Blocker | null)[]; checkedAt: bigint }> {
  for (const limit of [1, 0]) {
    const res = await ops.readTxn(
      {
        compare: entries.map((e) => guardCompare(ops.abs(e.key), ownRevision)),
        success: entries.map((e) => rangeOp(blockerQuery(ops, e.spec, ownRevision, limit))),
        failure: entries.map((e) => rangeOp({ key: ops.abs(e.key), keysOnly: true })),
      },
      signal,
    );
    if (!res.succeeded) {
      const gone = entries.find((_, i) => res.responses[i]?.range!.kvs[0]?.createRevision !== ownRevision) ?? entries[0]!;
      throw new OwnKeyGone(`${gone.key} is gone`, gone.key);
    }
    const found = entries.map((e, i) => pick(ops, e.spec, res.responses[i]!.range!, limit !== 0, e.key));
    if (found.every((b) => b !== undefined)) return { blockers: found, checkedAt: res.header.revision };
  }
  throw new LeaseholdError('unreachable: an unlimited range is never cut');
}

/**
 * Deletes every key in `keys` that still has create revision `createRevision`. Resolves true when one
 * txn deleted them all. Resolves false when some key was already gone (deleted by someone else, or
 * with its lease); the others are then deleted one by one, each guarded by the same revision.
 */
export async function deleteAllIfCreated(ops: EtcdOps, keys: readonly string[], createRevision: bigint, signal?: AbortSignal): Promise<boolean> {
  if (keys.length === 1) return ops.deleteIfCreated(keys[0]!, createRevision, signal);
  const res = await ops.txn(
    {
      compare: keys.map((key) => guardCompare(ops.abs(key), createRevision)),
      success: keys.map((key) => ({ deleteRange: { key: ops.abs(key) } })),
    },
    signal,
  );
  if (res.succeeded) return true;
  await Promise.all(keys.map(async (key) => ops.deleteIfCreated(key, createRevision, signal)));
  return false;
}
