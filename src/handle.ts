import type { ComparatorBuilder, IOperation, IRequestOp, ITxnResponse } from 'etcd3';
import { isSessionClosedError, NotHeldError } from './errors.js';
import { removeUntilGone, type ReleaseOutcome } from './engine/cleanup.js';
import { deleteAllIfCreated } from './engine/queue-all.js';
import { guardCompare } from './transport/etcd.js';
import { toEtcd3TxnResponse } from './transport/etcd3/convert.js';
import { toRequestOps } from './transport/etcd3/request-op.js';
import { Holding, type PrimitiveKind } from './diagnostics.js';
import type { Grant } from './engine/acquire.js';
import { internals } from './engine/session-internals.js';
import type { Session } from './session.js';

export type { ReleaseOutcome } from './engine/cleanup.js';

/**
 * Something held on a Session — a lock, permits, a leadership — with the same shape whatever the
 * primitive: the proof of holding it (`key`, `token`, `held`, `signal`), writes guarded by it
 * (`txn`, `commit`), and the way to give it back (`release`, `await using`). Implemented by
 * {@link LockHandle}, {@link PermitHandle} and {@link Leadership}.
 */
export interface Held extends AsyncDisposable {
  /**
   * The key whose existence is the holding (relative to the session's namespace). A MultiLock's
   * holding is several keys: this is the first, and `txn()`/`commit()` are guarded on all of them.
   */
  readonly key: string;
  /** The key's create revision: the fencing token, larger for every later holder. */
  readonly token: bigint;
  /** Aborts when the holding ends (released, lease lost, taken over), with the reason. */
  readonly signal: AbortSignal;
  /** True while held: not ended, and the session within its validity deadline. */
  readonly held: boolean;
  /** An etcd3 txn builder already guarded by `createRevision(key) == token` (for every key held). */
  txn(): ComparatorBuilder;
  /** Applies etcd writes in one txn only while held. */
  commit(...ops: (IRequestOp | IOperation)[]): Promise<ITxnResponse>;
  /** Gives it back (idempotent); resolves with how it ended. */
  release(): Promise<ReleaseOutcome>;
}

/** What a handle needs to exist: a grant from the engine and the session; built by the primitives. */
export interface HandleInit extends Grant {
  session: Session;
  /** Which primitive and name it belongs to, for the live state and the `leasehold:release` channel. */
  meta: { primitive: PrimitiveKind; name: string };
  /**
   * More keys held under the same token, each of its own name (a MultiLock's other names): `txn()`
   * and `commit()` are guarded on every key, `release()` deletes them all, and each name is a holding
   * of its own in the live state and on `leasehold:release`.
   */
  others?: readonly { name: string; key: string }[];
}

/**
 * A held lock (or permit): the proof of holding it and the way to give it back.
 *
 * `signal` aborts when the handle is released or the session's lease is lost; after that, `held` is
 * false and writes through {@link commit} fail. The `token` is the key's create revision: it only
 * grows from one holder to the next, so storage outside etcd can fence writes with it.
 *
 * @example
 * ```ts
 * await using lock = await mutex.lock();
 * await lock.commit(etcd.put('reports/last-run').value(new Date().toISOString()));
 * ```
 */
export class LockHandle implements Held {
  /** The lock's key in etcd (relative to the session's namespace), e.g. `jobs/nightly/694d7a1c0b3e4a21`. */
  readonly key: string;
  /** The fencing token: the key's create revision, larger for every later holder. */
  readonly token: bigint;
  /** The lease the lock is bound to (etcd's decimal string). */
  readonly leaseId: string;
  /** The session the lock was taken on. */
  readonly session: Session;

  /**
   * Made when {@link signal} is first read (most holdings are released without anyone reading it: an
   * AbortController and an error per lock were a measurable share of an acquisition's CPU).
   */
  #controller: AbortController | undefined;
  /** How the holding ended: the session's reason, or released (the NotHeldError is made when asked for). */
  #ended: { reason: unknown } | 'released' | undefined;
  readonly #leave: () => void;
  readonly #unfollow: () => void;
  /** Every key held under the token: `key`, then the `others` of a MultiLock. */
  readonly #keys: readonly string[];
  readonly #holdings: readonly Holding[];
  #releasing: Promise<ReleaseOutcome> | undefined;

  /** @internal Handles are made by `Mutex`, `ReadWriteLock` and `Semaphore` from a grant. */
  constructor(init: HandleInit) {
    this.key = init.key;
    this.token = init.token;
    this.session = init.session;
    this.leaseId = init.session.leaseId;
    this.#leave = init.leave;
    const held = [{ name: init.meta.name, key: init.key }, ...(init.others ?? [])];
    this.#keys = held.map((h) => h.key);
    // Before following the session: an ended session calls back at once, ending the holding too.
    this.#holdings = held.map((h) => new Holding(init.meta.primitive, h.name, h.key, this.token, init.session.leaseHex));
    this.#unfollow = internals(init.session).onEnd((reason) => {
      if (this.#ended !== undefined) return;
      for (const holding of this.#holdings) holding.end(isSessionClosedError(reason) ? 'closed' : 'lost');
      this.#ended = { reason };
      this.#controller?.abort(reason);
    });
  }

