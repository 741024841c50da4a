/**
 * The port's messages (`../messages.ts`) as `etcd3`'s raw gRPC messages and back: what the etcd3
 * adapter sends on the client's own connections, and what it makes of the answers. etcd3 loads its
 * protos with `keepCase`, int64s as decimal strings, enums by name and unset fields filled in, so
 * every answer has every field; `oneof`s name their member (`response`, `request_union`).
 */
import type {
  ICompare,
  IKeyValue,
  ILeaseKeepAliveResponse,
  ILeaseTimeToLiveResponse,
  IRangeRequest,
  IRangeResponse,
  IRequestOp,
  IResponseHeader,
  IResponseOp,
  ITxnRequest,
  ITxnResponse,
  IWatchRequest,
  IWatchResponse,
} from 'etcd3';
import type {
  Compare,
  KeyValue,
  LeaseKeepAliveResponse,
  LeaseTimeToLiveResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  TxnRequest,
  TxnResponse,
  WatchRequest,
  WatchResponse,
} from '../messages.js';

const capital = <T extends string>(s: T): Capitalize<T> => (s.charAt(0).toUpperCase() + s.slice(1)) as Capitalize<T>;
const str = (v: bigint | undefined): string | undefined => (v === undefined ? undefined : v.toString());

function rangeRequest(r: RangeRequest): IRangeRequest {
  return {
    key: r.key,
    ...(r.rangeEnd ? { range_end: r.rangeEnd } : {}),
    ...(r.limit ? { limit: r.limit } : {}),
    ...(r.revision ? { revision: r.revision.toString() } : {}),
    ...(r.sortOrder ? { sort_order: capital(r.sortOrder) } : {}),
    ...(r.sortTarget ? { sort_target: capital(r.sortTarget) } : {}),
    ...(r.serializable ? { serializable: true } : {}),
    ...(r.keysOnly ? { keys_only: true } : {}),
    ...(r.countOnly ? { count_only: true } : {}),
    ...(r.minModRevision ? { min_mod_revision: str(r.minModRevision) } : {}),
    ...(r.maxModRevision ? { max_mod_revision: str(r.maxModRevision) } : {}),
    ...(r.minCreateRevision ? { min_create_revision: str(r.minCreateRevision) } : {}),
    ...(r.maxCreateRevision ? { max_create_revision: str(r.maxCreateRevision) } : {}),
  };
}

function compare(c: Compare): ICompare {
  const base: ICompare = { key: c.key, target: capital(c.target), result: c.result === 'notEqual' ? 'NotEqual' : capital(c.result) };
  if (c.rangeEnd) base.range_end = c.rangeEnd;
  switch (c.target) {
    case 'version':
      return { ...base, version: c.version.toString() };
    case 'create':
      return { ...base, create_revision: c.createRevision.toString() };
    case 'mod':
      return { ...base, mod_revision: c.modRevision.toString() };
    case 'value':
      return { ...base, value: c.value };
    case 'lease':
      return { ...base, lease: c.lease };
  }
}

function requestOp(op: RequestOp): IRequestOp {
  if (op.range) return { request_range: rangeRequest(op.range) };
  if (op.put) {
    const p = op.put;
    return {
      request_put: {
        key: p.key,
        value: p.value,
        ...(p.lease ? { lease: p.lease } : {}),
        ...(p.prevKv ? { prev_kv: true } : {}),
        ...(p.ignoreValue ? { ignore_value: true } : {}),
        ...(p.ignoreLease ? { ignore_lease: true } : {}),
      },
    };
  }
  if (op.deleteRange) {
    const d = op.deleteRange;
    return { request_delete_range: { key: d.key, ...(d.rangeEnd ? { range_end: d.rangeEnd } : {}), ...(d.prevKv ? { prev_kv: true } : {}) } };
  }
  if (op.txn) return { request_txn: txnRequest(op.txn) };
  throw new TypeError(`Expected a request op with one of range, put, deleteRange or txn, got ${JSON.stringify(Object.keys(op))}`);
}

/** A port range request as etcd3's. */
export { rangeRequest as toEtcd3Range };

/** A port txn request as etcd3's. */
export function txnRequest(t: TxnRequest): ITxnRequest {
  return { compare: t.compare.map(compare), success: t.success.map(requestOp), failure: (t.failure ?? []).map(requestOp) };
}

/** A port watch request as etcd3's. */
export function watchRequest(w: WatchRequest): IWatchRequest {
  if (w.create) {
    const c = w.create;
    return {
      create_request: {
        key: c.key,
        ...(c.rangeEnd ? { range_end: c.rangeEnd } : {}),
        start_revision: (c.startRevision ?? 0n).toString(),
        watch_id: c.watchId,
        ...(c.filters ? { filters: c.filters.map((f) => (f === 'noPut' ? 'Noput' : 'Nodelete')) } : {}),
        ...(c.prevKv ? { prev_kv: true } : {}),
        ...(c.progressNotify ? { progress_notify: true } : {}),
      },
    } as unknown as IWatchRequest;
  }
  if (w.cancel) return { cancel_request: { watch_id: w.cancel.watchId } } as unknown as IWatchRequest;
  return { progress_request: {} } as IWatchRequest;
}

