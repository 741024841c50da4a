/**
 * Deleting a key we own until it is gone: the one routine behind `release()`, `resign()`, an aborted
 * acquisition's cleanup and a semaphore's undo. A transient failure (etcd unreachable, a starved
 * process whose calls time out, `etcd3`'s breaker open) is never the end: it tries again with
 * backoff until the key is deleted or the session ends — and when the session ends, the lease ends
 * with it (revoked by `close()`, or expiring on the server after a loss), so the key goes anyway.
 * That bounds the wait by the session's validity: at most one TTL after etcd stops answering.
 * Only a final refusal (for example a permission error) rejects.
 */
import { within } from '../transport/abort.js';
import { Backoff } from '../transport/backoff.js';
import { isTransientError } from '../transport/retry.js';
import { internals, type SessionLike } from './session-internals.js';

/**
 * How a release ended: `'deleted'` by this call; `'already-gone'` when the key was found gone
 * (deleted by someone else, expired with its lease, or deleted by an earlier attempt of this call
 * whose answer was lost in an outage); `'lease-ended'` when the session ended first (lost or closed),
 * so that the key goes with its lease.
 */
export type ReleaseOutcome = 'deleted' | 'already-gone' | 'lease-ended';


/**
 * Runs `attempt` (a guarded delete that resolves true when it deleted, false when the key was already
 * gone) until it settles the matter or `session` ends; see the file comment.
 */
export async function removeUntilGone(
  session: AbortSignal,
  attempt: (signal: AbortSignal) => Promise<boolean>,
): Promise<ReleaseOutcome> {
  const backoff = new Backoff();
  for (;;) {
    if (session.aborted) return 'lease-ended';
    try {
      return (await attempt(session)) ? 'deleted' : 'already-gone';
    } catch (error) {
      if (session.aborted) return 'lease-ended';
      if (!isTransientError(error)) throw error;
    }
    await backoff.wait(session).catch(() => undefined);
  }
}

/** How long a failed or aborted acquisition waits for its key's deletion before rejecting anyway. */
export const cleanupWait = 2000;

/**
 * Undoes what a failed or aborted acquisition wrote: runs {@link removeUntilGone} in the background,
 * tracked by the session (so `close()` waits for it), and waits for it at most {@link cleanupWait}.
 * Never rejects.
 */
export async function removeBounded(session: SessionLike, attempt: (signal: AbortSignal) => Promise<boolean>): Promise<void> {
  const work = removeUntilGone(session.signal, attempt);
  internals(session).track(work);
  await within(work, cleanupWait);
}
