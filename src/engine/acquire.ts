/**
 * The acquire/abort/cleanup sequence every queued primitive shares: take the local turn (when the
 * primitive asks for one), join the queue, wait for our turn, and on any failure delete our key
 * (guarded by its create revision) before rejecting — bounded, so an unreachable etcd does not hold an
 * abort hostage (etcd issue 18082). It returns a grant; each primitive builds its own handle from it.
 */
import { NotHeldError } from '../errors.js';
import { linkSignals, raceSignal, within } from '../transport/abort.js';
import { isLeaseNotFound, isTransientError } from '../transport/retry.js';
import { cleanupWait, removeUntilGone } from './cleanup.js';
import { enqueue, findBlocker, OwnKeyGone, waitTurn, type Enqueued, type QueueSpec } from './queue.js';
import { deleteAllIfCreated } from './queue-all.js';
import { internals, type SessionLike } from './session-internals.js';
import { signalOption } from './validate.js';

export interface AcquireParams {
  session: SessionLike;
  /** Our key (relative to the namespace). */
  ownKey: string;
  /** Which keys can block us. */
  spec: QueueSpec;
  /** The value stored in our key. */
  value?: Buffer;
  /** What the caller's options were called, for error messages. */
  where: string;
  /**
   * Whether acquisitions of `ownKey` on one session take turns locally first: needed where the key is
   * named by the lease alone (`name/<leaseHex>`), so two acquisitions on one session would share it.
   * @default false
   */
  local?: boolean;
  /**
   * Called when we are first (our key verified in place); may wait further (a semaphore's head
   * waits for permits) and must throw to give up. Receives our create revision, and whether this
   * acquisition created its key (else it adopted one) with the revision our turn was verified at.
   */
  afterTurn?: (ownRevision: bigint, signal: AbortSignal, turn: Turn) => Promise<void>;
}

/** How a turn was won, for {@link AcquireParams.afterTurn}. */
export interface Turn {
  /** True when this acquisition created its key (so the key holds `params.value`). */
  created: boolean;
  /** The revision at which our key was verified first in line. */
  checkedAt: bigint;
}

/** What a won turn gives the primitive, to build its handle from. */
export interface Grant {
  /** Our key (relative to the namespace). */
  key: string;
  /** Its create revision: our place in the queue and the fencing token. */
  token: bigint;
  /** Passes the local turn on (a no-op unless `local`); the handle calls it once its key is gone. */
  leave: () => void;
}

const noop = (): void => undefined;

/** Options accepted by every blocking acquisition. */
export interface AcquireOptions {
  /** Aborting it stops waiting: our key is deleted and the call rejects with `signal.reason` unchanged. */
  signal?: AbortSignal;
}

/**
 * The error an acquisition rejects with: the caller's abort reason unchanged; else, once the session
 * has ended (lost or closed), the session's reason — it wins over the transport error that came with
 * the outage; else "our key is gone" becomes LeaseLostError (lease gone) or NotHeldError (someone
 * deleted it; the key the error names, else `ownKey`); anything else as it is.
 */
export async function explainFailure(session: SessionLike, ownKey: string, error: unknown, caller?: AbortSignal): Promise<unknown> {
  if (caller?.aborted) return caller.reason as unknown;
  if (!session.alive) return session.signal.reason as unknown;
  const s = internals(session);
  if (error instanceof OwnKeyGone) {
    if (!(await s.checkLease())) return session.signal.reason as unknown;
    const key = error.key ?? ownKey;
    return new NotHeldError(`${key} was deleted by someone else while waiting`, { key, cause: error });
  }
  if (isLeaseNotFound(error)) {
    s.lost(error);
    return session.signal.reason as unknown;
  }
  return error;
}

/**
 * Waits in line for `ownKey` and returns the grant once it is ours. Rejects with `signal.reason` on
 * abort, with the session's `LeaseLostError` when the lease is lost, never with a grant for a key
 * that is gone.
 */
export async function acquire(params: AcquireParams, options?: AcquireOptions): Promise<Grant> {
  const callerSignal = signalOption(options, params.where);
  return withCallSignal(params.session, callerSignal, async (signal) => acquireLinked(params, params.session, signal, callerSignal));
}

/**
 * Runs one acquisition's `fn` with a signal that aborts with the caller's or the session's, unhooked
 * from both when `fn` settles (so that long-lived signals gain nothing per call: see `linkSignals`).
 * Rejects at once when the caller has aborted or the session is gone.
 */
export async function withCallSignal<T>(session: SessionLike, callerSignal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  callerSignal?.throwIfAborted();
  if (!session.alive) throw session.signal.reason;
  const linked = linkSignals(callerSignal, session.signal);
  try {
    return await fn(linked.signal);
  } finally {
    linked.dispose();
  }
}

