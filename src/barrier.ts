import { acquireChannel, traced } from './diagnostics.js';
import { queuePrefix } from './engine/keys.js';
import { signalOption } from './engine/validate.js';
import { untilAbsent } from './engine/wait-loop.js';
import { LockHandle } from './handle.js';
import type { EtcdOps } from './transport/etcd.js';
import type { Session } from './session.js';
import type { SessionSource } from './session-source.js';
import { sessionsOf, type Sessions } from './sessions.js';

/** Options of {@link Barrier.wait}. */
export interface BarrierWaitOptions {
  /** Aborts the wait: it rejects with `signal.reason` unchanged. */
  signal?: AbortSignal;
}

const noop = (): void => undefined;

/**
 * A barrier on etcd: while it is up, {@link wait} blocks; once it is down, every waiter goes on.
 *
 * The barrier is the existence of one key, `name` itself — the layout of etcd's Go
 * `recipe.Barrier` (`Hold`, `Release`, `Wait`), so Go processes and this class see the same barrier.
 * {@link hold} raises it by creating the key bound to the session's lease, in one txn that succeeds
 * only if the key does not exist; the handle's `release()` lowers it again, and so does the end of the
 * session: a holder that dies lowers its barrier within its TTL (Go's recipe writes the key without a
 * lease, so a barrier a dead Go process raised stays up until {@link release} deletes it).
 * {@link wait} reads the key and, while it exists, watches it for deletion (a watch synced at birth,
 * with a re-read when the revision moved in between: a release between the read and the watch is
 * never missed — etcd PR 16223 fixed Go's version of that miss) — exactly the key, never a prefix
 * (etcd PR 16156: `a0` must not hold up the barrier `a`).
 *
 * @example
 * ```ts
 * const barrier = new Barrier(session, 'deploys/frozen');
 * const freeze = await barrier.hold(); // null if someone else already holds it
 * // … elsewhere, every worker: await barrier.wait({ signal: AbortSignal.timeout(60_000) });
 * await freeze?.release();
 * ```
 */
export class Barrier {
  /** The barrier's name: the key whose existence is the barrier. */
  readonly name: string;
  /**
   * What the barrier is raised on: a Session, or a SessionSource whose current Session each
   * {@link hold} takes (the handle's `session` is that one).
   */
  readonly session: Session | SessionSource;
  readonly #sessions: Sessions;
  readonly #ops: EtcdOps;

  /**
   * A Barrier named `name` on `session` (a Session or a SessionSource). Creating it talks to nobody.
   * @throws TypeError/RangeError when `session` is neither or `name` is not a valid name (as for a
   * Mutex).
   */
  constructor(session: Session | SessionSource, name: string) {
    this.#sessions = sessionsOf(session, 'Barrier');
    this.#ops = this.#sessions.ops;
    queuePrefix(name, 'Barrier');
    this.name = name;
    this.session = session;
  }

  /**
   * Raises the barrier, without waiting: creates the key bound to this session's lease. Resolves with
   * a handle (its `release()` lowers the barrier, its `signal` aborts when the session ends), or with
   * `null` when the barrier is already up — raised by anyone, this session included.
   * @throws LeaseLostError/SessionClosedError when the session has ended. On a SessionSource without a
   * live Session it waits for the grant under way (rejecting with its error if it fails).
   */
  async hold(): Promise<LockHandle | null> {
    const session = await this.#sessions.attempt();
    if (!session.alive) throw session.signal.reason;
    // Traced as a `try…` acquisition, so that a raised barrier counts as held until its release.
    const context = () => ({ primitive: 'barrier', name: this.name, lease: session.leaseHex, blocking: false }) as const;
    return traced(acquireChannel, context, undefined, async () => {
      const key = this.#ops.abs(this.name);
      const res = await this.#ops.txn(
        {
          compare: [{ key, target: 'create', result: 'equal', createRevision: 0n }],
          success: [{ put: { key, value: Buffer.alloc(0), lease: session.leaseId } }],
        },
        session.signal,
      );
      if (!res.succeeded) return null;
      const meta = { primitive: 'barrier', name: this.name } as const;
      return new LockHandle({ session: session, key: this.name, token: res.header.revision, leave: noop, meta });
    }, (h) => h?.token);
  }

  /**
   * Lowers the barrier whoever raised it (Go's `Barrier.Release`): deletes the key. Resolves `true`
   * when there was one to delete.
   */
  async release(): Promise<boolean> {
    const res = await this.#ops.txn({ compare: [], success: [{ deleteRange: { key: this.#ops.abs(this.name) } }] });
    return Number(res.responses[0]?.deleteRange!.deleted ?? 0) > 0;
  }

  /**
   * Waits until the barrier is down (its key does not exist); resolves at once when it is. The
   * session's lease plays no part, and an etcd outage only delays it (the wait goes on once etcd is
   * back, as a lock waiter's does). Aborting `options.signal` rejects with its reason.
   */
  async wait(options?: BarrierWaitOptions): Promise<void> {
    const signal = signalOption(options, 'Barrier.wait') ?? new AbortController().signal;
    signal.throwIfAborted();
    await untilAbsent(this.#ops, this.name, signal);
  }
}
