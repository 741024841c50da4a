import type { ComparatorBuilder, IOperation, IRequestOp, ITxnResponse } from 'etcd3';
import { guardLeadership, proclaimValue } from './engine/campaign.js';
import { internals } from './engine/session-internals.js';
import { checkText, maxValueBytes, signalOption } from './engine/validate.js';
import type { Election, ElectionCallOptions } from './election.js';
import type { Session } from './session.js';
import { NotHeldError, NotLeaderError } from './errors.js';
import type { Held, LockHandle, ReleaseOutcome } from './handle.js';
import { linkSignals, raceSignal } from './transport/abort.js';
import { isLeaseNotFound } from './transport/retry.js';

/** A campaign or proclaimed value: well-formed text of at most 32 KiB of UTF-8 (see `maxValueBytes`). */
export function checkValue(value: unknown, where: string): string {
  return checkText(value, `\`value\` of ${where}`, maxValueBytes);
}

/**
 * Leading an election: the proof of it, and the way to give it up.
 *
 * `signal` aborts when leadership ends: on `resign()` (reason {@link NotLeaderError}), when the
 * session's lease is lost ({@link LeaseLostError}) or closed ({@link SessionClosedError}), or when
 * someone else deletes the campaign key (an operator's `etcdctl del`; {@link NotLeaderError}). Pass it
 * to the work done as leader. `term` is the key's create revision: larger for every later leader, so
 * it fences writes to etcd (see {@link commit}) and to stores that remember the highest term seen.
 */
export class Leadership implements Held {
  /** The election this leadership belongs to. */
  readonly election: Election;
  /** The campaign key in etcd (relative to the namespace), `${name}/${leaseHex}`. */
  readonly key: string;
  /** The term: the key's create revision, larger for every later leader. */
  readonly term: bigint;
  /** The same as {@link term}: the fencing token, as every {@link Held} has one. */
  readonly token: bigint;
  /** The lease the key is bound to (etcd's decimal string). */
  readonly leaseId: string;
  /** The Session the leadership was won on (on a SessionSource, the one current at the campaign). */
  readonly session: Session;

  readonly #handle: LockHandle;
  readonly #controller = new AbortController();
  readonly #onHandleEnd: () => void;
  #value: string;
  #resigning: Promise<ReleaseOutcome> | undefined;

