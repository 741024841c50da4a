/**
 * The acquire sequence of a MultiLock: take this Session's local turn of every key (in one fixed
 * order), join every queue in one txn (`queue-all.ts`), wait for each name's turn with the same wait
 * every queued primitive uses (`waitTurn`: herd-free, re-checked, riding out outages), then check every
 * key at one revision before reporting it held. On any failure every key is deleted (guarded by the
 * shared create revision) before rejecting, as `acquire.ts` does for one key.
 */
import { anySignal, raceSignal } from '../transport/abort.js';
import { abandon, explainFailure, giveUp, type AcquireOptions } from './acquire.js';
import { findBlocker, OwnKeyGone, waitTurn } from './queue.js';
import { enqueueAll, verifyAll, type Entry, type JoinedAll } from './queue-all.js';
import { internals, type SessionLike } from './session-internals.js';
import { signalOption } from './validate.js';

export interface AcquireAllParams {
  session: SessionLike;
  /** One entry per name: our key and its queue. The first key is the one errors name by default. */
  entries: readonly Entry[];
  /** What the caller's options were called, for error messages. */
  where: string;
}

/** What a won multi-acquisition gives the primitive, to build its handle from. */
export interface GrantAll {
  /** Our keys, in the order of the entries. */
  keys: string[];
  /** Their shared create revision: the fencing token. */
  token: bigint;
  /** Passes every local turn on; the handle calls it once its keys are gone. */
  leave: () => void;
}

/** The key an error names: the one found gone, else the first. */
function keyOf(error: unknown, keys: readonly string[]): string {
  return (error instanceof OwnKeyGone ? error.key : undefined) ?? keys[0]!;
}

/**
 * Waits until every key is first in its queue and returns the grant. Rejects with `signal.reason` on
 * abort, with the session's `LeaseLostError` when the lease is lost, with `NotHeldError` when someone
 * else deleted one of our keys — never with a grant while any key is gone.
 */
export async function acquireAll(params: AcquireAllParams, options?: AcquireOptions): Promise<GrantAll> {
  const { session, entries } = params;
  const keys = entries.map((e) => e.key);
  const callerSignal = signalOption(options, params.where);
  callerSignal?.throwIfAborted();
  const s = internals(session);
  if (!session.alive) throw session.signal.reason;
  const signal = anySignal(callerSignal, session.signal);
  const leave = await s.local.enterAll(keys, signal);
  let joining: Promise<JoinedAll> | undefined;
  try {
    joining = enqueueAll(s.ops, entries, session.leaseId, signal);
    // Rejects at once on abort; the join itself goes on, and `abandon` cleans up after it.
    const joined = await raceSignal(joining, signal);
    let waited = false;
    for (const [i, entry] of entries.entries()) {
      const turn = joined.joined[i]!;
      if (turn.blocker === null) continue; // first in this queue at the join's revision: stays first
      waited = true;
      await waitTurn(s.ops, entry.spec, entry.key, turn, signal);
    }
    // Each wait checked its own key; a key checked earlier may have gone since. One read checks all.
    if (waited) await verifyAll(s.ops, keys, joined.ownRevision, signal);
    signal.throwIfAborted();
    if (!session.alive) throw session.signal.reason;
    return { keys, token: joined.ownRevision, leave };
  } catch (error) {
    await giveUp(session, keys, joining, leave, error);
    throw await explainFailure(session, keyOf(error, keys), error, callerSignal);
  }
}

/**
 * One non-blocking attempt: joins every queue and, if anyone is ahead in any of them, leaves them all
 * again at once. Resolves with a grant, or null when a name is taken (here, or by another acquisition
 * of one of the keys on this very Session).
 */
export async function tryAcquireAll(params: AcquireAllParams): Promise<GrantAll | null> {
  const { session, entries } = params;
  const keys = entries.map((e) => e.key);
  const s = internals(session);
  if (!session.alive) throw session.signal.reason;
  const leave = s.local.tryEnterAll(keys);
  if (!leave) return null;
  let joining: Promise<JoinedAll> | undefined;
  try {
    joining = enqueueAll(s.ops, entries, session.leaseId, session.signal);
    const joined = await joining;
    let read = false;
    for (const [i, entry] of entries.entries()) {
      let blocker = joined.joined[i]!.blocker;
      if (blocker === undefined) {
        read = true;
        ({ blocker } = await findBlocker(s.ops, entry.spec, entry.key, joined.ownRevision, session.signal));
      }
      if (blocker !== null) {
        await abandon(session, keys, joining, leave);
        return null;
      }
    }
    if (read) await verifyAll(s.ops, keys, joined.ownRevision, session.signal);
    if (!session.alive) throw session.signal.reason;
    return { keys, token: joined.ownRevision, leave };
  } catch (error) {
    await giveUp(session, keys, joining, leave, error);
    throw await explainFailure(session, keyOf(error, keys), error);
  }
}
