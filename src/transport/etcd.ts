/**
 * The etcd calls every primitive makes, on the raw gRPC clients of an `etcd3` Namespace: keys are
 * relative to the namespace, every call has a deadline, transient errors are retried with the
 * session's cockatiel policy, and retries stop when the caller's signal aborts. A call that fails
 * for good rejects with the signal's reason when the signal has aborted meanwhile (a lost session's
 * `LeaseLostError` wins over the transport error that came with the outage), and otherwise with a
 * leasehold error that names the endpoint and the gRPC status (see `explainEtcdError`).
 *
 * This is also the one place that decides what an abort does to a call in flight. A read (`range`,
 * `readTxn`, `leaseTimeToLive`) is abandoned at once: its answer is no longer wanted. A write (`txn`,
 * `leaseGrant`) is not: the abort only stops further retries, and the call settles as etcd decides,
 * because its outcome decides what must be cleaned up (a joined queue key, a granted lease); callers
 * that stop waiting for one keep the promise and clean up after it.
 */
import type { IPolicy } from 'cockatiel';
import type {
  IKeyValue,
  ILeaseGrantResponse,
  ILeaseTimeToLiveResponse,
  IRangeRequest,
  IRangeResponse,
  IRequestOp,
  ITxnRequest,
  ITxnResponse,
  Namespace,
} from 'etcd3';
import { clampDelay, raceSignal } from './abort.js';
import { unary, type UnaryMethod } from './pool.js';
import { explainEtcdError } from './retry.js';

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
  readonly ns: Namespace;
  readonly #prefix: Buffer;
  readonly #policy: IPolicy;
  readonly #timeout: number;
  /**
   * How often a waiter re-reads its blocker while its watch is quiet: a safety net for a watch stream
   * stuck on a member that stopped answering (paused, partitioned), which would otherwise never fire.
   */
  readonly recheckMs: number;

  constructor(ns: Namespace, policy: IPolicy, requestTimeout: number, recheckMs = 5000) {
    this.ns = ns;
    this.recheckMs = recheckMs;
    this.#prefix = (ns as unknown as { prefix?: Buffer }).prefix ?? Buffer.alloc(0);
    this.#policy = policy;
    this.#timeout = requestTimeout;
  }

  /** The per-call deadline, in milliseconds. */
  get requestTimeout(): number {
    return this.#timeout;
  }

  /** The absolute key (namespace prefix + `key`). */
  abs(key: string | Buffer): Buffer {
    return Buffer.concat([this.#prefix, typeof key === 'string' ? Buffer.from(key) : key]);
  }

  /** The absolute range covering every key that starts with `prefix`. */
  prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
    const key = this.abs(prefix);
    return { key, range_end: prefixEnd(key) };
  }

  /** A key-value from etcd with the namespace prefix stripped and revisions as bigints. */
  decode(kv: IKeyValue): Kv {
    const bytes = kv.key.subarray(this.#prefix.length);
    return {
      key: bytes.toString(),
      bytes,
      value: kv.value,
      createRevision: BigInt(kv.create_revision),
      modRevision: BigInt(kv.mod_revision),
      lease: kv.lease,
    };
  }

  /** gRPC call options with this session's per-call deadline. */
  callOptions(): { deadline: number } {
    return { deadline: Date.now() + this.#timeout };
  }

  /**
   * One unary call under the retry policy. `onAttempt` runs just before each attempt is sent (the
   * session uses it to learn when the successful grant was sent).
   */
  call<T>(method: UnaryMethod, payload: object, kind: 'read' | 'write', signal?: AbortSignal, onAttempt?: () => void): Promise<T> {
    const calling = (async () => {
      try {
        return await this.#policy.execute(() => {
          onAttempt?.();
          return unary<T>(this.ns, method, payload, this.callOptions());
        }, signal);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw explainEtcdError(error, this.ns, this.#subject(payload));
      }
    })();
    return kind === 'read' ? raceSignal(calling, signal) : calling;
  }

  /** The key a request is about (its first key, relative to the namespace), for error messages. */
  #subject(payload: object): string | undefined {
    const p = payload as { key?: Buffer; compare?: { key?: Buffer }[]; success?: Record<string, { key?: Buffer } | undefined>[] };
    const first = p.key ?? p.compare?.[0]?.key ?? Object.values(p.success?.[0] ?? {})[0]?.key;
    return Buffer.isBuffer(first) ? first.subarray(this.#prefix.length).toString() : undefined;
  }

  /** A txn that writes, retried on transient errors (every txn leasehold sends is idempotent). */
  txn(req: ITxnRequest, signal?: AbortSignal): Promise<ITxnResponse> {
    return this.call({ service: 'KV', method: 'txn' }, req, 'write', signal);
  }

  /** A txn that only reads (guarded reads, snapshots): abandoned at once when `signal` aborts. */
  readTxn(req: ITxnRequest, signal?: AbortSignal): Promise<ITxnResponse> {
    return this.call({ service: 'KV', method: 'txn' }, req, 'read', signal);
  }

  /** A linearizable range read, retried on transient errors; abandoned at once when `signal` aborts. */
  range(req: IRangeRequest, signal?: AbortSignal): Promise<IRangeResponse> {
    return this.call({ service: 'KV', method: 'range' }, req, 'read', signal);
  }

  /** Grants a lease; `onAttempt` runs as each attempt is sent. */
  leaseGrant(ttl: number, signal?: AbortSignal, onAttempt?: () => void): Promise<ILeaseGrantResponse> {
    return this.call({ service: 'Lease', method: 'leaseGrant' }, { TTL: ttl }, 'write', signal, onAttempt);
  }

  /** Asks how long a lease has left (TTL -1: gone); `onAttempt` runs as each attempt is sent. */
  leaseTimeToLive(id: string, signal?: AbortSignal, onAttempt?: () => void): Promise<ILeaseTimeToLiveResponse> {
    return this.call({ service: 'Lease', method: 'leaseTimeToLive' }, { ID: id }, 'read', signal, onAttempt);
  }

  /**
   * Revokes a lease; never rejects (gone already, or unreachable: it expires). One attempt with the
   * request deadline, unless `retryForMs` is given: then transient failures are retried under the
   * policy for that long (plus the attempt in flight). A lost session's revoke wants that: when it is
   * sent while etcd has no leader (a partition, an election), one refused attempt would leave its keys
   * blocking every queue they are in until etcd expires the lease after the election — a TTL or more.
   */
  async leaseRevoke(id: string, retryForMs = 0): Promise<void> {
    const method = { service: 'Lease', method: 'leaseRevoke' } as const;
    const revoking =
      retryForMs > 0
        ? this.call(method, { ID: id }, 'write', AbortSignal.timeout(clampDelay(retryForMs)))
        : unary(this.ns, method, { ID: id }, this.callOptions());
    await revoking.catch(() => undefined);
  }

  /** Deletes `key` only if its create revision is still `createRevision`; true when it deleted. */
  async deleteIfCreated(key: string | Buffer, createRevision: bigint, signal?: AbortSignal): Promise<boolean> {
    const res = await this.txn(
      {
        compare: [guardCompare(this.abs(key), createRevision)],
        success: [{ request_delete_range: { key: this.abs(key) } }],
      },
      signal,
    );
    return res.succeeded;
  }
}

/** The compare that makes a txn conditional on `key` still having create revision `createRevision`. */
export function guardCompare(absKey: Buffer, createRevision: bigint) {
  return {
    key: absKey,
    target: 'Create' as const,
    result: 'Equal' as const,
    create_revision: createRevision.toString(),
  };
}

/** A range op for a txn. */
export function rangeOp(req: IRangeRequest): IRequestOp {
  return { request_range: req };
}
