/**
 * The acquire sequence of a MultiLock: take this Session's local turn of every key (in one fixed
 * order), join every queue in one txn (`queue-all.ts`), wait for each name's turn with the same wait
 * every queued primitive uses (`waitTurn`: herd-free, re-checked, riding out outages), and report it
 * held only once one read has seen every key first and in place at one revision. On any failure every key is deleted (guarded by the
 * shared create revision) before rejecting, as `acquire.ts` does for one key.
 */
import { raceSignal } from '../transport/abort.js';
import { abandon, explainFailure, giveUp, withCallSignal, type AcquireOptions } from './acquire.js';
import type { EtcdOps } from '../transport/etcd.js';
import { OwnKeyGone, waitTurn } from './queue.js';
import { enqueueAll, findBlockers, type Entry, type JoinedAll } from './queue-all.js';
import { waitLoop } from './wait-loop.js';
import type { Blocker } from './watch.js';
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

/**
 * Waits until every key is first in its queue, as one read sees them all: the join's own, or a read
 * guarded by every key, which is then also the check that every key is still ours. While some name
 * has someone ahead, waits for its turn there with the wait every queued primitive uses, then reads
 * every queue again: once a key is first it stays first for as long as it exists. Runs in the
 * engine's wait loop, so a transient failure of those reads is a pause, not the end.
 */
async function waitAll(ops: EtcdOps, entries: readonly Entry[], joined: JoinedAll, signal: AbortSignal): Promise<void> {
  let known: (Blocker | null | undefined)[] | undefined = joined.joined.map((j) => j.blocker);
  let checkedAt = joined.joined[0]!.checkedAt;
  await waitLoop(signal, async () => {
    // Whatever this pass meets (a wake-up, a failure), the next one reads every queue again.
    let blockers = known;
    known = undefined;
    if (blockers === undefined) ({ blockers, checkedAt } = await findBlockers(ops, entries, joined.ownRevision, signal));
    const i = blockers.findIndex((b) => b !== null);
    if (i === -1) return { done: undefined };
    const blocker = blockers[i];
    if (blocker === undefined) return 'woke'; // not known yet (an adopted key): read every queue
    const entry = entries[i]!;
    await waitTurn(ops, entry.spec, entry.key, { ...joined.joined[i]!, blocker, checkedAt }, signal);
    return 'woke';
  });
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
  const callerSignal = signalOption(options, params.where);
  return withCallSignal(params.session, callerSignal, async (signal) => acquireAllLinked(params, signal, callerSignal));
}

async function acquireAllLinked(params: AcquireAllParams, signal: AbortSignal, callerSignal: AbortSignal | undefined): Promise<GrantAll> {
  const { session, entries } = params;
  const keys = entries.map((e) => e.key);
  const s = internals(session);
  const leave = await s.local.enterAll(keys, signal);
  let joining: Promise<JoinedAll> | undefined;
  try {
    joining = enqueueAll(s.ops, entries, session.leaseId, signal);
    // Rejects at once on abort; the join itself goes on, and `abandon` cleans up after it.
    const joined = await raceSignal(joining, signal);
    await waitAll(s.ops, entries, joined, signal);
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
    let blockers = joined.joined.map((j) => j.blocker);
    if (blockers.includes(undefined)) ({ blockers } = await findBlockers(s.ops, entries, joined.ownRevision, session.signal));
    if (blockers.some((b) => b !== null)) {
      await abandon(session, keys, joining, leave);
      return null;
    }
    if (!session.alive) throw session.signal.reason;
    return { keys, token: joined.ownRevision, leave };
  } catch (error) {
    await giveUp(session, keys, joining, leave, error);
    throw await explainFailure(session, keyOf(error, keys), error);
  }
}
