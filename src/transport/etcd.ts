/**
 * The etcd calls every primitive makes, on the port (`port.ts`): keys are relative to the client's
 * namespace, every call has a deadline, transient errors are retried with the session's cockatiel
 * policy, and retries stop when the caller's signal aborts. A call that fails for good rejects with
 * the signal's reason when the signal has aborted meanwhile (a lost session's `LeaseLostError` wins
 * over the transport error that came with the outage), and otherwise with a leasehold error that
 * names the endpoint and the gRPC status (see `explain.ts`).
 *
 * This is also the one place that decides what an abort does to a call in flight. A read (`range`,
 * `readTxn`, `leaseTimeToLive`) is abandoned at once: its answer is no longer wanted. A write (`txn`,
 * `leaseGrant`) is not: the abort only stops further retries, and the call settles as etcd decides,
 * because its outcome decides what must be cleaned up (a joined queue key, a granted lease); callers
 * that stop waiting for one keep the promise and clean up after it.
 */
import type { IPolicy } from 'cockatiel';
import { clampDelay, raceSignal } from './abort.js';
import { explainTransportError } from './explain.js';
import type { Compare, KeyValue, LeaseGrantResponse, LeaseTimeToLiveResponse, RangeRequest, RangeResponse, RequestOp, TxnRequest, TxnResponse } from './messages.js';
import type { CallOptions, EtcdTransport } from './port.js';

/** The end of the etcd range holding every key that starts with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** A key-value read back from etcd, with the namespace prefix removed. */
export interface Kv {
  /** The key as UTF-8 text, for messages and for the public API. */
  key: string;
  /** The key's bytes (relative to the namespace): what every comparison uses. */
  bytes: Buffer;
  value: Buffer;
  createRevision: bigint;
  modRevision: bigint;
  /** The lease, etcd's decimal string; `'0'` for none. */
  lease: string;
}

export class EtcdOps {
  /** The client's transport (shared by every session on the client). */
  readonly transport: EtcdTransport;
  readonly #prefix: Buffer;
  readonly #policy: IPolicy;
  readonly #timeout: number;
  /** The options of a call without a signal (read only, so one object serves every call). */
  readonly #plain: CallOptions;
  /** {@link prefixRange}'s buffers by prefix. */
  readonly #ranges = new Map<string, readonly [Buffer, Buffer]>();
  /**
   * How often a waiter re-reads its blocker while its watch is quiet: a safety net for a watch stream
   * stuck on a member that stopped answering (paused, partitioned), which would otherwise never fire.
   */
  readonly recheckMs: number;

  constructor(transport: EtcdTransport, prefix: Buffer, policy: IPolicy, requestTimeout: number, recheckMs = 5000) {
    this.transport = transport;
    this.recheckMs = recheckMs;
    this.#prefix = prefix;
    this.#policy = policy;
    this.#timeout = requestTimeout;
    this.#plain = Object.freeze({ timeoutMs: requestTimeout });
  }

  /** The per-call deadline, in milliseconds. */
  get requestTimeout(): number {
    return this.#timeout;
  }

