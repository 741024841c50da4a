/**
 * The Semaphore's admission protocol: Curator's SemaphoreV2 idea, on etcd.
 *
 * Keys (relative to the namespace), for the semaphore `name`:
 *
 *   name/waiters/<suffix>   a queued acquisition; value `{"permits":P,"weight":W}`; lease-bound
 *   name/holders/<suffix>   an admitted acquisition; same value; lease-bound; its create revision
 *                           is the permit's token
 *
 * `<suffix>` is `${leaseHex}-${processNonce}${counter}` (see acquisition-key.ts): one per acquisition,
 * so one Session can hold several permits at once, and the waiter and holder keys of one acquisition
 * share it.
 *
 * Waiters queue by the create revision of their `waiters/` key and each watches only the waiter just
 * ahead of it (the shared herd-free queue). The head of the queue — the waiter with nobody ahead —
 * reads the holders and, when `sum(weights) + weight <= permits`, admits itself in one txn guarded by
 * its own waiter key's create revision: put its `holders/` key and delete its `waiters/` key. That
 * delete is what wakes the next waiter, which becomes the head. While there is no room, only the head
 * watches the holders (for deletes). So a release wakes one client (the head), and an admission wakes
 * one client (the next waiter), however long the queue is.
 *
 * Why the limit holds: holders are created only by a head's guarded txn, and there is at most one head
 * able to commit at any revision — a waiter becomes head only after reading that every earlier waiter
 * key is gone, and an earlier waiter whose key is gone can no longer commit its guarded txn. Between
 * the head's read of the holders and its txn, holders can therefore only leave, never join, so the sum
 * it checked can only have shrunk.
 *
 * Every key records the participant's `permits`. A head that reads a holder recording different permits
 * throws {@link PermitsMismatchError} instead of admitting itself, so all holders at any revision agree
 * on `permits` and never exceed it.
 */
import type { KeyValue } from '../transport/messages.js';
import { ForeignKeyError, PermitsMismatchError } from '../errors.js';
import { decodeRecord, encodeRecord, type PermitRecord } from './permit-record.js';
import { guardCompare, rangeOp, type EtcdOps } from '../transport/etcd.js';
import { isDirectChild, keyId } from './keys.js';
import { OwnKeyGone } from './queue.js';
import { waitLoop } from './wait-loop.js';
import { waitForDeletes } from './watch.js';

export { decodeRecord, encodeRecord, type PermitRecord } from './permit-record.js';

/** The keys and record of one acquisition. */
export interface ClaimSpec {
  /** The semaphore's name, for errors. */
  name: string;
  /** `name/holders/`. */
  holdersPrefix: string;
  /** `name/waiters/<suffix>`: the queue key. */
  waiterKey: string;
  /** `name/holders/<suffix>`: the key that exists while the permits are held. */
  holderKey: string;
  /** The session's lease (decimal). */
  lease: string;
  /** Our permits and weight. */
  record: PermitRecord;
}

interface HolderView {
  /** `key@createRevision` of every holder, to tell whether the set changed. */
  ids: Set<string>;
  /** Sum of the holders' weights. */
  sum: number;
  /** The revision the holders were read at. */
  revision: bigint;
}

/**
 * One acquisition's admission: the head's wait for room and its guarded txn, plus the bookkeeping
 * that lets the caller undo an admission it will not report (an abort that lands just after it).
 */
export class PermitClaim {
  readonly spec: ClaimSpec;
  /** The holder key's create revision (the permit's token), once admitted. */
  admitted: bigint | undefined;
  /** True once an admission txn was sent: from then on the holder key may exist. */
  attempted = false;
  readonly #ops: EtcdOps;

  constructor(ops: EtcdOps, spec: ClaimSpec) {
    this.#ops = ops;
    this.spec = spec;
  }

