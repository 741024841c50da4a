/**
 * The herd-free queue every primitive shares. Each participant writes one key bound to its lease; the
 * order of create revisions is the queue; a waiter watches only its blocker — the contender with the
 * largest create revision below its own — and re-reads when that key goes. A release therefore wakes
 * exactly one waiter. Before a waiter is told it is first, the same read checks that its own key still
 * exists with the same create revision (etcd issues 11456 and 19597).
 */
import type { RangeRequest, RangeResponse } from '../transport/messages.js';
import { guardCompare, rangeOp, type EtcdOps } from '../transport/etcd.js';
import { ForeignKeyError, LeaseholdError } from '../errors.js';
import { isDirectChild } from './keys.js';
import { waitLoop } from './wait-loop.js';
import { waitForDelete, type Blocker, type Wake } from './watch.js';

/** Which keys are contenders that can block a waiter. */
export interface QueueSpec {
  /** Contenders live under this prefix (relative to the namespace). */
  prefix: string;
  /**
   * Whether a key under `prefix` (its bytes, relative to the namespace) counts as a contender.
   * @default a direct child of `prefix`
   */
  counts?: (key: Buffer) => boolean;
}

/** Thrown inside the queue when our own key is gone: the caller decides between lost and not held. */
export class OwnKeyGone extends Error {
  override name = 'OwnKeyGone';

  /** @param key which of our keys is gone, when the thrower knows (a MultiLock has several). */
  constructor(
    message: string,
    readonly key?: string,
  ) {
    super(message);
  }
}

/** Whether the key `key` (bytes relative to the namespace) is a contender of the queue `spec`. */
export function counts(spec: QueueSpec, key: Buffer): boolean {
  return spec.counts ? spec.counts(key) : isDirectChild(key, spec.prefix);
}

/** The range that finds the contender just below `below` (the newest one when undefined). */
export function blockerQuery(ops: EtcdOps, spec: QueueSpec, below: bigint | undefined, limit: number): RangeRequest {
  const { key, rangeEnd } = ops.prefixRange(spec.prefix);
  const query: RangeRequest = { key, rangeEnd, sortTarget: 'create', sortOrder: 'descend', limit, keysOnly: true };
  if (below !== undefined) query.maxCreateRevision = below - 1n;
  return query;
}

/**
 * The blocker in a range answer, or `undefined` when the answer was cut at a key that is not a
 * contender (a nested name) and the range must be read in full.
 * @throws ForeignKeyError when the blocker has no lease: it would never go away by itself.
 */
export function pick(
  ops: EtcdOps,
  spec: QueueSpec,
  res: RangeResponse,
  limited: boolean,
  ownKey: string,
): Blocker | null | undefined {
  const own = Buffer.from(ownKey);
  for (const raw of res.kvs) {
    const kv = ops.decode(raw);
    if (kv.bytes.equals(own) || !counts(spec, kv.bytes)) continue;
    if (kv.lease === '0') {
      throw new ForeignKeyError(`${kv.key}: a contender key without a lease: it would never expire and would block everyone behind it; delete it`, { key: kv.key });
    }
    return { key: kv.key, bytes: kv.bytes, createRevision: kv.createRevision };
  }
  if (limited && res.more) return undefined;
  return null;
}

/** The result of joining the queue. */
export interface Enqueued {
  /** Our key's create revision: our place in the queue and our fencing token. */
  ownRevision: bigint;
  /** Who we wait for, null when we are first, undefined when unknown yet. */
  blocker: Blocker | null | undefined;
  /** The revision the blocker was read at. */
  checkedAt: bigint;
  /** True when this call created our key (so it holds our value); false when it adopted one. */
  created: boolean;
}

/**
 * Joins the queue in one txn: put our key (if absent) bound to `lease`, and read the contender just
 * before it. Idempotent: our key is named by our lease, so a retry after an ambiguous outcome finds
 * the key it created and takes its create revision instead of creating a second one.
 */
export async function enqueue(
  ops: EtcdOps,
  spec: QueueSpec,
  ownKey: string,
  lease: string,
  value: Buffer,
  signal?: AbortSignal,
): Promise<Enqueued> {
  const key = ops.abs(ownKey);
  const res = await ops.txn(
    {
      compare: [{ key, target: 'create', result: 'equal', createRevision: 0n }],
      success: [rangeOp(blockerQuery(ops, spec, undefined, 1)), { put: { key, value, lease } }],
      failure: [rangeOp({ key })],
    },
    signal,
  );
  const revision = res.header.revision;
  if (res.succeeded) {
    const found = pick(ops, spec, res.responses[0]!.range!, true, ownKey);
    return { ownRevision: revision, blocker: found, checkedAt: revision, created: true };
  }
  const own = res.responses[0]?.range!.kvs[0];
  if (!own) throw new OwnKeyGone(`${ownKey} vanished during enqueue`);
  if (own.lease !== lease) throw notOurs(ownKey, own.lease, lease);
  return { ownRevision: own.createRevision, blocker: undefined, checkedAt: revision, created: false };
}

