import type { ComparatorBuilder, IOperation, IRequestOp, ITxnResponse } from 'etcd3';
import { NoLeaderError, NotHeldError, NotLeaderError } from './errors.js';
import type { LockHandle, ReleaseOutcome } from './handle.js';
import { anySignal, raceSignal, sleep } from './internal/abort.js';
import { checkOptions, checkSignal, checkText, maxValueBytes } from './internal/validate.js';
import { acquire, type AcquireOptions } from './internal/acquire.js';
import { guardCompare, rangeOp, type EtcdOps } from './internal/etcd.js';
import { isDirectChild, queuePrefix } from './internal/keys.js';
import { followLeader, type LeaderState } from './internal/observe.js';
import { OwnKeyGone } from './internal/queue.js';
import { isLeaseNotFound } from './internal/retry.js';
import { internals } from './internal/session-internals.js';
import { waitForDelete } from './internal/watch.js';
import type { Session } from './session.js';

export type { LeaderState } from './internal/observe.js';

/** Options of {@link Election.campaign}. */
export type CampaignOptions = AcquireOptions;

/** Options of {@link Election.leader}, {@link Election.observe} and {@link Leadership.proclaim}. */
export interface ElectionCallOptions {
  /** Aborts the call: `leader()` and `proclaim()` reject with `signal.reason`; `observe()` ends. */
  signal?: AbortSignal;
}

/** A campaign or proclaimed value: well-formed text of at most 32 KiB of UTF-8 (see `maxValueBytes`). */
function checkValue(value: unknown, where: string): string {
  return checkText(value, `\`value\` of ${where}`, maxValueBytes);
}

/**
 * Leader election on etcd, FIFO and herd-free, interoperable with Go's `concurrency.Election` and
 * `etcdctl elect`.
 *
 * Each campaign writes `${name}/${leaseHex}` bound to the session's lease, with the campaign value as
 * its value; the contender with the smallest create revision leads, and that revision is its term
 * (a fencing token). Campaigners queue by create revision and each watches only the key just ahead of
 * it, so a resignation wakes exactly one campaigner. Names do not nest: `scheduler` ignores
 * `scheduler/eu/…`. Two campaigns for one name on one Session do not share a key: the second waits
 * (locally, in FIFO order) until the first leadership has ended, as with {@link Mutex}.
 *
 * @example
 * ```ts
 * const election = new Election(session, 'scheduler');
 * await using leadership = await election.campaign('pod-a', { signal: AbortSignal.timeout(60_000) });
 * await schedule({ signal: leadership.signal, term: leadership.term });
 * ```
 */
export class Election {
  /** The election's name: its keys are `${name}/${leaseHex}`. */
  readonly name: string;
  /** The session whose lease campaign keys are bound to. */
  readonly session: Session;
  readonly #prefix: string;
  readonly #ownKey: string;
  readonly #ops: EtcdOps;

  /**
   * An Election named `name` on `session`. Creating it talks to nobody.
   * @throws TypeError when `name` is empty, not a string, or ends with "/".
   */
  constructor(session: Session, name: string) {
    this.#ops = internals(session, 'Election').ops;
    this.#prefix = queuePrefix(name, 'Election');
    this.name = name;
    this.session = session;
    this.#ownKey = `${this.#prefix}${session.leaseHex}`;
  }

