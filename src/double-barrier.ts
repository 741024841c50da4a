import { withCallSignal } from './engine/acquire.js';
import { queuePrefix } from './engine/keys.js';
import { OwnKeyGone } from './engine/queue.js';
import { enterRound, leaveRound, type Inside } from './engine/round-waits.js';
import type { RoundSpec } from './engine/rounds.js';
import { internals } from './engine/session-internals.js';
import { checkInteger, checkRequiredOptions, signalOption } from './engine/validate.js';
import { NotHeldError } from './errors.js';
import type { EtcdOps } from './transport/etcd.js';
import type { Session } from './session.js';
import type { SessionSource } from './session-source.js';
import { sessionsOf, type Sessions } from './sessions.js';

/** Options of the {@link DoubleBarrier} constructor. */
export interface DoubleBarrierOptions {
  /** How many participants make a round: `enter()` returns once this many have entered. */
  count: number;
}

/** Options of {@link DoubleBarrier.enter} and {@link DoubleBarrier.leave}. */
export interface DoubleBarrierCallOptions {
  /** Aborts the call: it rejects with `signal.reason` unchanged (an aborted `enter` deletes its key). */
  signal?: AbortSignal;
}

/**
 * A double barrier on etcd: `enter()` blocks until `count` participants have entered, `leave()` blocks
 * until all of them have left — to start and finish a phase of work together.
 *
 * Keys, for the name `phase` (the layout of etcd's Go `recipe.DoubleBarrier`): each participant
 * writes `phase/waiters/<suffix>` bound to its session's lease; `phase/ready`, written without a
 * lease, is the round in progress and names its members. A round is opened by one txn that writes
 * `ready` only while there is none and while every one of the `count` oldest waiter keys, as read,
 * still exists: a round has exactly `count` members, all present when it opened, and nobody joins it
 * later — no death changes it. Any waiting participant that reads `count` waiter keys opens the round,
 * so nobody waits for one that died; one that more arrivals left out takes its key back and waits for
 * the round to end. `ready` goes once none of its members' keys is left (all left, or died).
 *
 * Leave: the oldest member still present waits until it is the only one, then deletes its key and
 * `ready` in one txn; every other deletes its key and waits for the oldest to go. A participant that
 * dies inside leaves with its lease, within its TTL, and the others go on. An etcd outage only delays
 * either call. The protocol and its invariants are in docs/barrier.md.
 *
 * @example
 * ```ts
 * const phase = new DoubleBarrier(session, 'reindex', { count: Number(process.env['REPLICAS'] ?? 1) });
 * await phase.enter({ signal: AbortSignal.timeout(60_000) });
 * await reindexMyShard();
 * await phase.leave({ signal: AbortSignal.timeout(60_000) });
 * ```
 */
export class DoubleBarrier {
  /** The barrier's name: its keys live under `${name}/`. */
  readonly name: string;
  /**
   * What this participant enters on: a Session, or a SessionSource whose current Session each
   * {@link enter} takes (its key is bound to that lease until it has left).
   */
  readonly session: Session | SessionSource;
  /** How many participants make a round. */
  readonly count: number;
  readonly #sessions: Sessions;
  readonly #ops: EtcdOps;
  readonly #spec: RoundSpec;
  /** While inside: our waiter key and the round. */
  #inside: Inside | undefined;
  #busy = false;

  /**
   * A DoubleBarrier named `name` for `options.count` participants, on `session` (a Session or a
   * SessionSource). Creating it talks to nobody.
   * @throws TypeError/RangeError when `session`, `name` or `count` is invalid, naming the value.
   */
  constructor(session: Session | SessionSource, name: string, options: DoubleBarrierOptions) {
    this.#sessions = sessionsOf(session, 'DoubleBarrier');
    this.#ops = this.#sessions.ops;
    const prefix = queuePrefix(name, 'DoubleBarrier');
    this.count = checkInteger('count', checkRequiredOptions(options, 'DoubleBarrier', ['count']).count, 1);
    this.name = name;
    this.session = session;
    this.#spec = { name, waiters: `${prefix}waiters/`, ready: `${prefix}ready`, count: this.count };
  }

  /**
   * Enters the barrier and waits until this participant is one of the `count` members of a round (on
   * a SessionSource, on its current Session, waiting for one while it grants it). Aborting
   * `options.signal` deletes our key and rejects with `signal.reason` unchanged; a lease lost
   * meanwhile rejects with `LeaseLostError`, our key deleted by someone else with `NotHeldError`.
   * @throws TypeError when this participant is inside already (or still entering or leaving).
   * @throws ForeignKeyError when `${name}/ready` is not a round record leasehold can read, or records
   * another `count`.
   */
  async enter(options?: DoubleBarrierCallOptions): Promise<void> {
    const caller = this.#callSignal(options, 'DoubleBarrier.enter');
    if (this.#inside) throw new TypeError(`DoubleBarrier ${this.name}: enter() while inside; leave() first`);
    this.#begin();
    let session: Session | undefined;
    try {
      session = await this.#sessions.current(caller);
      const entering = session;
      this.#inside = await withCallSignal(session, caller, async (signal) => enterRound(this.#ops, this.#spec, entering, signal));
    } catch (error) {
      if (caller?.aborted) throw caller.reason;
      if (session && !session.alive) throw session.signal.reason;
      if (session && error instanceof OwnKeyGone) {
        if (!(await internals(session).checkLease())) throw session.signal.reason;
        throw new NotHeldError(`${this.name}: our waiter key was deleted by someone else while entering`, { key: this.#spec.waiters, cause: error });
      }
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Leaves the barrier and waits until every member of this round has left (or died). The session's
   * lease is not needed to wait. Aborting `options.signal` rejects with its reason: our key then
   * stays until the session ends, and the others wait for it.
   * @throws TypeError when this participant is not inside.
   */
  async leave(options?: DoubleBarrierCallOptions): Promise<void> {
    const signal = this.#callSignal(options, 'DoubleBarrier.leave') ?? new AbortController().signal;
    const inside = this.#inside;
    if (!inside) throw new TypeError(`DoubleBarrier ${this.name}: leave() without enter()`);
    this.#begin();
    try {
      await leaveRound(this.#ops, this.#spec, inside, signal);
      this.#inside = undefined;
    } finally {
      this.#busy = false;
    }
  }

  #callSignal(options: DoubleBarrierCallOptions | undefined, where: string): AbortSignal | undefined {
    const signal = signalOption(options, where);
    signal?.throwIfAborted();
    return signal;
  }

  #begin(): void {
    if (this.#busy) throw new TypeError(`DoubleBarrier ${this.name}: one enter() or leave() at a time`);
    this.#busy = true;
  }
}