  /**
   * The head's loop: waits until our weight fits, then admits us. Transient errors are retried until
   * `signal` aborts. Throws {@link OwnKeyGone} when our waiter key vanished without an admission,
   * {@link PermitsMismatchError} when a holder recorded other permits.
   */
  async admit(ownRevision: bigint, signal: AbortSignal): Promise<void> {
    await waitLoop(signal, async () => {
      const view = await this.#read(ownRevision, signal);
      if (view === 'admitted') return { done: undefined };
      if (this.#fits(view)) {
        await this.#commit(ownRevision, signal);
        return { done: undefined };
      }
      const woke = await waitForDeletes(
        this.#ops,
        [this.#ops.prefixRange(this.spec.holdersPrefix), { key: this.#ops.abs(this.spec.waiterKey) }],
        view.revision,
        () => this.#changed(ownRevision, view, signal),
        signal,
      );
      return woke ? 'woke' : 'broke'; // a broken watch: re-read after a pause
    });
  }

  /** One attempt without waiting: true when admitted now, false when there is no room. */
  async tryAdmit(ownRevision: bigint, signal: AbortSignal): Promise<boolean> {
    const view = await this.#read(ownRevision, signal);
    if (view === 'admitted') return true;
    if (!this.#fits(view)) return false;
    await this.#commit(ownRevision, signal);
    return true;
  }

  /**
   * One attempt to delete our holder key after an admission the caller will not report: true when it
   * deleted it. Guarded by its create revision when known; after an ambiguous txn, by our lease (the
   * key's name is ours alone).
   */
  async undo(signal: AbortSignal): Promise<boolean> {
    if (!this.attempted) return false;
    const key = this.#ops.abs(this.spec.holderKey);
    if (this.admitted !== undefined) return this.#ops.deleteIfCreated(this.spec.holderKey, this.admitted, signal);
    const res = await this.#ops.txn(
      {
        compare: [{ key, target: 'lease', result: 'equal', lease: this.spec.lease }],
        success: [{ deleteRange: { key } }],
      },
      signal,
    );
    return res.succeeded;
  }

  #fits(view: HolderView): boolean {
    return view.sum + this.spec.record.weight <= this.spec.record.permits;
  }

  /** Our holder key, if a read found it: an earlier (ambiguous) admission txn went through. */
  #adopt(kv: KeyValue | undefined): boolean {
    if (!kv || kv.lease !== this.spec.lease) return false;
    this.attempted = true;
    this.admitted = kv.createRevision;
    return true;
  }

  /** Reads the holders in a txn guarded by our waiter key. */
  async #read(ownRevision: bigint, signal: AbortSignal): Promise<HolderView | 'admitted'> {
    const res = await this.#ops.txn(
      {
        compare: [guardCompare(this.#ops.abs(this.spec.waiterKey), ownRevision)],
        success: [rangeOp(this.#ops.prefixRange(this.spec.holdersPrefix))],
        failure: [rangeOp({ key: this.#ops.abs(this.spec.holderKey) })],
      },
      signal,
    );
    if (!res.succeeded) {
      if (this.#adopt(res.responses[0]?.range!.kvs[0])) return 'admitted';
      throw new OwnKeyGone(`${this.spec.waiterKey} is gone`);
    }
    const ids = new Set<string>();
    let sum = 0;
    for (const raw of res.responses[0]!.range!.kvs) {
      const kv = this.#ops.decode(raw);
      if (!isDirectChild(kv.bytes, this.spec.holdersPrefix)) continue;
      const record = decodeRecord(kv.value);
      if (typeof record === 'string') throw new ForeignKeyError(`${kv.key}: ${record}; delete it`, { key: kv.key });
      if (kv.lease === '0') throw new ForeignKeyError(`${kv.key}: a holder key without a lease: it would hold its permits for ever; delete it`, { key: kv.key });
      if (record.permits !== this.spec.record.permits) {
        const expected = this.spec.record.permits;
        throw new PermitsMismatchError(
          `semaphore ${this.spec.name}: this participant has permits ${expected} but ${kv.key} recorded permits ${record.permits}`,
          { expected, actual: record.permits, key: kv.key },
        );
      }
      ids.add(`${keyId(kv.bytes)}@${kv.createRevision}`);
      sum += record.weight;
    }
    return { ids, sum, revision: res.header.revision };
  }

  /** The admission txn: put our holder key and delete our waiter key, guarded by the waiter key. */
  async #commit(ownRevision: bigint, signal: AbortSignal): Promise<void> {
    const holder = this.#ops.abs(this.spec.holderKey);
    this.attempted = true;
    const res = await this.#ops.txn(
      {
        compare: [guardCompare(this.#ops.abs(this.spec.waiterKey), ownRevision)],
        success: [
          { put: { key: holder, value: encodeRecord(this.spec.record), lease: this.spec.lease } },
          { deleteRange: { key: this.#ops.abs(this.spec.waiterKey) } },
        ],
        failure: [rangeOp({ key: holder })],
      },
      signal,
    );
    if (res.succeeded) {
      this.admitted = res.header.revision;
      return;
    }
    // A retry of a txn that was applied the first time finds our waiter key gone and our holder key in place.
    if (this.#adopt(res.responses[0]?.range!.kvs[0])) return;
    throw new OwnKeyGone(`${this.spec.waiterKey} is gone`);
  }

  /** For the watch's catch-up check: did anything we wait for change since `view`? */
  async #changed(ownRevision: bigint, view: HolderView, signal: AbortSignal): Promise<boolean> {
    try {
      const now = await this.#read(ownRevision, signal);
      if (now === 'admitted' || now.ids.size !== view.ids.size) return true;
      for (const id of now.ids) if (!view.ids.has(id)) return true;
      return false;
    } catch {
      return true; // the caller's next read decides (our key gone, mismatch, etcd trouble)
    }
  }
}
