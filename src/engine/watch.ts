/**
 * Waiting for keys to go away, with watches that are synced at birth.
 *
 * etcd serves a watch created at an old start revision from its "unsynced" set, caught up only every
 * 100 ms; Go's `waitDeletes` starts its watch at the read's revision and so pays up to 100 ms per
 * handoff. Here the watch starts at "now" (start revision 0, synced at once). Anything that happened
 * between our read (at `checkedAt`) and the watch's creation is covered by comparing the creation
 * revision with `checkedAt` and, when they differ, re-reading the key once.
 */
import type { EtcdOps } from '../transport/etcd.js';
import { suspect, watch } from '../transport/watch-hub.js';

/** The key to wait for and the create revision it had when we read it. */
export interface Blocker {
  /** The key as text, for messages. */
  key: string;
  /** The key's bytes (relative to the namespace): what is watched and read. */
  bytes: Buffer;
  createRevision: bigint;
}

/**
 * Resolves once `blocker` may be gone: `true` when it was deleted or no longer has the create
 * revision we saw, `false` when the watch broke or was compacted. The caller re-reads in every case
 * (a wake-up is a hint, never a verdict). Rejects with `signal.reason` when `signal` aborts.
 */
export function waitForDelete(
  ops: EtcdOps,
  blocker: Blocker,
  checkedAt: bigint,
  signal: AbortSignal,
  wake?: Wake,
): Promise<boolean> {
  const key = ops.abs(blocker.bytes);
  const gone = async (): Promise<boolean> => {
    const kv = (await ops.range({ key, keysOnly: true }, signal)).kvs[0];
    return !kv || kv.createRevision !== blocker.createRevision;
  };
  return waitForDeletes(ops, [{ key }], checkedAt, gone, signal, wake);
}

/** Filled in by a wait that ended on a delete event: the revision of that delete. */
export interface Wake {
  deletedAt?: bigint;
}

/**
 * Resolves once a key in one of `ranges` may have been deleted since `checkedAt`: `true` on a delete
 * event (or when `changed` says a re-read found one), `false` when the watch broke or was cancelled.
 * The watches start at "now" so etcd syncs them at birth (no 100 ms catch-up);
 * the gap between our read and their creation is covered by calling `changed` when the creation
 * revision is not `checkedAt`, and a watch stuck on a silent member by calling it every
 * `ops.recheckMs`. Rejects with `signal.reason` on abort. When it ends on a delete event, `wake`
 * gets the revision of that delete.
 */
export function waitForDeletes(
  ops: EtcdOps,
  ranges: { key: Buffer; rangeEnd?: Buffer }[],
  checkedAt: bigint,
  changed: () => Promise<boolean>,
  signal: AbortSignal,
  wake?: Wake,
): Promise<boolean> {
  return waitForEvent(ops, ranges, 'delete', checkedAt, changed, signal, wake);
}

/**
 * As {@link waitForDeletes}, for a put: resolves `true` once a key in `ranges` may have been written
 * (created or updated) since `checkedAt` (a double barrier's `ready` key).
 */
export function waitForPut(
  ops: EtcdOps,
  ranges: { key: Buffer; rangeEnd?: Buffer }[],
  checkedAt: bigint,
  changed: () => Promise<boolean>,
  signal: AbortSignal,
): Promise<boolean> {
  return waitForEvent(ops, ranges, 'put', checkedAt, changed, signal);
}

function waitForEvent(
  ops: EtcdOps,
  ranges: { key: Buffer; rangeEnd?: Buffer }[],
  type: 'delete' | 'put',
  checkedAt: bigint,
  changed: () => Promise<boolean>,
  signal: AbortSignal,
  wake?: Wake,
): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as unknown);
      return;
    }
    let done = false;
    let created = 0;
    let newest = checkedAt;
    let recheck: NodeJS.Timeout | undefined;
    const cancels: (() => void)[] = [];
    const finish = (woke: boolean, error?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(recheck);
      signal.removeEventListener('abort', onAbort);
      for (const cancel of cancels) cancel();
      if (error === undefined) resolve(woke);
      else reject(error);
    };
    const onAbort = (): void => finish(false, signal.reason);
    // A quiet watch may be a dead one (a paused or partitioned member never answers): re-check
    // through a unary call with a deadline, which can reach another member, now and then.
    const stillSame = (): void => {
      changed().then((yes) => {
        if (yes) {
          // The change happened and our watch said nothing: its stream may be stuck on a silent member.
          suspect(ops.transport);
          finish(true);
        } else if (!done) recheck = setTimeout(stillSame, ops.recheckMs);
      }, () => finish(false));
    };
    recheck = setTimeout(stillSame, ops.recheckMs);
    signal.addEventListener('abort', onAbort, { once: true });
    for (const range of ranges) {
      cancels.push(
        watch(ops.transport, { ...range, filters: [type === 'delete' ? 'noPut' : 'noDelete'] }, {
          created: (revision) => {
            if (revision > newest) newest = revision;
            if (++created === ranges.length && newest !== checkedAt) {
              changed().then(
                (yes) => {
                  if (yes) finish(true);
                },
                () => finish(true),
              );
            }
          },
          events: (res) => {
            const event = res.events.find((e) => e.type === type);
            if (!event) return;
            if (wake) wake.deletedAt = event.kv.modRevision;
            finish(true);
          },
          broken: () => finish(false),
        }),
      );
    }
  });
}
