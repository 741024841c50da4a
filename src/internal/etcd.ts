/**
 * The etcd calls every primitive makes, on the raw gRPC clients of an `etcd3` Namespace: keys are
 * relative to the namespace, every call has a deadline, transient errors are retried with the
 * session's cockatiel policy, and retries stop when the caller's signal aborts.
 */
import type { IPolicy } from 'cockatiel';
import type {
  IKeyValue,
  IRangeRequest,
  IRangeResponse,
  IRequestOp,
  ITxnRequest,
  ITxnResponse,
  Namespace,
} from 'etcd3';
import { prefixEnd } from './keys.js';

/** A key-value read back from etcd, with the namespace prefix removed. */
export interface Kv {
  key: string;
  value: Buffer;
  createRevision: bigint;
  modRevision: bigint;
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

  /** The absolute key (namespace prefix + `key`). */
  abs(key: string): Buffer {
    return Buffer.concat([this.#prefix, Buffer.from(key)]);
  }

  /** The absolute range covering every key that starts with `prefix`. */
  prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
    const key = this.abs(prefix);
    return { key, range_end: prefixEnd(key) };
  }

  /** A key-value from etcd with the namespace prefix stripped and revisions as bigints. */
  decode(kv: IKeyValue): Kv {
    return {
      key: kv.key.subarray(this.#prefix.length).toString(),
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

  /** A txn, retried on transient errors (every txn leasehold sends is idempotent). */
  txn(req: ITxnRequest, signal?: AbortSignal): Promise<ITxnResponse> {
    return this.#policy.execute(() => this.ns.kv.txn(req, this.callOptions()), signal);
  }

  /** A linearizable range read, retried on transient errors. */
  range(req: IRangeRequest, signal?: AbortSignal): Promise<IRangeResponse> {
    return this.#policy.execute(() => this.ns.kv.range(req, this.callOptions()), signal);
  }

  /** Deletes `key` only if its create revision is still `createRevision`; true when it deleted. */
  async deleteIfCreated(key: string, createRevision: bigint, signal?: AbortSignal): Promise<boolean> {
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
