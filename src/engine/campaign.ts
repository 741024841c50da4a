/**
 * The election's protocol beyond the shared queue (etcd's `concurrency.Election` layout,
 * `${name}/${leaseHex}` with the campaign value as the key's value):
 *
 * - take office: a campaigner whose key predates the campaign (an adopted lease, as Go's `Campaign`
 *   also handles) writes this campaign's value into it once it leads, in one txn guarded by its create
 *   revision — a key the campaign created already holds its value, so it costs nothing then;
 * - proclaim: a new value, in one txn guarded by the term (Go's `Proclaim`);
 * - guard: while leading, one watch on our own key tells when leadership ends underneath us — the
 *   key deleted with the lease, or by someone else (an operator's `etcdctl del`).
 */
import { Backoff } from '../transport/backoff.js';
import { guardCompare, rangeOp, type EtcdOps } from '../transport/etcd.js';
import { OwnKeyGone } from './queue.js';
import type { SessionInternals } from './session-internals.js';
import { waitForDelete } from './watch.js';

/**
 * Makes our (adopted) key hold `value`, guarded by its create revision. Resolves with the revision the
 * key was verified at; throws {@link OwnKeyGone} when the key is no longer ours.
 */
export async function takeOffice(
  ops: EtcdOps,
  ownKey: string,
  ownRevision: bigint,
  value: Buffer,
  lease: string,
  signal: AbortSignal,
): Promise<bigint> {
  const key = ops.abs(ownKey);
  const res = await ops.txn(
    {
      compare: [guardCompare(key, ownRevision), { key, target: 'value', result: 'notEqual', value }],
      success: [{ put: { key, value, lease } }],
      failure: [rangeOp({ key })],
    },
    signal,
  );
  if (!res.succeeded) {
    const kv = res.responses[0]?.range!.kvs[0];
    if (!kv || kv.createRevision !== ownRevision) throw new OwnKeyGone(`${ownKey} is gone`);
  }
  return res.header.revision;
}

/** Puts `value` into our campaign key only while its create revision is `term`; false when it is not. */
export async function proclaimValue(
  ops: EtcdOps,
  ownKey: string,
  term: bigint,
  value: Buffer,
  lease: string,
  signal: AbortSignal,
): Promise<boolean> {
  const key = ops.abs(ownKey);
  const res = await ops.txn({ compare: [guardCompare(key, term)], success: [{ put: { key, value, lease } }] }, signal);
  return res.succeeded;
}

/**
 * Watches our own campaign key for as long as `signal` lets it (one watch, only while leading) and
 * resolves when leadership has ended: `'lost'` when the key went with the lease (the session is then
 * marked lost), `'deleted'` when someone else deleted it while the lease lives. Resolves `'stopped'`
 * when `signal` aborts first. Never rejects: broken watches and failed reads are retried.
 */
export async function guardLeadership(
  s: SessionInternals,
  ownKey: string,
  term: bigint,
  checkedAt: bigint,
  signal: AbortSignal,
): Promise<'lost' | 'deleted' | 'stopped'> {
  const own = { key: ownKey, bytes: Buffer.from(ownKey), createRevision: term };
  const backoff = new Backoff();
  while (!signal.aborted) {
    try {
      if (await waitForDelete(s.ops, own, checkedAt, signal)) {
        if (!(await s.checkLease())) return 'lost';
        // Deleted while the lease lives: confirm with a read before giving leadership up.
        const res = await s.ops.range({ key: s.ops.abs(ownKey) }, signal);
        const kv = res.kvs[0];
        if (!kv || kv.createRevision !== term) return 'deleted';
        checkedAt = res.header.revision;
        backoff.reset();
        continue;
      }
    } catch {
      // An abort (leadership over) or a failed read: the loop condition or the retry below decides.
    }
    if (signal.aborted) break;
    // The watch broke or a read failed: back off a little, then watch again after a re-read.
    checkedAt = 0n;
    await backoff.wait(signal).catch(() => undefined);
  }
  return 'stopped';
}