async function acquireLinked(params: AcquireParams, session: SessionLike, signal: AbortSignal, callerSignal: AbortSignal | undefined): Promise<Grant> {
  const { ownKey, spec } = params;
  const s = internals(session);
  const leave = params.local ? await s.local.enter(ownKey, signal) : noop;
  let joining: Promise<Enqueued> | undefined;
  try {
    joining = enqueue(s.ops, spec, ownKey, session.leaseId, params.value ?? Buffer.alloc(0), signal);
    // Rejects at once on abort; the enqueue itself goes on, and `abandon` cleans up after it.
    const joined = await raceSignal(joining, signal);
    const checkedAt = await waitTurn(s.ops, spec, ownKey, joined, signal);
    await params.afterTurn?.(joined.ownRevision, signal, { created: joined.created, checkedAt });
    signal.throwIfAborted();
    if (!session.alive) throw session.signal.reason;
    return { key: ownKey, token: joined.ownRevision, leave };
  } catch (error) {
    await giveUp(session, [ownKey], joining, leave, error);
    throw await explainFailure(session, ownKey, error, callerSignal);
  }
}

/**
 * Gives up an acquisition that failed with `error`: starts {@link abandon} and waits up to
 * `cleanupWait` for it — except when etcd is unreachable, which cannot take the delete now either:
 * then the caller hears at once and the cleanup goes on in the background.
 */
export async function giveUp(
  session: SessionLike,
  keys: readonly string[],
  joining: Promise<Joined> | undefined,
  leave: () => void,
  error: unknown,
): Promise<void> {
  const cleanup = abandon(session, keys, joining, leave);
  if (!isTransientError(error)) await within(cleanup, cleanupWait);
}

/** What an acquisition's join resolves with, as far as its cleanup cares: the create revision of its keys. */
interface Joined {
  ownRevision: bigint;
}

/**
 * Deletes the keys an abandoned acquisition may have created (guarded by their create revision, which
 * one join gave them all) until they are gone or the session ends — a key left behind on a live lease
 * would block everyone queued after it for as long as the session lives — then passes the local turn
 * on. Tracked by the session so `close()` waits for it.
 */
export function abandon(
  session: SessionLike,
  keys: readonly string[],
  joining: Promise<Joined> | undefined,
  leave: () => void,
): Promise<void> {
  const s = internals(session);
  const work = (async () => {
    try {
      if (!joining || session.signal.aborted) return;
      const created = await joining.then(
        (joined) => joined.ownRevision,
        () => undefined, // failed for good, or ambiguous: resolved below by reading our key
      );
      await removeUntilGone(session.signal, async (signal) => {
        let revision = created;
        if (revision === undefined) {
          // Our keys are named by our lease: if one exists with our lease, the ambiguous join created
          // it — and, one txn having written them all, every other key with the same revision.
          const kv = (await s.ops.range({ key: s.ops.abs(keys[0]!) }, signal)).kvs[0];
          if (!kv || kv.lease !== session.leaseId) return false;
          revision = kv.createRevision;
        }
        return deleteAllIfCreated(s.ops, keys, revision, signal);
      });
    } catch {
      // etcd refused for good: the key goes with the lease at the latest.
    } finally {
      leave();
    }
  })();
  s.track(work);
  return work;
}

/**
 * One non-blocking attempt: joins the queue and, if anyone is ahead, leaves it again at once.
 * Resolves with a grant, or null when the lock is taken (here or, with `local`, on this very Session).
 */
export async function tryAcquire(
  params: AcquireParams,
  isFree?: (ownRevision: bigint) => Promise<boolean>,
): Promise<Grant | null> {
  const { session, ownKey, spec } = params;
  const s = internals(session);
  if (!session.alive) throw session.signal.reason;
  const leave = params.local ? s.local.tryEnter(ownKey) : noop;
  if (!leave) return null;
  let joining: Promise<Enqueued> | undefined;
  try {
    joining = enqueue(s.ops, spec, ownKey, session.leaseId, params.value ?? Buffer.alloc(0), session.signal);
    const joined = await joining;
    let first = joined.blocker === null;
    if (joined.blocker === undefined) {
      first = (await findBlocker(s.ops, spec, ownKey, joined.ownRevision, session.signal)).blocker === null;
    }
    if (first && isFree) first = await isFree(joined.ownRevision);
    if (!first) {
      await abandon(session, [ownKey], joining, leave);
      return null;
    }
    if (!session.alive) throw session.signal.reason;
    return { key: ownKey, token: joined.ownRevision, leave };
  } catch (error) {
    await giveUp(session, [ownKey], joining, leave, error);
    throw await explainFailure(session, ownKey, error);
  }
}
