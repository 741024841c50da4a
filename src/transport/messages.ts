/**
 * leasehold's own etcd messages: the requests and responses of the port (see `port.ts`), after
 * etcd's protos (`etcdserverpb`, `mvccpb`) with three choices of our own:
 * - revisions and counts are `bigint` (etcd's int64; the engine compares revisions exactly);
 * - lease ids are etcd's decimal strings (`'0'` for none), as the public API shows them;
 * - enums are string unions, and a `oneof` is an object with exactly one member set.
 * Keys are absolute: the caller adds its namespace prefix.
 */

/** etcd's response header: the store revision the answer reflects, and who answered. */
export interface ResponseHeader {
  revision: bigint;
  /** The answering member's id, decimal. */
  memberId: string;
  raftTerm: bigint;
}

/** A key-value as stored in etcd (`mvccpb.KeyValue`). */
export interface KeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  /** The lease the key is bound to, decimal; `'0'` for none. */
  lease: string;
}

/** Which field of a key a {@link Compare} inspects. */
export type CompareTarget = 'version' | 'create' | 'mod' | 'value' | 'lease';
/** How a {@link Compare} compares. */
export type CompareResult = 'equal' | 'greater' | 'less' | 'notEqual';

/** One condition of a txn: the `target` field of `key` (or of every key up to `rangeEnd`). */
export type Compare = { key: Buffer; rangeEnd?: Buffer; result: CompareResult } & (
  | { target: 'version'; version: bigint }
  | { target: 'create'; createRevision: bigint }
  | { target: 'mod'; modRevision: bigint }
  | { target: 'value'; value: Buffer }
  | { target: 'lease'; lease: string }
);

/** A read of one key, or of `[key, rangeEnd)`. Unset fields take etcd's defaults. */
export interface RangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  /** At most this many keys; 0 or unset: no limit. */
  limit?: number;
  /** Read the store as of this revision (0 or unset: the newest). */
  revision?: bigint;
  sortOrder?: 'none' | 'ascend' | 'descend';
  sortTarget?: 'key' | 'version' | 'create' | 'mod' | 'value';
  /** Answer from the member's own state, without a consensus round (may be stale). */
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: bigint;
  maxModRevision?: bigint;
  minCreateRevision?: bigint;
  maxCreateRevision?: bigint;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** True when `limit` cut the answer. */
  more: boolean;
  count: bigint;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  /** Decimal lease id; unset or `'0'`: no lease. */
  lease?: string;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv: KeyValue | undefined;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: bigint;
  prevKvs: KeyValue[];
}

/** One operation of a txn: exactly one member is set. */
export interface RequestOp {
  range?: RangeRequest;
  put?: PutRequest;
  deleteRange?: DeleteRangeRequest;
  txn?: TxnRequest;
}

/** The answer to one {@link RequestOp}: the member of the same name is set. */
export interface ResponseOp {
  range?: RangeResponse;
  put?: PutResponse;
  deleteRange?: DeleteRangeResponse;
  txn?: TxnResponse;
}

/** If every `compare` holds, apply `success`, else `failure`, in one revision. */
export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure?: RequestOp[];
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

/** Creates a watcher on the client's watch stream. */
export interface WatchCreateRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  /** Watch from this revision on; 0 or unset: from now (synced at birth). */
  startRevision?: bigint;
  /** The client's id for the watcher (etcd ≥ 3.4); answers carry it. */
  watchId: number;
  filters?: ('noPut' | 'noDelete')[];
  prevKv?: boolean;
  progressNotify?: boolean;
}

/** One message to the watch stream: exactly one member is set. */
export interface WatchRequest {
  create?: WatchCreateRequest;
  cancel?: { watchId: number };
  /** Asks for a progress answer (watch id -1) on the stream. */
  progress?: true;
}

/** A change to a key. */
export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv: KeyValue | undefined;
}

export interface WatchResponse {
  header: ResponseHeader;
  /** The watcher this is about; -1 for a progress answer to the whole stream. */
  watchId: number;
  created: boolean;
  canceled: boolean;
  /** Set when the watcher was cancelled because its start revision was compacted. */
  compactRevision: bigint;
  cancelReason: string;
  events: WatchEvent[];
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  /** The lease id, decimal. */
  id: string;
  /** The TTL granted, in seconds. */
  ttl: number;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  id: string;
  /** The TTL the lease was renewed to, in seconds; 0 or less: the lease is gone. */
  ttl: number;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  id: string;
  /** Seconds left; -1 when the lease does not exist. */
  ttl: number;
  grantedTtl: number;
}
