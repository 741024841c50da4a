// The codec against the generated code's own encoder/decoder: leasehold's messages go out as etcd's
// protos say, and come back exactly (lease ids above 2^53, revisions as bigints, enums, oneofs).
import Long from 'long';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { decimal, IdTexts, wireId } from './int64.js';
import { decodeKeepAlive, decodeRange, decodeTimeToLive, decodeTxn, decodeWatch } from './decode.js';
import { encodeLeaseGrant, encodeLeaseId, encodeRange, encodeTxn, encodeWatch } from './encode.js';
import { etcdserverpb as pb } from './rpc.js';

const bigLease = '7587867163469497377'; // > 2^53: a number would round it
const key = Buffer.from('jobs/nightly/694d7a1c0b3e4a21');

describe('encode', () => {
  test('a lock\'s join txn: compare create == 0 is sent, put carries the exact lease, ranges their options', () => {
    const wire = pb.TxnRequest.decode(
      encodeTxn({
        compare: [{ key, target: 'create', result: 'equal', createRevision: 0n }],
        success: [
          { range: { key: Buffer.from('jobs/'), rangeEnd: Buffer.from('jobs0'), sortTarget: 'create', sortOrder: 'descend', limit: 1, keysOnly: true, maxCreateRevision: 2n ** 60n } },
          { put: { key, value: Buffer.from('v'), lease: bigLease } },
        ],
        failure: [{ range: { key } }],
      }),
    );
    expect(wire.compare[0]!.target).toBe(1); // CREATE
    expect(wire.compare[0]!.targetUnion).toBe('createRevision');
    expect(String(wire.compare[0]!.createRevision)).toBe('0');
    const range = wire.success[0]!.requestRange!;
    expect([range.sortTarget, range.sortOrder, range.keysOnly, String(range.limit)]).toEqual([2, 2, true, '1']); // CREATE, DESCEND
    expect(String(range.maxCreateRevision)).toBe((2n ** 60n).toString());
    expect(String(wire.success[1]!.requestPut!.lease)).toBe(bigLease);
    expect(Buffer.from(wire.failure[0]!.requestRange!.key!)).toEqual(key);
  });

  test('every compare target and result goes out under its own field', () => {
    const compare = pb.TxnRequest.decode(
      encodeTxn({
        compare: [
          { key, target: 'version', result: 'greater', version: 3n },
          { key, target: 'mod', result: 'less', modRevision: 9n },
          { key, target: 'value', result: 'notEqual', value: Buffer.from('x') },
          { key, target: 'lease', result: 'equal', lease: bigLease, rangeEnd: Buffer.from('k') },
        ],
        success: [{ deleteRange: { key, rangeEnd: Buffer.from('z'), prevKv: true } }],
      }),
    ).compare;
    expect(compare.map((c) => [c.target, c.result, c.targetUnion])).toEqual([
      [0, 1, 'version'],
      [2, 2, 'modRevision'],
      [3, 3, 'value'],
      [4, 0, 'lease'],
    ]);
    expect(String(compare[3]!.lease)).toBe(bigLease);
  });

  test('a serializable read at a revision; lease ids; watch requests', () => {
    const range = pb.RangeRequest.decode(encodeRange({ key, serializable: true, revision: 42n }));
    expect([range.serializable, String(range.revision)]).toEqual([true, '42']);
    expect(String(pb.LeaseGrantRequest.decode(encodeLeaseGrant(10)).TTL)).toBe('10');
    expect(String(pb.LeaseRevokeRequest.decode(encodeLeaseId(bigLease)).ID)).toBe(bigLease);
    expect(() => encodeLeaseId('12ab')).toThrow(/decimal int64 id, got "12ab"/);
    const create = pb.WatchRequest.decode(encodeWatch({ create: { key, watchId: 5, filters: ['noPut'], startRevision: 7n } })).createRequest!;
    expect([String(create.watchId), create.filters, String(create.startRevision)]).toEqual(['5', [0], '7']);
    expect(String(pb.WatchRequest.decode(encodeWatch({ cancel: { watchId: 5 } })).cancelRequest!.watchId)).toBe('5');
    expect(pb.WatchRequest.decode(encodeWatch({ progress: true })).requestUnion).toBe('progressRequest');
  });
});

