/**
 * etcd's answers, from the wire to leasehold's responses (messages.ts), through the generated
 * protobufjs code (rpc.js). Bytes come back as views of the received buffer (no copy).
 */
import type {
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseTimeToLiveResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
  WatchResponse,
} from '../messages.js';
import { big, decimal, IdTexts, small } from './int64.js';
import { etcdserverpb as pb, mvccpb } from './rpc.js';

const empty = Buffer.alloc(0);

function bytes(value: Uint8Array | null | undefined): Buffer {
  if (!value || value.length === 0) return empty;
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
}

/**
 * Member ids and the leases of keys read back: every answer's header carries the member's id, and a
 * lock's keys carry a few sessions' leases, again and again (see `IdTexts`). The headers of a txn's
 * own responses carry no member id (0), which `IdTexts` answers without its cache.
 */
const ids = new IdTexts();


function header(h: pb.ResponseHeader.$Properties | null | undefined): ResponseHeader {
  return { revision: big(h?.revision), memberId: ids.of(h?.memberId), raftTerm: big(h?.raftTerm) };
}

function keyValue(kv: mvccpb.KeyValue.$Properties): KeyValue {
  return {
    key: bytes(kv.key),
    value: bytes(kv.value),
    createRevision: big(kv.createRevision),
    modRevision: big(kv.modRevision),
    version: big(kv.version),
    lease: ids.of(kv.lease),
  };
}

function range(r: pb.RangeResponse.$Properties): RangeResponse {
  return { header: header(r.header), kvs: (r.kvs ?? []).map(keyValue), more: r.more ?? false, count: big(r.count) };
}

function responseOp(op: pb.ResponseOp.$Properties): ResponseOp {
  if (op.responseRange) return { range: range(op.responseRange) };
  if (op.responsePut) {
    const prev = op.responsePut.prevKv;
    return { put: { header: header(op.responsePut.header), prevKv: prev ? keyValue(prev) : undefined } };
  }
  if (op.responseDeleteRange) {
    const d = op.responseDeleteRange;
    return { deleteRange: { header: header(d.header), deleted: big(d.deleted), prevKvs: (d.prevKvs ?? []).map(keyValue) } };
  }
  if (op.responseTxn) return { txn: txn(op.responseTxn) };
  return {};
}

function txn(t: pb.TxnResponse.$Properties): TxnResponse {
  return { header: header(t.header), succeeded: t.succeeded ?? false, responses: (t.responses ?? []).map(responseOp) };
}

export function decodeRange(buf: Uint8Array): RangeResponse {
  return range(pb.RangeResponse.decode(buf));
}

export function decodeTxn(buf: Uint8Array): TxnResponse {
  return txn(pb.TxnResponse.decode(buf));
}

export function decodeWatch(buf: Uint8Array): WatchResponse {
  const w = pb.WatchResponse.decode(buf);
  return {
    header: header(w.header),
    watchId: small(w.watchId),
    created: w.created,
    canceled: w.canceled,
    compactRevision: big(w.compactRevision),
    cancelReason: w.cancelReason,
    events: w.events.map((e) => ({
      type: e.type === mvccpb.Event.EventType.Delete ? 'delete' : 'put',
      kv: keyValue(e.kv ?? {}),
      prevKv: e.prevKv ? keyValue(e.prevKv) : undefined,
    })),
  };
}

export function decodeLeaseGrant(buf: Uint8Array): LeaseGrantResponse & { error: string } {
  const g = pb.LeaseGrantResponse.decode(buf);
  return { header: header(g.header), id: decimal(g.ID), ttl: small(g.TTL), error: g.error };
}

export function decodeKeepAlive(buf: Uint8Array): LeaseKeepAliveResponse {
  const k = pb.LeaseKeepAliveResponse.decode(buf);
  return { header: header(k.header), id: decimal(k.ID), ttl: small(k.TTL) };
}

export function decodeTimeToLive(buf: Uint8Array): LeaseTimeToLiveResponse {
  const t = pb.LeaseTimeToLiveResponse.decode(buf);
  return { header: header(t.header), id: decimal(t.ID), ttl: small(t.TTL), grantedTtl: small(t.grantedTTL) };
}

export function decodeAuthenticate(buf: Uint8Array): string {
  return pb.AuthenticateResponse.decode(buf).token;
}