/**
 * A key at the name of our own key (`name/<our lease in hex>`) that is not bound to our lease: another
 * program wrote it. Adopting it would report "held" for a key that our lease does not keep (and that
 * would outlive it); deleting it would destroy someone else's data. Neither: refuse, naming it.
 */
export function notOurs(key: string, found: string, ours: string): ForeignKeyError {
  const bound = found === '0' ? 'no lease' : `lease ${BigInt(found).toString(16)}`;
  return new ForeignKeyError(`${key}: has our key's name but is bound to ${bound}, not to ours (${BigInt(ours).toString(16)}): another program wrote it; delete it`, { key });
}

/**
 * Reads our blocker in one txn guarded by our own key. Throws {@link OwnKeyGone} when our key no
 * longer exists with `ownRevision`.
 */
export async function findBlocker(
  ops: EtcdOps,
  spec: QueueSpec,
  ownKey: string,
  ownRevision: bigint,
  signal?: AbortSignal,
): Promise<{ blocker: Blocker | null; checkedAt: bigint }> {
  for (const limit of [1, 0]) {
    const res = await ops.readTxn(
      {
        compare: [guardCompare(ops.abs(ownKey), ownRevision)],
        success: [rangeOp(blockerQuery(ops, spec, ownRevision, limit))],
      },
      signal,
    );
    if (!res.succeeded) throw new OwnKeyGone(`${ownKey} is gone`);
    const found = pick(ops, spec, res.responses[0]!.range!, limit !== 0, ownKey);
    if (found !== undefined) return { blocker: found, checkedAt: res.header.revision };
  }
  throw new LeaseholdError('unreachable: an unlimited range is never cut');
}

/**
 * The same question as {@link findBlocker}, asked of the snapshot at `revision` (the revision of the
 * delete that woke us) with serializable reads: served by the member without a consensus round, and
 * exactly as sound — at that revision our key either existed and had nobody ahead, or not. Resolves
 * `undefined` when the member cannot answer for that revision (not applied yet, compacted, or a
 * nested name cut the answer), and the caller asks {@link findBlocker} instead.
 */
async function snapshotBlocker(
  ops: EtcdOps,
  spec: QueueSpec,
  ownKey: string,
  ownRevision: bigint,
  revision: bigint,
  signal: AbortSignal,
): Promise<{ blocker: Blocker | null; checkedAt: bigint } | undefined> {
  const blockers = blockerQuery(ops, spec, ownRevision, 1);
  blockers.revision = revision;
  blockers.serializable = true;
  try {
    const res = await ops.readTxn(
      {
        compare: [],
        success: [rangeOp({ key: ops.abs(ownKey), keysOnly: true, revision, serializable: true }), rangeOp(blockers)],
      },
      signal,
    );
    const own = res.responses[0]?.range!.kvs[0];
    if (!own || own.createRevision !== ownRevision) return undefined; // the caller's read decides
    const found = pick(ops, spec, res.responses[1]!.range!, true, ownKey);
    return found === undefined ? undefined : { blocker: found, checkedAt: revision };
  } catch (error) {
    if (signal.aborted) throw error;
    return undefined;
  }
}

/**
 * Waits until no contender is ahead of our key, watching only the one just ahead. Transient errors
 * are retried until `signal` aborts (it includes the session's, so a lease that cannot be kept alive
 * ends the wait with its loss). Resolves only after a read that saw our own key in place, with the
 * revision of that read.
 */
export async function waitTurn(
  ops: EtcdOps,
  spec: QueueSpec,
  ownKey: string,
  joined: Enqueued,
  signal: AbortSignal,
): Promise<bigint> {
  let blocker = joined.blocker;
  let checkedAt = joined.checkedAt;
  return waitLoop(signal, async () => {
    // Whatever this pass meets (a wake-up, a failure), the next one reads again unless told otherwise.
    let found = blocker;
    blocker = undefined;
    let at = checkedAt;
    if (found === undefined) ({ blocker: found, checkedAt: at } = await findBlocker(ops, spec, ownKey, joined.ownRevision, signal));
    if (found === null) return { done: at };
    const wake: Wake = {};
    const woke = await waitForDelete(ops, found, at, signal, wake);
    if (wake.deletedAt !== undefined) {
      const seen = await snapshotBlocker(ops, spec, ownKey, joined.ownRevision, wake.deletedAt, signal);
      if (seen) ({ blocker, checkedAt } = seen);
    }
    return woke ? 'woke' : 'broke'; // a broken watch: re-read after a pause
  });
}