describe('decode', () => {
  const header = { revision: 77, memberId: Long.fromString('10276657743932975437', true), raftTerm: 3 };
  const kv = { key, value: Buffer.from('v'), createRevision: 70, modRevision: Long.fromString('9007199254740993'), version: 2, lease: Long.fromString(bigLease) };

  test('ranges and txns: revisions as exact bigints, lease and member ids as decimal strings', () => {
    const range = decodeRange(pb.RangeResponse.encode({ header, kvs: [kv], more: true, count: 4 }).finish());
    expect(range.header).toEqual({ revision: 77n, memberId: '10276657743932975437', raftTerm: 3n });
    expect(range.kvs[0]).toEqual({ key, value: Buffer.from('v'), createRevision: 70n, modRevision: 9007199254740993n, version: 2n, lease: bigLease });
    expect([range.more, range.count]).toEqual([true, 4n]);
    const txn = decodeTxn(
      pb.TxnResponse.encode({ header, succeeded: true, responses: [{ responseRange: { header, kvs: [] } }, { responsePut: { header } }, { responseDeleteRange: { header, deleted: 1 } }] }).finish(),
    );
    expect(txn.succeeded).toBe(true);
    expect(txn.responses.map((r) => Object.keys(r))).toEqual([['range'], ['put'], ['deleteRange']]);
    expect(txn.responses[2]!.deleteRange!.deleted).toBe(1n);
  });

  test('member ids: each header its own, also when they alternate (the decoder remembers the last one)', () => {
    const ids = ['10276657743932975437', '10276657743932975438', '5', '10276657743932975437', '9223372036854775807', '10276657743932975437'];
    for (const id of ids) {
      const memberId = id === '5' ? 5 : Long.fromString(id, true);
      expect(decodeRange(pb.RangeResponse.encode({ header: { revision: 1, memberId } }).finish()).header.memberId).toBe(id);
    }
  });

  test("a txn's own responses carry no member id ('0') between answers that carry the member's", () => {
    const nested = { revision: 77 }; // as etcd fills them: no member id
    for (let i = 0; i < 3; i++) {
      const txn = decodeTxn(pb.TxnResponse.encode({ header, responses: [{ responseRange: { header: nested } }, { responsePut: { header: nested } }] }).finish());
      expect([txn.header.memberId, txn.responses[0]!.range!.header.memberId, txn.responses[1]!.put!.header.memberId]).toEqual(['10276657743932975437', '0', '0']);
    }
    expect(decodeRange(pb.RangeResponse.encode({ header: { revision: 1, memberId: Long.fromString('18446744073709551615', true) } }).finish()).header.memberId).toBe('18446744073709551615');
    expect(decodeRange(pb.RangeResponse.encode({ header: { revision: 1 } }).finish()).header.memberId).toBe('0');
  });

  test('watch answers, keep-alives and time-to-live', () => {
    const watch = decodeWatch(pb.WatchResponse.encode({ header, watchId: 3, events: [{ type: 1, kv }, { type: 0, kv, prevKv: kv }] }).finish());
    expect(watch.events.map((e) => [e.type, e.prevKv === undefined])).toEqual([['delete', true], ['put', false]]);
    expect(decodeWatch(pb.WatchResponse.encode({ header, watchId: -1 }).finish()).watchId).toBe(-1);
    expect(decodeKeepAlive(pb.LeaseKeepAliveResponse.encode({ header, ID: Long.fromString(bigLease), TTL: 10 }).finish())).toMatchObject({ id: bigLease, ttl: 10 });
    expect(decodeTimeToLive(pb.LeaseTimeToLiveResponse.encode({ header, ID: 5, TTL: -1 }).finish())).toMatchObject({ id: '5', ttl: -1, grantedTtl: 0 });
  });
});

describe('int64', () => {
  // decimal() and wireId() take a native bigint path instead of Long's own (slow) conversions: they
  // must agree with Long on every int64, signed and unsigned, including the wrap-around of ids past 2^64.
  test('decimal() is Long.toString(), wireId() is Long.fromString()', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), fc.boolean(), (n, unsigned) => {
        const long = Long.fromBigInt(n, unsigned);
        expect(decimal(long)).toBe(long.toString());
        const id = n.toString();
        if (/^-?\d{1,20}$/.test(id)) {
          expect(String(wireId(id))).toBe(id.length < 16 ? id : Long.fromString(id).toString());
          expect(String(wireId(id))).toBe(id.length < 16 ? id : Long.fromString(id).toString()); // the same id again: the remembered conversion
        }
      }),
      { numRuns: 2000 },
    );
    expect(decimal(Long.fromString('18446744073709551615', true))).toBe('18446744073709551615');
    expect(decimal(Long.fromString('-9223372036854775808'))).toBe('-9223372036854775808');
    expect(String(wireId('99999999999999999999'))).toBe(Long.fromString('99999999999999999999').toString());
  });

  // IdTexts remembers ids by their low 32 bits: ids that share them (and signed/unsigned twins) must
  // each get their own text, whatever order they come in and however often.
  test('IdTexts.of() is Long.toString(), also for ids that share their low bits', () => {
    const texts = new IdTexts();
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer(), fc.integer({ min: 0, max: 3 }), fc.boolean()), { minLength: 1, maxLength: 20 }), (ids) => {
        for (const [high, low, unsigned] of [...ids, ...ids]) {
          const long = Long.fromBits(low, high, unsigned);
          expect(texts.of(long)).toBe(long.toString());
        }
      }),
      { numRuns: 500 },
    );
    expect([texts.of(5), texts.of(null), texts.of(Long.fromBits(0, 0, true))]).toEqual(['5', '0', '0']);
  });
});
