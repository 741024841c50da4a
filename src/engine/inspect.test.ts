import { describe, expect, test } from 'vitest';
import type { Kv } from '../transport/etcd.js';
import { contender, firstHolds, inQueueOrder, permitHolders, rwHolders } from './inspect.js';

function kv(key: string | Buffer, createRevision: number, value = '', lease = '255'): Kv {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  return { key: bytes.toString(), bytes, value: Buffer.from(value), createRevision: BigInt(createRevision), modRevision: BigInt(createRevision), lease };
}

const keys = (cs: readonly { key: string }[]): string[] => cs.map((c) => c.key);

describe('introspection views', () => {
  test('queue order is create revision, then key bytes (one txn can create several keys)', () => {
    const sorted = inQueueOrder([kv('n/c', 9), kv('n/b', 7), kv(Buffer.from([0x6e, 0x2f, 0xff]), 7), kv('n/a', 8)]);
    expect(sorted.map((k) => [...k.bytes].at(-1))).toEqual([0x62, 0xff, 0x61, 0x63]);
  });

  test('a contender carries key, token, lease (decimal and hex) and value; a key without lease shows 0', () => {
    expect(contender(kv('n/ff', 12, 'v', '255'))).toEqual({ key: 'n/ff', token: 12n, leaseId: '255', leaseHex: 'ff', value: 'v' });
    expect(contender(kv('n/x', 3, '', '0'))).toMatchObject({ leaseId: '0', leaseHex: '0' });
  });

  test('Mutex/Election: the first holds, the rest wait in order; empty when free', () => {
    expect(firstHolds([])).toEqual({ holders: [], waiters: [] });
    const view = firstHolds([kv('n/a', 1), kv('n/b', 2), kv('n/c', 3)]);
    expect(keys(view.holders)).toEqual(['n/a']);
    expect(keys(view.waiters)).toEqual(['n/b', 'n/c']);
  });

  test('ReadWriteLock: readers before the first writer share it; a first writer holds alone', () => {
    const w = 'n/write/';
    const readersFirst = rwHolders([kv('n/read/1', 1), kv('n/read/2', 2), kv('n/write/3', 3), kv('n/read/4', 4)], w);
    expect(readersFirst.holders.map((c) => [c.key, c.mode])).toEqual([['n/read/1', 'read'], ['n/read/2', 'read']]);
    expect(readersFirst.waiters.map((c) => [c.key, c.mode])).toEqual([['n/write/3', 'write'], ['n/read/4', 'read']]);
    const writerFirst = rwHolders([kv('n/write/1', 1), kv('n/read/2', 2), kv('n/write/3', 3)], w);
    expect(keys(writerFirst.holders)).toEqual(['n/write/1']);
    expect(keys(writerFirst.waiters)).toEqual(['n/read/2', 'n/write/3']);
    expect(keys(rwHolders([kv('n/read/1', 1), kv('n/read/2', 2)], w).holders)).toEqual(['n/read/1', 'n/read/2']);
    expect(rwHolders([], w)).toEqual({ holders: [], waiters: [] });
  });

  test('Semaphore: holders/ hold and waiters/ wait, each with its record; a foreign value is reported, not dropped', () => {
    const view = permitHolders(
      [
        kv('s/holders/a', 1, '{"permits":5,"weight":2}'),
        kv('s/waiters/b', 2, '{"permits":5,"weight":4}'),
        kv('s/holders/c', 3, 'hello'),
        kv('s/waiters/d', 4, '{"permits":5,"weight":9}'),
      ],
      's/holders/',
    );
    expect(view.holders.map((c) => [c.key, c.weight, c.permits, c.problem])).toEqual([
      ['s/holders/a', 2, 5, undefined],
      ['s/holders/c', undefined, undefined, 'not a permit record (5 bytes that are not JSON)'],
    ]);
    expect(view.waiters.map((c) => [c.key, c.weight, c.problem])).toEqual([
      ['s/waiters/b', 4, undefined],
      ['s/waiters/d', undefined, 'not a permit record (weight 9 is not an integer from 1 to permits 5)'],
    ]);
    expect('problem' in view.holders[0]!).toBe(false);
  });
});
