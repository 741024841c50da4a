/**
 * leasehold's requests (messages.ts) to etcd's wire format, through the generated protobufjs code
 * (rpc.js). Unset fields are left out, as protobuf's defaults.
 */
import type { Compare, RangeRequest, RequestOp, TxnRequest, WatchRequest } from '../messages.js';
import { wire, wireId } from './int64.js';
import { etcdserverpb as pb } from './rpc.js';

const compareTarget = { version: 0, create: 1, mod: 2, value: 3, lease: 4 } as const;
const compareResult = { equal: 0, greater: 1, less: 2, notEqual: 3 } as const;
const sortOrder = { none: 0, ascend: 1, descend: 2 } as const;
const sortTarget = { key: 0, version: 1, create: 2, mod: 3, value: 4 } as const;
const filterType = { noPut: 0, noDelete: 1 } as const;

function compare(c: Compare): pb.Compare.$Properties {
  const out: pb.Compare.$Properties = { key: c.key, target: compareTarget[c.target], result: compareResult[c.result] };
  if (c.rangeEnd) out.rangeEnd = c.rangeEnd;
  switch (c.target) {
    case 'version':
      out.version = wire(c.version);
      break;
    case 'create':
      out.createRevision = wire(c.createRevision);
      break;
    case 'mod':
      out.modRevision = wire(c.modRevision);
      break;
    case 'value':
      out.value = c.value;
      break;
    case 'lease':
      out.lease = wireId(c.lease);
      break;
  }
  return out;
}

function range(r: RangeRequest): pb.RangeRequest.$Properties {
  // Field by field, not a loop over field names: this runs for nearly every request.
  const out: pb.RangeRequest.$Properties = { key: r.key };
  if (r.rangeEnd) out.rangeEnd = r.rangeEnd;
  if (r.limit) out.limit = r.limit;
  if (r.revision) out.revision = wire(r.revision);
  if (r.minModRevision) out.minModRevision = wire(r.minModRevision);
  if (r.maxModRevision) out.maxModRevision = wire(r.maxModRevision);
  if (r.minCreateRevision) out.minCreateRevision = wire(r.minCreateRevision);
  if (r.maxCreateRevision) out.maxCreateRevision = wire(r.maxCreateRevision);
  if (r.sortOrder) out.sortOrder = sortOrder[r.sortOrder];
  if (r.sortTarget) out.sortTarget = sortTarget[r.sortTarget];
  if (r.serializable) out.serializable = true;
  if (r.keysOnly) out.keysOnly = true;
  if (r.countOnly) out.countOnly = true;
  return out;
}

function requestOp(op: RequestOp): pb.RequestOp.$Properties {
  if (op.range) return { requestRange: range(op.range) };
  if (op.put) {
    const { key, value, lease, prevKv, ignoreValue, ignoreLease } = op.put;
    return { requestPut: { key, value, lease: lease === undefined ? 0 : wireId(lease), prevKv, ignoreValue, ignoreLease } };
  }
  if (op.deleteRange) return { requestDeleteRange: { ...op.deleteRange } };
  if (op.txn) return { requestTxn: txn(op.txn) };
  throw new TypeError('Expected a txn operation with one of range, put, deleteRange or txn set, got none');
}

function txn(t: TxnRequest): pb.TxnRequest.$Properties {
  return { compare: t.compare.map(compare), success: t.success.map(requestOp), failure: (t.failure ?? []).map(requestOp) };
}

export function encodeRange(r: RangeRequest): Uint8Array {
  return pb.RangeRequest.encode(range(r)).finish();
}

export function encodeTxn(t: TxnRequest): Uint8Array {
  return pb.TxnRequest.encode(txn(t)).finish();
}

export function encodeLeaseGrant(ttlSeconds: number): Uint8Array {
  return pb.LeaseGrantRequest.encode({ TTL: ttlSeconds }).finish();
}

/** LeaseRevoke, LeaseTimeToLive and LeaseKeepAlive requests: each is the lease id alone. */
export function encodeLeaseId(id: string): Uint8Array {
  return pb.LeaseRevokeRequest.encode({ ID: wireId(id) }).finish();
}

export function encodeAuthenticate(name: string, password: string): Uint8Array {
  return pb.AuthenticateRequest.encode({ name, password }).finish();
}

export function encodeWatch(w: WatchRequest): Uint8Array {
  if (w.create) {
    const c = w.create;
    return pb.WatchRequest.encode({
      createRequest: {
        key: c.key,
        rangeEnd: c.rangeEnd ?? null,
        startRevision: c.startRevision ? wire(c.startRevision) : 0,
        watchId: c.watchId,
        filters: (c.filters ?? []).map((f) => filterType[f]),
        prevKv: c.prevKv ?? false,
        progressNotify: c.progressNotify ?? false,
      },
    }).finish();
  }
  if (w.cancel) return pb.WatchRequest.encode({ cancelRequest: { watchId: w.cancel.watchId } }).finish();
  return pb.WatchRequest.encode({ progressRequest: {} }).finish();
}