  /** The same calls with another re-check interval. */
  withRecheck(recheckMs: number): EtcdOps {
    return new EtcdOps(this.transport, this.#prefix, this.#policy, this.#timeout, recheckMs);
  }

  /** The absolute key (namespace prefix + `key`). */
  abs(key: string | Buffer): Buffer {
    return Buffer.concat([this.#prefix, typeof key === 'string' ? Buffer.from(key) : key]);
  }

  /**
   * The absolute range covering every key that starts with `prefix`. A queue's range is asked for on
   * every join and every turn check, so its two buffers are made once per prefix and shared (requests
   * are only ever read); the cache is emptied when it passes 256 prefixes.
   */
  prefixRange(prefix: string): { key: Buffer; rangeEnd: Buffer } {
    let range = this.#ranges.get(prefix);
    if (range === undefined) {
      if (this.#ranges.size >= 256) this.#ranges.clear();
      const key = this.abs(prefix);
      this.#ranges.set(prefix, (range = [key, prefixEnd(key)]));
    }
    return { key: range[0], rangeEnd: range[1] };
  }

  /** A key-value from etcd with the namespace prefix stripped. */
  decode(kv: KeyValue): Kv {
    const bytes = kv.key.subarray(this.#prefix.length);
    return { key: bytes.toString(), bytes, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision, lease: kv.lease };
  }

  /**
   * One call under the retry policy (`send` makes one attempt). `onAttempt` runs just before each
   * attempt is sent (the session uses it to learn when the successful grant was sent).
   */
  call<T>(send: (options: CallOptions) => Promise<T>, subject: Buffer | undefined, kind: 'read' | 'write', signal?: AbortSignal, onAttempt?: () => void): Promise<T> {
    const options: CallOptions = kind === 'read' && signal ? { timeoutMs: this.#timeout, signal } : this.#plain;
    const calling = (async () => {
      try {
        return await this.#policy.execute(() => {
          onAttempt?.();
          return send(options);
        }, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw this.#explain(error, subject);
      }
    })();
    return kind === 'read' ? raceSignal(calling, signal) : calling;
  }

  /** A txn that writes, retried on transient errors (every txn leasehold sends is idempotent). */
  txn(req: TxnRequest, signal?: AbortSignal): Promise<TxnResponse> {
    return this.call((o) => this.transport.txn(req, o), subjectOf(req), 'write', signal);
  }

  /**
   * A txn sent once, with the request deadline and no retry: for the user's own writes (a handle's
   * `commit`), which leasehold cannot know to be safe to apply twice. A failure leaves the outcome
   * unknown, as its error says; the caller decides whether to try again.
   */
  async txnOnce(req: TxnRequest): Promise<TxnResponse> {
    try {
      return await this.transport.txn(req, { timeoutMs: this.#timeout });
    } catch (error) {
      throw this.#explain(error, subjectOf(req));
    }
  }

  /** The leasehold error a failed call rejects with: it names the endpoints, the user and the key. */
  #explain(error: unknown, subject: Buffer | undefined): unknown {
    const key = subject?.subarray(this.#prefix.length).toString();
    return explainTransportError(error, { endpoints: this.transport.endpoints, user: this.transport.user, key });
  }

  /** A txn that only reads (guarded reads, snapshots): abandoned at once when `signal` aborts. */
  readTxn(req: TxnRequest, signal?: AbortSignal): Promise<TxnResponse> {
    return this.call((o) => this.transport.txn(req, o), subjectOf(req), 'read', signal);
  }

  /** A linearizable range read, retried on transient errors; abandoned at once when `signal` aborts. */
  range(req: RangeRequest, signal?: AbortSignal): Promise<RangeResponse> {
    return this.call((o) => this.transport.range(req, o), req.key, 'read', signal);
  }

  /** Grants a lease; `onAttempt` runs as each attempt is sent. */
  leaseGrant(ttl: number, signal?: AbortSignal, onAttempt?: () => void): Promise<LeaseGrantResponse> {
    return this.call((o) => this.transport.leaseGrant(ttl, o), undefined, 'write', signal, onAttempt);
  }

  /** Asks how long a lease has left (TTL -1: gone); `onAttempt` runs as each attempt is sent. */
  leaseTimeToLive(id: string, signal?: AbortSignal, onAttempt?: () => void): Promise<LeaseTimeToLiveResponse> {
    return this.call((o) => this.transport.leaseTimeToLive(id, o), undefined, 'read', signal, onAttempt);
  }

  /**
   * Revokes a lease; never rejects (gone already, or unreachable: it expires). One attempt with the
   * request deadline, unless `retryForMs` is given: then transient failures are retried under the
   * policy for that long (plus the attempt in flight). A lost session's revoke wants that: when it is
   * sent while etcd has no leader (a partition, an election), one refused attempt would leave its keys
   * blocking every queue they are in until etcd expires the lease after the election — a TTL or more.
   */
  async leaseRevoke(id: string, retryForMs = 0): Promise<void> {
    const revoking =
      retryForMs > 0
        ? this.call((o) => this.transport.leaseRevoke(id, o), undefined, 'write', AbortSignal.timeout(clampDelay(retryForMs)))
        : this.transport.leaseRevoke(id, { timeoutMs: this.#timeout });
    await revoking.catch(() => undefined);
  }

  /** Deletes `key` only if its create revision is still `createRevision`; true when it deleted. */
  async deleteIfCreated(key: string | Buffer, createRevision: bigint, signal?: AbortSignal): Promise<boolean> {
    const abs = this.abs(key);
    const res = await this.txn({ compare: [guardCompare(abs, createRevision)], success: [{ deleteRange: { key: abs } }] }, signal);
    return res.succeeded;
  }
}

/** The key a txn is about (its first compare's or first op's), for error messages. */
function subjectOf(req: TxnRequest): Buffer | undefined {
  const op = req.success[0];
  return req.compare[0]?.key ?? (op?.range ?? op?.put ?? op?.deleteRange)?.key;
}

/** The compare that makes a txn conditional on `key` still having create revision `createRevision`. */
export function guardCompare(absKey: Buffer, createRevision: bigint): Compare {
  return { key: absKey, target: 'create', result: 'equal', createRevision };
}

/** The compare that holds while `absKey` does not exist (its create revision is 0). */
export function absentCompare(absKey: Buffer): Compare {
  return guardCompare(absKey, 0n);
}

/** A range op for a txn. */
export function rangeOp(req: RangeRequest): RequestOp {
  return { range: req };
}