const big = (v: string | number | undefined | null): bigint => (v === undefined || v === null || v === '' ? 0n : BigInt(v));

export function header(h: IResponseHeader | undefined | null): ResponseHeader {
  return { revision: big(h?.revision), memberId: String(h?.member_id ?? '0'), raftTerm: big(h?.raft_term) };
}

export function keyValue(kv: IKeyValue): KeyValue {
  return {
    key: kv.key,
    value: kv.value ?? Buffer.alloc(0),
    createRevision: big(kv.create_revision),
    modRevision: big(kv.mod_revision),
    version: big(kv.version),
    lease: String(kv.lease ?? '0'),
  };
}

export function rangeResponse(r: IRangeResponse): RangeResponse {
  return { header: header(r.header), kvs: (r.kvs ?? []).map(keyValue), more: Boolean(r.more), count: big(r.count) };
}

function responseOp(r: IResponseOp): ResponseOp {
  if (r.response_range) return { range: rangeResponse(r.response_range) };
  if (r.response_put) return { put: { header: header(r.response_put.header), prevKv: r.response_put.prev_kv ? keyValue(r.response_put.prev_kv) : undefined } };
  if (r.response_delete_range) {
    const d = r.response_delete_range;
    return { deleteRange: { header: header(d.header), deleted: big(d.deleted), prevKvs: (d.prev_kvs ?? []).map(keyValue) } };
  }
  if (r.response_txn) return { txn: txnResponse(r.response_txn) };
  return {};
}

export function txnResponse(t: ITxnResponse): TxnResponse {
  return { header: header(t.header), succeeded: Boolean(t.succeeded), responses: (t.responses ?? []).map(responseOp) };
}

export function watchResponse(w: IWatchResponse): WatchResponse {
  return {
    header: header(w.header),
    watchId: Number(w.watch_id),
    created: Boolean(w.created),
    canceled: Boolean(w.canceled),
    compactRevision: big(w.compact_revision),
    cancelReason: w.cancel_reason ?? '',
    events: (w.events ?? []).map((e) => ({
      type: e.type === 'Delete' ? 'delete' : 'put',
      kv: keyValue(e.kv),
      prevKv: e.prev_kv ? keyValue(e.prev_kv) : undefined,
    })),
  };
}

export function keepAliveResponse(r: ILeaseKeepAliveResponse): LeaseKeepAliveResponse {
  return { header: header(r.header), id: String(r.ID), ttl: Number(r.TTL) };
}

export function timeToLiveResponse(r: ILeaseTimeToLiveResponse): LeaseTimeToLiveResponse {
  return { header: header(r.header), id: String(r.ID), ttl: Number(r.TTL), grantedTtl: Number(r.grantedTTL) };
}

function etcd3Header(h: ResponseHeader): IResponseHeader {
  return { cluster_id: '0', member_id: h.memberId, revision: h.revision.toString(), raft_term: h.raftTerm.toString() };
}

function etcd3KeyValue(kv: KeyValue): IKeyValue {
  return {
    key: kv.key,
    value: kv.value,
    create_revision: kv.createRevision.toString(),
    mod_revision: kv.modRevision.toString(),
    version: kv.version.toString(),
    lease: kv.lease,
  };
}

/**
 * A port txn answer in etcd3's shape: what `handle.commit()` resolves with, whichever adapter made
 * the call (the public API keeps etcd3's types). `cluster_id` is not carried by the port: `'0'`.
 */
export function toEtcd3TxnResponse(t: TxnResponse): ITxnResponse {
  return {
    header: etcd3Header(t.header),
    succeeded: t.succeeded,
    responses: t.responses.map((r) => {
      const out: Partial<IResponseOp> = {};
      if (r.range) out.response_range = { header: etcd3Header(r.range.header), kvs: r.range.kvs.map(etcd3KeyValue), more: r.range.more, count: r.range.count.toString() };
      if (r.put) out.response_put = { header: etcd3Header(r.put.header), prev_kv: r.put.prevKv ? etcd3KeyValue(r.put.prevKv) : (null as unknown as IKeyValue) };
      if (r.deleteRange) {
        const d = r.deleteRange;
        out.response_delete_range = { header: etcd3Header(d.header), deleted: d.deleted.toString(), prev_kvs: d.prevKvs.map(etcd3KeyValue) };
      }
      if (r.txn) out.response_txn = toEtcd3TxnResponse(r.txn);
      return out as IResponseOp;
    }),
  };
}
