// etcd's int64 fields in and out of the generated code, at the edges the property test in
// codec.test.ts rarely draws: absent fields (a default), plain numbers, Longs whose low word reads
// negative, and the boundaries of the exact range of a number.
import Long from 'long';
import { describe, expect, test } from 'vitest';
import { big, decimal, IdTexts, small, wire, wireId } from './int64.js';

const max = Number.MAX_SAFE_INTEGER;

describe('int64', () => {
  test('an absent field (null or undefined) is zero in each form', () => {
    expect([big(null), big(undefined), small(null), small(undefined), decimal(null), decimal(undefined)]).toEqual([0n, 0n, 0, 0, '0', '0']);
  });

  test('a plain number (a default) converts as itself', () => {
    expect([big(5), small(5), decimal(5)]).toEqual([5n, 5, '5']);
    expect([big(0), small(-3), decimal(-3)]).toEqual([0n, -3, '-3']);
  });

  test('a Long whose low word reads negative (2^31 ≤ n < 2^32) keeps its value', () => {
    const n = Long.fromNumber(3_000_000_000); // high 0, low -1294967296 as a signed int32
    expect([n.high, n.low < 0]).toEqual([0, true]);
    expect([big(n), small(n), decimal(n)]).toEqual([3_000_000_000n, 3_000_000_000, '3000000000']);
    const negative = Long.fromNumber(-5);
    expect([big(negative), small(negative), decimal(negative)]).toEqual([-5n, -5, '-5']);
    const large = Long.fromString('7587867163469497377');
    expect([big(large), decimal(large)]).toEqual([7587867163469497377n, '7587867163469497377']);
  });

  test('wire(): a number exactly while it is exact (±(2^53 − 1)), a Long with the exact value beyond', () => {
    for (const n of [0, 7, -7, max, -max]) expect(wire(BigInt(n))).toBe(n);
    for (const n of [BigInt(max) + 1n, -BigInt(max) - 1n, 2n ** 62n, -(2n ** 63n)]) {
      const out = wire(n);
      expect(Long.isLong(out)).toBe(true);
      expect((out as Long).toString()).toBe(n.toString());
    }
  });

  test('wireId(): short ids as numbers, long ones as exact Longs; anything but a decimal int64 is refused, naming it', () => {
    expect(wireId('5')).toBe(5);
    expect(wireId('-12')).toBe(-12);
    expect(wireId('900719925474099')).toBe(900719925474099); // 15 digits: exact as a number
    const sixteen = wireId('9007199254740993'); // 2^53 + 1: a number would round it
    expect(Long.isLong(sixteen) && sixteen.toString()).toBe('9007199254740993');
    for (const bad of ['x12', '12x', '', '1.5', '0x1f', '123456789012345678901', ' 1']) {
      expect(() => wireId(bad)).toThrow(`Expected a decimal int64 id, got ${JSON.stringify(bad)}`);
    }
  });
});

test('protobufjs decodes every int64 as a Long (the `long` package is loaded), so ids above 2^53 stay exact', async () => {
  const { etcdserverpb: pb } = await import('./rpc.js');
  const id = Long.fromString('7587867163469497377');
  const decoded = pb.LeaseGrantResponse.decode(pb.LeaseGrantResponse.encode({ ID: id, TTL: 5 }).finish());
  expect(Long.isLong(decoded.ID)).toBe(true);
  expect(decimal(decoded.ID)).toBe('7587867163469497377');
});

test('IdTexts: signed and unsigned twins with the high bit set, a low word that reads negative, plain numbers in a row: each its own text', () => {
  const texts = new IdTexts();
  const signed = Long.fromBits(1, -1, false);
  const unsigned = Long.fromBits(1, -1, true);
  expect([texts.of(signed), texts.of(unsigned), texts.of(signed)]).toEqual(['-4294967295', '18446744069414584321', '-4294967295']);
  expect(texts.of(Long.fromNumber(3_000_000_000))).toBe('3000000000');
  expect([texts.of(5), texts.of(7), texts.of(undefined)]).toEqual(['5', '7', '0']);
});