  /**
   * Waits until this session leads the election, in FIFO order, and returns the {@link Leadership}.
   * Aborting `options.signal` deletes our campaign key and rejects with `signal.reason` unchanged; if
   * the lease is lost while waiting it rejects with {@link LeaseLostError} — a campaigner whose lease
   * expired in the queue is never told it leads (etcd issue 19597).
   * @throws TypeError when `value` is not a string.
   */
  async campaign(value: string, options?: CampaignOptions): Promise<Leadership> {
    checkValue(value, 'Election.campaign');
    checkSignal(checkOptions(options, 'Election.campaign', ['signal']).signal, 'Election.campaign');
    const ops = this.#ops;
    const ownKey = this.#ownKey;
    const bytes = Buffer.from(value);
    let checkedAt = 0n;
    const handle = await acquire(
      {
        session: this.session,
        ownKey,
        spec: { prefix: this.#prefix },
        value: bytes,
        where: 'Election.campaign',
        // Our turn: when the key predates this campaign (the session adopted an existing lease, as Go's
        // Campaign also handles), make sure it holds this campaign's value and is still ours — one
        // more txn, a write; a key this campaign created already holds its value.
        afterTurn: async (ownRevision, signal, turn) => {
          if (turn.created) {
            // This campaign wrote the key with its value, and the turn was verified at checkedAt.
            checkedAt = turn.checkedAt;
            return;
          }
          const key = ops.abs(ownKey);
          const res = await ops.txn(
            {
              compare: [guardCompare(key, ownRevision), { key, target: 'Value', result: 'NotEqual', value: bytes }],
              success: [{ request_put: { key, value: bytes, lease: this.session.leaseId } }],
              failure: [rangeOp({ key })],
            },
            signal,
          );
          checkedAt = BigInt(res.header.revision);
          if (res.succeeded) return;
          const kv = res.responses[0]?.response_range.kvs[0];
          if (!kv || BigInt(kv.create_revision) !== ownRevision) throw new OwnKeyGone(`${ownKey} is gone`);
        },
      },
      options,
    );
    return new Leadership(this, handle, value, checkedAt);
  }

  /**
   * Reads who leads the election now: the contender (a direct child of `name/`) with the smallest
   * create revision. Aborting `options.signal` rejects with its reason; the session's lease plays no
   * part (observing needs no lease).
   * @throws NoLeaderError when nobody campaigns.
   */
  async leader(options?: ElectionCallOptions): Promise<LeaderState> {
    const { signal } = checkOptions(options, 'Election.leader', ['signal']);
    checkSignal(signal, 'Election.leader');
    signal?.throwIfAborted();
    // One key is enough unless the first by create revision is a nested name: then read them all.
    for (const limit of [1, 0]) {
      const res = await raceSignal(
        this.#ops.range(
          { ...this.#ops.prefixRange(this.#prefix), sort_target: 'Create', sort_order: 'Ascend', limit },
          signal,
        ),
        signal,
      );
      for (const raw of res.kvs) {
        const kv = this.#ops.decode(raw);
        if (isDirectChild(kv.bytes, this.#prefix)) {
          return { key: kv.key, value: kv.value.toString(), term: kv.createRevision, leaseId: kv.lease };
        }
      }
      if (!res.more) break;
    }
    throw new NoLeaderError(this.name);
  }

  /**
   * Follows the election's leader: yields the current leader, then every change of leader or of its
   * proclaimed value. Terms never go back; when the consumer is slower than the changes it gets the
   * latest state (intermediate ones are skipped). While nobody leads, nothing is yielded. One watch on
   * the election's prefix per iteration, no reads per change; a broken watch or a compaction is
   * survived by re-reading. Aborting `options.signal` ends the iteration cleanly (it returns, never
   * throws); the session's lease plays no part.
   * @throws only a non-transient etcd error (for example a permission error); transient ones are retried.
   */
  async *observe(options?: ElectionCallOptions): AsyncGenerator<LeaderState, void, undefined> {
    const { signal } = checkOptions(options, 'Election.observe', ['signal']);
    checkSignal(signal, 'Election.observe');
    for await (const state of followLeader(this.#ops, this.#prefix, signal)) {
      if (state !== null) yield state;
    }
  }
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
export class Leadership implements AsyncDisposable {
  /** The election this leadership belongs to. */
  readonly election: Election;
  /** The campaign key in etcd (relative to the namespace), `${name}/${leaseHex}`. */
  readonly key: string;
  /** The term: the key's create revision, larger for every later leader. */
  readonly term: bigint;
  /** The lease the key is bound to (etcd's decimal string). */
  readonly leaseId: string;

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
    this.leaseId = handle.leaseId;
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
    return !this.#controller.signal.aborted && this.election.session.alive;
  }

  /**
   * Publishes a new value for observers, in one txn guarded by the term (Go's `Proclaim`). Aborting
   * `options.signal` rejects with its reason (the write may or may not have happened); when the lease
   * is lost or the leadership has ended it rejects with {@link NotLeaderError}.
   * @throws TypeError when `value` is not a string.
   */
  async proclaim(value: string, options?: ElectionCallOptions): Promise<void> {
    checkValue(value, 'Leadership.proclaim');
    const { signal } = checkOptions(options, 'Leadership.proclaim', ['signal']);
    checkSignal(signal, 'Leadership.proclaim');
    signal?.throwIfAborted();
    this.#throwIfEnded();
    const s = internals(this.election.session);
    const key = s.ops.abs(this.key);
    const res = await raceSignal(
      s.ops.txn(
        {
          compare: [guardCompare(key, this.term)],
          success: [{ request_put: { key, value: Buffer.from(value), lease: this.leaseId } }],
        },
        anySignal(signal, this.#controller.signal),
      ),
      signal,
    ).catch((error: unknown) => {
      if (signal?.aborted) throw signal.reason;
      if (isLeaseNotFound(error)) s.lost(error);
      if (this.#controller.signal.aborted || !this.election.session.alive) this.#throwIfEnded();
      throw error;
    });
    if (!res.succeeded) {
      const error = new NotLeaderError(this.key, `${this.key} (term ${this.term}) is no longer the leader`);
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
      const ended = new NotLeaderError(this.key, `${this.key} (term ${this.term}) is no longer the leader`, {
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
    this.#end(new NotLeaderError(this.key, `${this.key} (term ${this.term}) resigned`));
    this.#resigning ??= this.#handle.release();
    return this.#resigning;
  }

  /** Calls {@link resign}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign();
  }

  #throwIfEnded(): void {
    if (this.#controller.signal.aborted) {
      const reason: unknown = this.#controller.signal.reason;
      if (reason instanceof NotLeaderError) throw reason;
      throw new NotLeaderError(this.key, `${this.key} (term ${this.term}) is no longer the leader`, { cause: reason });
    }
    if (!this.election.session.alive) {
      throw new NotLeaderError(this.key, `${this.key} (term ${this.term}) is no longer the leader`, {
        cause: this.election.session.signal.reason,
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
   * Watches our own key for as long as we lead (one watch, only while leading) and ends the
   * leadership when the key goes: deleted by the lease's expiry (then the session is marked lost and
   * the reason is its {@link LeaseLostError}) or by someone else ({@link NotLeaderError}).
   */
  async #guard(checkedAt: bigint): Promise<void> {
    const signal = this.#controller.signal;
    const s = internals(this.election.session);
    const own = { key: this.key, bytes: Buffer.from(this.key), createRevision: this.term };
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (await waitForDelete(s.ops, own, checkedAt, signal)) {
          if (!(await s.checkLease())) {
            this.#end(this.election.session.signal.reason);
            return;
          }
          // Deleted while the lease lives: confirm with a read before giving leadership up.
          const res = await s.ops.range({ key: s.ops.abs(this.key) }, signal);
          const kv = res.kvs[0];
          if (!kv || BigInt(kv.create_revision) !== this.term) {
            this.#end(new NotLeaderError(this.key, `${this.key} (term ${this.term}) was deleted by someone else`));
            return;
          }
          checkedAt = BigInt(res.header.revision);
          failures = 0;
          continue;
        }
      } catch {
        // An abort (leadership over) or a failed read: the loop condition or the retry below decides.
      }
      if (signal.aborted) return;
      // The watch broke or a read failed: back off a little, then watch again after a re-read.
      checkedAt = 0n;
      await sleep(Math.min(2000, 25 * 2 ** ++failures), signal).catch(() => undefined);
    }

  }
}