  /**
   * Aborts when the lock stops being held: on `release()` (reason: {@link NotHeldError}) or when the
   * session's lease is lost (reason: {@link LeaseLostError}). Pass it to the work done under the lock.
   */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#ended !== undefined) this.#controller.abort(this.#endReason());
    }
    return this.#controller.signal;
  }

  /** The reason `signal` aborts with once the holding has ended. */
  #endReason(): unknown {
    const ended = this.#ended;
    return ended === 'released' || ended === undefined ? new NotHeldError(`${this.#what()} was released`, { key: this.key }) : ended.reason;
  }

  /** True while the lock is held: not released, and the session is within its validity deadline. */
  get held(): boolean {
    return this.#ended === undefined && this.session.alive;
  }

  /**
   * A transaction builder that already compares `createRevision(key) == token` (for every key of a
   * MultiLock), so its `then` branch runs only while this lock is held, and the session's `requestTimeout` as its deadline. Add your own
   * `.and(...)`, `.then(...)`, `.else(...)`, then `.commit()` and check `succeeded`. (Do not `await`
   * the builder itself: it is a thenable.) The builder is etcd3's: its `commit()` goes through the
   * etcd3 client, once, whatever the session's `transport`; {@link commit} goes through leasehold's.
   */
  txn(): ComparatorBuilder {
    const token = this.token.toString();
    let guarded = this.session.client.if(this.key, 'Create', '==', token);
    for (const key of this.#keys.slice(1)) guarded = guarded.and(key, 'Create', '==', token);
    return guarded.options({ deadline: Date.now() + internals(this.session).ops.requestTimeout });
  }

  /**
   * Applies `ops` (etcd3 builders such as `etcd.put(k).value(v)`, or raw request ops) in one txn only
   * if this lock is still held. Resolves with the txn response (in etcd3's shape; `cluster_id` is
   * `'0'`). The txn goes through the session's transport once, bounded by the session's
   * `requestTimeout`, and is never retried: leasehold cannot know whether your ops are safe to apply
   * twice. On a transient failure, decide yourself whether to call `commit` again.
   * @throws NotHeldError when the lock is no longer held (released, lease lost, key deleted).
   * @throws EtcdUnavailableError when etcd could not be reached: the outcome is then unknown (the
   * txn may have been applied, while the lock was held).
   */
  async commit(...ops: (IRequestOp | IOperation)[]): Promise<ITxnResponse> {
    if (this.#ended !== undefined) {
      throw new NotHeldError(`${this.#what()} is no longer held`, {
        key: this.key,
        cause: this.signal.reason,
      });
    }
    const calls = internals(this.session).ops;
    const success = await toRequestOps(ops);
    const res = await calls.txnOnce({ compare: this.#keys.map((key) => guardCompare(calls.abs(key), this.token)), success });
    if (!res.succeeded) throw new NotHeldError(`${this.#what()} is no longer held`, { key: this.key });
    return toEtcd3TxnResponse(res);
  }

  /** `lock <key> (token T)`, or `locks <key>, <key> (token T)`, for messages. */
  #what(): string {
    return `${this.#keys.length === 1 ? 'lock' : 'locks'} ${this.#keys.join(', ')} (token ${this.token})`;
  }

  /**
   * Gives the lock back: `signal` aborts at once, then the key is deleted (a MultiLock's keys in one
   * txn), guarded by its create revision, so a retried release can never delete a newer holder's key
   * (etcd issue 22082).
   * Idempotent. Never rejects for a transient cause: while etcd is unreachable it keeps trying until
   * the key is gone or the session ends (its lease then takes the key with it) — at most about one
   * TTL. Resolves with how it ended: `'deleted'`, `'already-gone'` or `'lease-ended'`.
   * @throws a leasehold error only when etcd refuses the delete for good (for example, permission denied).
   */
  release(): Promise<ReleaseOutcome> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  /** Calls {@link release}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  /** Stops holding locally: `signal` aborts with {@link NotHeldError}, the session is not followed. */
  #end(): void {
    this.#unfollow();
    if (this.#ended === undefined) {
      for (const holding of this.#holdings) holding.end('released');
      this.#ended = 'released';
      this.#controller?.abort(this.#endReason());
    }
  }

  async #release(): Promise<ReleaseOutcome> {
    this.#end();
    const ops = internals(this.session).ops;
    try {
      // The next local acquisition of this name waits (in `leave`) until the key is really gone, so it
      // can never adopt the stale key.
      return await removeUntilGone(this.session.signal, (signal) => deleteAllIfCreated(ops, this.#keys, this.token, signal));
    } finally {
      this.#leave();
    }
  }
}