  /** @internal Made by {@link Election.campaign}. */
  constructor(election: Election, handle: LockHandle, value: string, checkedAt: bigint) {
    this.election = election;
    this.key = handle.key;
    this.term = handle.token;
    this.token = handle.token;
    this.leaseId = handle.leaseId;
    this.session = handle.session;
    this.#handle = handle;
    this.#value = value;
    this.#onHandleEnd = () => this.#end(handle.signal.reason);
    if (handle.signal.aborted) this.#onHandleEnd();
    else handle.signal.addEventListener('abort', this.#onHandleEnd, { once: true });
    if (!this.#controller.signal.aborted) void this.#guard(checkedAt);
  }

  /** The value this leader campaigned with or last proclaimed. */
  get value(): string {
    return this.#value;
  }

  /**
   * Aborts when the leadership ends: resigned ({@link NotLeaderError}), lease lost
   * ({@link LeaseLostError}), session closed ({@link SessionClosedError}), or key deleted by someone
   * else ({@link NotLeaderError}).
   */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True while leading: not ended, and the session is within its validity deadline. */
  get isLeader(): boolean {
    return !this.#controller.signal.aborted && this.session.alive;
  }

  /** The same as {@link isLeader}, as every {@link Held} has it. */
  get held(): boolean {
    return this.isLeader;
  }

  /**
   * Publishes a new value for observers, in one txn guarded by the term (Go's `Proclaim`). Aborting
   * `options.signal` rejects with its reason (the write may or may not have happened); when the lease
   * is lost or the leadership has ended it rejects with {@link NotLeaderError}.
   * @throws TypeError when `value` is not a string.
   */
  async proclaim(value: string, options?: ElectionCallOptions): Promise<void> {
    checkValue(value, 'Leadership.proclaim');
    const signal = signalOption(options, 'Leadership.proclaim');
    signal?.throwIfAborted();
    this.#throwIfEnded();
    const s = internals(this.session);
    const linked = linkSignals(signal, this.#controller.signal);
    const applied = await raceSignal(proclaimValue(s.ops, this.key, this.term, Buffer.from(value), this.leaseId, linked.signal), signal)
      .catch((error: unknown) => {
        if (signal?.aborted) throw signal.reason;
        if (isLeaseNotFound(error)) s.lost(error);
        if (this.#controller.signal.aborted || !this.session.alive) this.#throwIfEnded();
        throw error;
      })
      .finally(() => linked.dispose());
    if (!applied) {
      const error = new NotLeaderError(`${this.key} (term ${this.term}) is no longer the leader`, { key: this.key });
      this.#end(error);
      throw error;
    }
    this.#value = value;
  }

  /**
   * A transaction builder that already compares `createRevision(key) == term`, so its `then` branch
   * runs only while this leadership lasts. Add `.and(...)`, `.then(...)`, `.else(...)`, then
   * `.commit()` and check `succeeded`. (Do not `await` the builder itself: it is a thenable.)
   */
  txn(): ComparatorBuilder {
    return this.#handle.txn();
  }

  /**
   * Applies `ops` (etcd3 builders such as `etcd.put(k).value(v)`, or raw request ops) in one txn only
   * while this leadership lasts. Resolves with the txn response.
   * @throws NotLeaderError when the leadership has ended (resigned, lease lost, key deleted).
   */
  async commit(...ops: (IRequestOp | IOperation)[]): Promise<ITxnResponse> {
    this.#throwIfEnded();
    try {
      return await this.#handle.commit(...ops);
    } catch (error) {
      if (!(error instanceof NotHeldError)) throw error;
      const ended = new NotLeaderError(`${this.key} (term ${this.term}) is no longer the leader`, {
        key: this.key,
        cause: error,
      });
      this.#end(ended);
      throw ended;
    }
  }

  /**
   * Gives leadership up: `signal` aborts, then the key is deleted in one txn guarded by the term, so
   * the next campaigner leads after one round trip, and a retried resign never deletes a newer key.
   * Idempotent. Never rejects for a transient cause: while etcd is unreachable it keeps trying until
   * the key is gone or the session ends (at most about one TTL). Resolves with how it ended, as
   * {@link LockHandle.release}: `'deleted'`, `'already-gone'` or `'lease-ended'`.
   */
  resign(): Promise<ReleaseOutcome> {
    this.#end(new NotLeaderError(`${this.key} (term ${this.term}) resigned`, { key: this.key }));
    this.#resigning ??= this.#handle.release();
    return this.#resigning;
  }

  /** The same as {@link resign}, as every {@link Held} has it. */
  release(): Promise<ReleaseOutcome> {
    return this.resign();
  }

  /** Calls {@link resign}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign();
  }

  #throwIfEnded(): void {
    if (this.#controller.signal.aborted) {
      const reason: unknown = this.#controller.signal.reason;
      if (reason instanceof NotLeaderError) throw reason;
      throw new NotLeaderError(`${this.key} (term ${this.term}) is no longer the leader`, {
        key: this.key, cause: reason });
    }
    if (!this.session.alive) {
      throw new NotLeaderError(`${this.key} (term ${this.term}) is no longer the leader`, {
        key: this.key,
        cause: this.session.signal.reason,
      });
    }
  }

  /**
   * Ends the leadership with `reason` (once) and releases the handle: a no-op delete when the key is
   * already gone, but it passes the local turn on to the next campaign of this name on this Session.
   */
  #end(reason: unknown): void {
    this.#handle.signal.removeEventListener('abort', this.#onHandleEnd);
    if (this.#controller.signal.aborted) return;
    this.#controller.abort(reason);
    if (!this.#resigning) {
      this.#resigning = this.#handle.release();
      // Only a final refusal rejects; whoever awaits resign() sees it.
      this.#resigning.catch(() => undefined);
    }
  }

  /**
   * Watches our own key for as long as we lead and ends the leadership when the key goes: with the
   * lease (the reason is the session's {@link LeaseLostError}) or deleted by someone else
   * ({@link NotLeaderError}).
   */
  async #guard(checkedAt: bigint): Promise<void> {
    const s = internals(this.session);
    const ended = await guardLeadership(s, this.key, this.term, checkedAt, this.#controller.signal);
    if (ended === 'lost') this.#end(this.session.signal.reason);
    else if (ended === 'deleted') this.#end(new NotLeaderError(`${this.key} (term ${this.term}) was deleted by someone else`, { key: this.key }));
  }
}
