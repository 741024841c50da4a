/**
 * The key-value half of the in-memory fake of the port (see fake-transport.ts): etcd's MVCC store as
 * leasehold uses it — revisions, create/mod revision and version per key, ranges with etcd's options
 * (prefix, limit, sort, keys only, count only, a past revision), txns with compares, deletes, and
 * compaction. Test-only, and no substitute for real etcd: `fake-transport.test.ts` holds it to the
 * answers a real etcd gives to the same requests.
 */
import type { Compare, DeleteRangeRequest, KeyValue, PutRequest, RangeRequest, RangeResponse, RequestOp, ResponseHeader, ResponseOp, TxnRequest, TxnResponse, WatchEvent } from '../../src/transport/messages.js';
import { TransportError } from '../../src/transport/port.js';

export const fakeEndpoint = 'fake:2379';

/** A refusal as etcd gives it. */
export function refusal(code: string, kind: TransportError['kind'], message: string): TransportError {
  return new TransportError(message, { code, kind, endpoint: fakeEndpoint });
}

/** Whether `key` is in `[from, end)` (etcd's range semantics: no end = the key alone; `\0` = to the end). */
export function inRange(key: Buffer, from: Buffer, end: Buffer | undefined): boolean {
  if (!end || end.length === 0) return key.equals(from);
  if (end.length === 1 && end[0] === 0) return Buffer.compare(key, from) >= 0;
  return Buffer.compare(key, from) >= 0 && Buffer.compare(key, end) < 0;
}

function compareResult(order: number, result: Compare['result']): boolean {
  return { equal: order === 0, notEqual: order !== 0, greater: order > 0, less: order < 0 }[result];
}

const sortField = { key: null, version: 'version', create: 'createRevision', mod: 'modRevision', value: null } as const;

export class FakeStore {
  revision = 1n;
  compacted = 0n;
  /** Every version of every key, oldest first; a delete is a version with `version` 0n. */
  readonly #history = new Map<string, KeyValue[]>();
  /** Called with the events of each revision that has any. */
  onEvents: (events: WatchEvent[], revision: bigint) => void = () => undefined;

  header(): ResponseHeader {
    return { revision: this.revision, memberId: '1', raftTerm: 1n };
  }

  /** The live keys at `revision` (default: now), in key order. */
  kvs(revision = this.revision): KeyValue[] {
    const out: KeyValue[] = [];
    for (const versions of this.#history.values()) {
      const kv = versions.findLast((v) => v.modRevision <= revision);
      if (kv && kv.version > 0n) out.push(kv);
    }
    return out.sort((a, b) => Buffer.compare(a.key, b.key));
  }

