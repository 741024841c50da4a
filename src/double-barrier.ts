import { acquisitionSuffix } from './engine/acquisition-key.js';
import { removeBounded } from './engine/cleanup.js';
import { isDirectChild, queuePrefix } from './engine/keys.js';
import { internals } from './engine/session-internals.js';
import { checkInteger, checkRequiredOptions, signalOption } from './engine/validate.js';
import { waitForDelete, waitForPut } from './engine/watch.js';
import { NotHeldError } from './errors.js';
import { anySignal } from './transport/abort.js';
import { Backoff } from './transport/backoff.js';
import { guardCompare, rangeOp, type EtcdOps, type Kv } from './transport/etcd.js';
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
 * writes `phase/waiters/<suffix>` bound to its session's lease, and the participant that completes a
 * round writes `phase/ready`, also bound to its lease. The create revisions order the participants.
 *
 * Enter: one txn writes our waiter key only while `ready` does not exist (a round in progress is never
 * joined late: etcd issue 14603), and reads the waiters. If we are the `count`-th, we write `ready`;
 * before that, we wait for `ready` to be written; after it (more arrived at once than `count`), we take
 * our key back and wait for the next round. A round is identified by `ready`'s create revision: only
 * waiter keys older than it belong to the round, so a new round that starts while we still leave never
 * holds us up.
 *
 * Leave: the oldest participant of the round waits until it is the only one left, then deletes `ready`
 * and its key in one txn; every other deletes its key and waits for the oldest to go. A participant
 * that dies inside the barrier leaves with its lease, within its TTL, and the others go on; if the
 * oldest dies after the others left, whoever sees the round empty deletes `ready`.
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
  /** The Session of the current (or last) `enter()`. */
  #entered: Session | undefined;
  readonly #waiters: string;
  readonly #ready: string;
  /** While inside: our waiter key, its create revision, and the round (`ready`'s create revision). */
  #inside: { key: string; revision: bigint; round: bigint } | undefined;
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
    this.#waiters = `${prefix}waiters/`;
    this.#ready = `${prefix}ready`;
  }

  /**
   * Enters the barrier and waits until `count` participants have entered this round (on a
   * SessionSource, on its current Session, waiting for one while it grants it). Aborting
   * `options.signal` deletes our key and rejects with `signal.reason` unchanged; a lease lost meanwhile
   * rejects with `LeaseLostError`.
   * @throws TypeError when this participant is inside already (or still entering or leaving).
   */
  async enter(options?: DoubleBarrierCallOptions): Promise<void> {
    const caller = this.#callSignal(options, 'DoubleBarrier.enter');
    if (this.#inside) throw new TypeError(`DoubleBarrier ${this.name}: enter() while inside; leave() first`);
    this.#begin();
    let key: { key: string; revision: bigint } | undefined;
    let session: Session | undefined;
    try {
      session = await this.#sessions.current(caller);
      this.#entered = session;
      const signal = anySignal(caller, session.signal);
      for (;;) {
        if (!session.alive) throw session.signal.reason;
        key = undefined;
        const joined = await this.#join(signal);
        if (joined === 'round in progress') continue;
        key = joined;
        const round = await this.#awaitReady(joined, signal);
        if (round !== undefined) {
          this.#inside = { ...joined, round };
          return;
        }
        // More entered at once than `count`, and we were late: take our key back, wait for the next round.
        await this.#ops.deleteIfCreated(joined.key, joined.revision, signal);
        key = undefined;
        await this.#untilReadyWritten(signal);
      }
    } catch (error) {
      if (key) await this.#abandon(key);
      if (caller?.aborted) throw caller.reason;
      if (session && !session.alive) throw session.signal.reason;
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Leaves the barrier and waits until every participant of this round has left. The session's lease
   * is not needed to wait. Aborting `options.signal` rejects with its reason: our key then stays until
   * the session ends, and the others wait for it.
   * @throws TypeError when this participant is not inside.
   */
  async leave(options?: DoubleBarrierCallOptions): Promise<void> {
    const signal = this.#callSignal(options, 'DoubleBarrier.leave') ?? new AbortController().signal;
    const inside = this.#inside;
    if (!inside) throw new TypeError(`DoubleBarrier ${this.name}: leave() without enter()`);
    this.#begin();
    const backoff = new Backoff();
    try {
      for (;;) {
        const { round, ready, header } = await this.#readRound(inside.round, signal);
        const lowest = round[0];
        const highest = round.at(-1);
        if (!lowest || !highest) {
          // Everyone of the round has gone: `ready` goes too (the oldest may have died before deleting it).
          if (ready) await this.#ops.deleteIfCreated(this.#ready, inside.round, signal);
          break;
        }
        const mine = round.some((kv) => kv.createRevision === inside.revision);
        if (mine && round.length === 1) {
          await this.#ops.txn(
            {
              compare: [guardCompare(this.#ops.abs(inside.key), inside.revision)],
              success: [
                { request_delete_range: { key: this.#ops.abs(inside.key) } },
                ...(ready ? [{ request_delete_range: { key: this.#ops.abs(this.#ready) } }] : []),
              ],
            },
            signal,
          );
          continue; // read again: done once the round is empty
        }
        if (mine && lowest.createRevision !== inside.revision) {
          await this.#ops.deleteIfCreated(inside.key, inside.revision, signal);
          continue;
        }
        // The oldest waits for the newest to go; the others, once they are gone, for the oldest.
        const target = mine ? highest : lowest;
        const woke = await waitForDelete(this.#ops, { key: target.key, bytes: target.bytes, createRevision: target.createRevision }, header, signal);
        if (woke) backoff.reset();
        else await backoff.wait(signal);
      }
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

  /**
   * One txn: writes our waiter key if `ready` does not exist (else waits for `ready` to go and says
   * so), and reads the waiters. Resolves with our key, or `'round in progress'`.
   */
  async #join(signal: AbortSignal): Promise<{ key: string; revision: bigint; position: number } | 'round in progress'> {
    const key = `${this.#waiters}${acquisitionSuffix(this.#entered!.leaseHex)}`;
    const ready = this.#ops.abs(this.#ready);
    const res = await this.#ops.txn(
      {
        compare: [{ key: ready, target: 'Create', result: 'Equal', create_revision: '0' }],
        success: [
          { request_put: { key: this.#ops.abs(key), value: Buffer.alloc(0), lease: this.#entered!.leaseId } },
          rangeOp({ ...this.#ops.prefixRange(this.#waiters), sort_target: 'Create', sort_order: 'Ascend', keys_only: true }),
        ],
        failure: [rangeOp({ key: ready, keys_only: true })],
      },
      signal,
    );
    if (!res.succeeded) {
      const kv = res.responses[0]?.response_range.kvs[0];
      if (kv) await this.#untilGone(this.#ready, BigInt(kv.create_revision), BigInt(res.header.revision), signal);
      return 'round in progress';
    }
    const revision = BigInt(res.header.revision);
    const waiters = this.#children(res.responses[1]!.response_range.kvs.map((kv) => this.#ops.decode(kv)));
    const position = waiters.findIndex((kv) => kv.createRevision === revision) + 1;
    return { key, revision, position };
  }

  /**
   * After joining: the `count`-th participant writes `ready`; earlier ones wait for it. Resolves with
   * the round (`ready`'s create revision), or `undefined` when we were beyond `count`.
   */
  async #awaitReady(joined: { key: string; revision: bigint; position: number }, signal: AbortSignal): Promise<bigint | undefined> {
    if (joined.position > this.count) return undefined;
    const own = guardCompare(this.#ops.abs(joined.key), joined.revision);
    const ready = this.#ops.abs(this.#ready);
    if (joined.position === this.count) {
      const res = await this.#ops.txn(
        {
          compare: [own, { key: ready, target: 'Create', result: 'Equal', create_revision: '0' }],
          success: [{ request_put: { key: ready, value: Buffer.alloc(0), lease: this.#entered!.leaseId } }],
        },
        signal,
      );
      if (res.succeeded) return BigInt(res.header.revision);
    }
    const backoff = new Backoff();
    for (;;) {
      const res = await this.#ops.readTxn(
        { compare: [own], success: [rangeOp({ key: ready, keys_only: true })] },
        signal,
      );
      if (!res.succeeded) throw await this.#gone(joined.key);
      const kv = res.responses[0]?.response_range.kvs[0];
      if (kv) return BigInt(kv.create_revision);
      const changed = async (): Promise<boolean> => (await this.#ops.range({ key: ready, keys_only: true }, signal)).kvs.length > 0;
      if (await waitForPut(this.#ops, [{ key: ready }], BigInt(res.header.revision), changed, signal)) backoff.reset();
      else await backoff.wait(signal);
    }
  }

  /** Waits until `ready` has been written (a round we could not join has begun). */
  async #untilReadyWritten(signal: AbortSignal): Promise<void> {
    const ready = this.#ops.abs(this.#ready);
    const exists = async (): Promise<{ yes: boolean; revision: bigint }> => {
      const res = await this.#ops.range({ key: ready, keys_only: true }, signal);
      return { yes: res.kvs.length > 0, revision: BigInt(res.header.revision) };
    };
    const backoff = new Backoff();
    for (let now = await exists(); !now.yes; now = await exists()) {
      if (!(await waitForPut(this.#ops, [{ key: ready }], now.revision, async () => (await exists()).yes, signal))) {
        await backoff.wait(signal);
      }
    }
  }

  /** Waits until `key` (with `createRevision`) is gone. */
  async #untilGone(key: string, createRevision: bigint, checkedAt: bigint, signal: AbortSignal): Promise<void> {
    const target = { key, bytes: Buffer.from(key), createRevision };
    if (!(await waitForDelete(this.#ops, target, checkedAt, signal))) await new Backoff().wait(signal);
  }

  /** The waiters of the round `round` (created before `ready`), oldest first, and whether `ready` exists. */
  async #readRound(round: bigint, signal: AbortSignal): Promise<{ round: Kv[]; ready: boolean; header: bigint }> {
    const res = await this.#ops.readTxn(
      {
        compare: [],
        success: [
          rangeOp({ ...this.#ops.prefixRange(this.#waiters), sort_target: 'Create', sort_order: 'Ascend', keys_only: true }),
          rangeOp({ key: this.#ops.abs(this.#ready), keys_only: true }),
        ],
      },
      signal,
    );
    const waiters = this.#children(res.responses[0]!.response_range.kvs.map((kv) => this.#ops.decode(kv)));
    const ready = res.responses[1]!.response_range.kvs[0];
    return {
      round: waiters.filter((kv) => kv.createRevision < round),
      ready: ready !== undefined && BigInt(ready.create_revision) === round,
      header: BigInt(res.header.revision),
    };
  }

  #children(kvs: Kv[]): Kv[] {
    return kvs.filter((kv) => isDirectChild(kv.bytes, this.#waiters));
  }

  /** Our waiter key vanished while we waited: the lease's doing (lost) or someone else's. */
  async #gone(key: string): Promise<unknown> {
    const session = this.#entered!;
    if (!(await internals(session).checkLease())) return session.signal.reason;
    return new NotHeldError(`${key} was deleted by someone else while entering`, { key });
  }

  /** An aborted or failed enter: deletes our waiter key, bounded like an aborted acquisition. */
  async #abandon(key: { key: string; revision: bigint }): Promise<void> {
    await removeBounded(this.#entered!, (signal) => this.#ops.deleteIfCreated(key.key, key.revision, signal));
  }
}
