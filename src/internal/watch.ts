/**
 * Waiting for one key to go away, with a watch that is synced at birth.
 *
 * etcd serves a watch created at an old start revision from its "unsynced" set, caught up only every
 * 100 ms; Go's `waitDeletes` starts its watch at the read's revision and so pays up to 100 ms per
 * handoff. Here the watch starts at "now" (start revision 0, synced at once). Anything that happened
 * between our read (at `checkedAt`) and the watch's creation is covered by comparing the creation
 * revision with `checkedAt` and, when they differ, re-reading the key once.
 */
import type { IWatchResponse } from 'etcd3';
import type { EtcdOps } from './etcd.js';
import { closeStream } from './streams.js';

/** The key to wait for and the create revision it had when we read it. */
export interface Blocker {
  key: string;
  createRevision: bigint;
}

/**
 * Resolves once `blocker` may be gone: `true` when it was deleted or no longer has the create
 * revision we saw, `false` when the watch broke or was compacted. The caller re-reads in every case
 * (a wake-up is a hint, never a verdict). Rejects with `signal.reason` when `signal` aborts.
 */
export async function waitForDelete(
  ops: EtcdOps,
  blocker: Blocker,
  checkedAt: bigint,
  signal: AbortSignal,
): Promise<boolean> {
  signal.throwIfAborted();
  const absKey = ops.abs(blocker.key);
  const stream = await ops.ns.watchClient.watch();
  let done = false;
  let recheck: NodeJS.Timeout | undefined;
  try {
    return await new Promise<boolean>((resolve, reject) => {
      const finish = (woke: boolean, error?: unknown): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', onAbort);
        if (error === undefined) resolve(woke);
        else reject(error);
      };
      const onAbort = (): void => finish(false, signal.reason ?? new Error('aborted'));
      // A quiet watch may be a dead one (a paused or partitioned member never answers): re-read the
      // blocker now and then through a unary call with a deadline, which can reach another member.
      const stillThere = (): void => {
        ops.range({ key: absKey, keys_only: true }, signal).then(
          (r) => {
            const kv = r.kvs[0];
            if (!kv || BigInt(kv.create_revision) !== blocker.createRevision) finish(true);
            else if (!done) recheck = setTimeout(stillThere, ops.recheckMs);
          },
          () => finish(false),
        );
      };
      recheck = setTimeout(stillThere, ops.recheckMs);
      signal.addEventListener('abort', onAbort, { once: true });
      stream.on('error', () => finish(false));
      stream.on('end', () => finish(false));
      stream.on('data', (res: IWatchResponse) => {
        if (res.canceled) {
          finish(false); // compacted or refused: the caller re-reads
          return;
        }
        if (res.created) {
          if (BigInt(res.header.revision) !== checkedAt) {
            // Something changed since our read: make sure the blocker did not leave in between.
            ops.range({ key: absKey }, signal).then(
              (r) => {
                const kv = r.kvs[0];
                if (!kv || BigInt(kv.create_revision) !== blocker.createRevision) finish(true);
              },
              () => finish(false),
            );
          }
          return;
        }
        for (const event of res.events) {
          if (event.type === 'Delete' || BigInt(event.kv.create_revision) !== blocker.createRevision) {
            finish(true);
            return;
          }
        }
      });
      stream.write({ create_request: { key: absKey, start_revision: 0, filters: ['Noput'] } });
    });
  } finally {
    done = true;
    clearTimeout(recheck);
    closeStream(stream);
  }
}