  /** The newest version of `key` (live or deleted), for compares. */
  #current(key: Buffer): KeyValue | undefined {
    const kv = this.#history.get(key.toString('hex'))?.at(-1);
    return kv && kv.version > 0n ? kv : undefined;
  }

  /** A range; inside a txn, `now` is the revision its writes so far make (they are visible to its reads). */
  range(r: RangeRequest, now = this.revision): RangeResponse {
    const at = r.revision && r.revision > 0n ? r.revision : now;
    if (at < this.compacted) throw refusal('OUT_OF_RANGE', 'compacted', '11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted');
    if (at > now) throw refusal('OUT_OF_RANGE', 'final', '11 OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision');
    let kvs = this.kvs(at).filter((kv) => inRange(kv.key, r.key, r.rangeEnd));
    const count = BigInt(kvs.length); // etcd counts the range before its revision filters
    kvs = kvs.filter(
      (kv) =>
        (!r.minModRevision || kv.modRevision >= r.minModRevision) &&
        (!r.maxModRevision || kv.modRevision <= r.maxModRevision) &&
        (!r.minCreateRevision || kv.createRevision >= r.minCreateRevision) &&
        (!r.maxCreateRevision || kv.createRevision <= r.maxCreateRevision),
    );
    const field = sortField[r.sortTarget ?? 'key'];
    const order = r.sortOrder ?? 'none';
    if (order !== 'none' || field !== null) {
      const cmp = (a: KeyValue, b: KeyValue): number =>
        field === null ? (r.sortTarget === 'value' ? Buffer.compare(a.value, b.value) : Buffer.compare(a.key, b.key)) : a[field] < b[field] ? -1 : a[field] > b[field] ? 1 : 0;
      kvs.sort(order === 'descend' ? (a, b) => cmp(b, a) : cmp);
    }
    const limited = r.limit ? kvs.slice(0, r.limit) : kvs;
    const shown = r.countOnly ? [] : r.keysOnly ? limited.map((kv) => ({ ...kv, value: Buffer.alloc(0) })) : limited;
    return { header: { ...this.header(), revision: now }, kvs: shown, more: limited.length < kvs.length, count };
  }

  #holds(c: Compare): boolean {
    const kv = this.#current(c.key);
    const [have, want]: [bigint | Buffer | string, bigint | Buffer | string] =
      c.target === 'version' ? [kv?.version ?? 0n, c.version]
      : c.target === 'create' ? [kv?.createRevision ?? 0n, c.createRevision]
      : c.target === 'mod' ? [kv?.modRevision ?? 0n, c.modRevision]
      : c.target === 'lease' ? [BigInt(kv?.lease ?? '0'), BigInt(c.lease)]
      : [kv?.value ?? Buffer.alloc(0), c.value];
    if (typeof have === 'bigint' && typeof want === 'bigint') return compareResult(have < want ? -1 : have > want ? 1 : 0, c.result);
    if (c.target === 'value' && !kv) return false; // etcd: a value compare on a missing key fails
    return compareResult(Buffer.compare(have as Buffer, want as Buffer), c.result);
  }

  /** Applies `ops` at one new revision (when any of them writes). `leaseOk` says whether a lease exists. */
  txn(t: TxnRequest, leaseOk: (id: string) => boolean): TxnResponse {
    const succeeded = t.compare.every((c) => this.#holds(c));
    const ops = succeeded ? t.success : (t.failure ?? []);
    for (const op of ops) if (op.put?.lease && op.put.lease !== '0' && !leaseOk(op.put.lease)) throw refusal('NOT_FOUND', 'lease-not-found', '5 NOT_FOUND: etcdserver: requested lease not found');
    const writes = ops.some((op) => op.put || op.deleteRange);
    const next = writes ? this.revision + 1n : this.revision;
    const events: WatchEvent[] = [];
    // Each op answers at the revision the txn's writes so far make (etcd: begin revision, +1 once it wrote).
    const responses = ops.map((op) => this.#apply(op, next, events, events.length > 0 ? next : this.revision));
    if (writes) this.revision = next;
    if (events.length > 0) this.onEvents(events, next);
    return { header: this.header(), succeeded, responses };
  }

  #apply(op: RequestOp, revision: bigint, events: WatchEvent[], now: bigint): ResponseOp {
    if (op.range) return { range: this.range(op.range, now) };
    const header = { ...this.header(), revision };
    if (op.put) return { put: { header, prevKv: this.#put(op.put, revision, events) } };
    if (op.deleteRange) {
      const prevKvs = this.deleteRange(op.deleteRange, revision, events);
      return { deleteRange: { header: prevKvs.length > 0 ? header : { ...header, revision: now }, deleted: BigInt(prevKvs.length), prevKvs: op.deleteRange.prevKv ? prevKvs : [] } };
    }
    throw refusal('UNIMPLEMENTED', 'final', '12 UNIMPLEMENTED: nested txns are not in the fake');
  }

  #put(p: PutRequest, revision: bigint, events: WatchEvent[]): KeyValue | undefined {
    const prev = this.#current(p.key);
    const kv: KeyValue = {
      key: Buffer.from(p.key),
      value: p.ignoreValue && prev ? prev.value : Buffer.from(p.value),
      createRevision: prev?.createRevision ?? revision,
      modRevision: revision,
      version: (prev?.version ?? 0n) + 1n,
      lease: p.ignoreLease && prev ? prev.lease : (p.lease ?? '0'),
    };
    this.#versions(p.key).push(kv);
    events.push({ type: 'put', kv, prevKv: prev });
    return p.prevKv ? prev : undefined;
  }

  /** Deletes the live keys in the range at `revision`; returns them. */
  deleteRange(d: DeleteRangeRequest, revision: bigint, events: WatchEvent[]): KeyValue[] {
    const gone = this.kvs().filter((kv) => inRange(kv.key, d.key, d.rangeEnd));
    for (const prev of gone) {
      const tombstone: KeyValue = { key: prev.key, value: Buffer.alloc(0), createRevision: 0n, modRevision: revision, version: 0n, lease: '0' };
      this.#versions(prev.key).push(tombstone);
      events.push({ type: 'delete', kv: tombstone, prevKv: prev });
    }
    return gone;
  }

  /** Deletes `keys` (a lease's) in one new revision. */
  deleteKeys(keys: Buffer[]): void {
    if (keys.length === 0) return;
    const events: WatchEvent[] = [];
    const next = this.revision + 1n;
    for (const key of keys) this.deleteRange({ key }, next, events);
    if (events.length === 0) return;
    this.revision = next;
    this.onEvents(events, next);
  }

  #versions(key: Buffer): KeyValue[] {
    const id = key.toString('hex');
    let versions = this.#history.get(id);
    if (!versions) this.#history.set(id, (versions = []));
    return versions;
  }
}
