import { describe, expect, test } from 'vitest';
import type { Kv } from '../transport/etcd.js';
import { assemble } from './assemble.js';
import { classify, displayKey } from './layout.js';

let revision = 10n;
function kv(key: string | Buffer, value = '', lease = '0'): Kv {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  return { key: bytes.toString(), bytes, value: Buffer.from(value), createRevision: ++revision, modRevision: revision, lease };
}
const L = '1234'; // lease 0x1234 = 4660
const lease = String(0x1234);

describe('classify', () => {
  test.each([
    [kv(`jobs/${L}`, '', lease), { kind: 'queue', name: 'jobs' }],
    [kv(`a/b/${L}`, 'pod', lease), { kind: 'queue', name: 'a/b' }],
    [kv(`cfg/read/${L}-x0`, '', lease), { kind: 'rwlock', name: 'cfg', mode: 'read' }],
    [kv(`cfg/write/1733480000000000000`, '', lease), { kind: 'rwlock', name: 'cfg', mode: 'write' }],
    [kv('s/holders/x', '{"permits":3,"weight":2}', lease), { kind: 'semaphore', name: 's', role: 'holder', weight: 2, permits: 3 }],
    [kv('p/waiters/x', '', lease), { kind: 'double-barrier', name: 'p', role: 'waiter' }],
    [kv('p/ready', '{"count":1,"members":["3"]}'), { kind: 'double-barrier', name: 'p', role: 'record', count: 1, members: [3n] }],
    [kv('gate', ''), { kind: 'barrier', name: 'gate' }],
  ])('%#', (k, part) => {
    expect(classify(k)).toEqual(part);
  });

  test.each([
    [kv(`jobs/${L}`, '', '0'), 'without a lease'],
    [kv('jobs/abcd', '', lease), 'suffix is not its lease (1234)'],
    [kv('config/url', 'postgres://'), "no primitive's layout"],
    [kv(Buffer.from([0x61, 0x2f, 0xff])), 'not valid UTF-8'],
  ])('foreign %#', (k, reason) => {
    expect(classify(k)).toEqual({ kind: 'foreign', reason: expect.stringContaining(reason) });
  });

  test('problems: a record that is not valid, a lock key with a value, no lease', () => {
    expect(classify(kv('s/holders/x', '{"permits":1,"weight":2}', lease))).toMatchObject({ kind: 'semaphore', problem: expect.stringContaining('weight 2') });
    expect(classify(kv('cfg/read/x', 'v', lease))).toMatchObject({ kind: 'rwlock', problem: expect.stringContaining('a value of 1 bytes') });
    expect(classify(kv('s/holders/x', '{"permits":3,"weight":2}'))).toMatchObject({ kind: 'semaphore', problem: expect.stringContaining('no lease') });
  });
});

describe('assemble', () => {
  test('a group of keys that all have problems is foreign; one sound key keeps the odd ones in place', () => {
    const alone = assemble([kv('s/holders/x', 'nope', lease)]);
    expect(alone.primitives).toEqual([]);
    expect(alone.foreign.map((f) => f.reason)).toEqual([expect.stringContaining('not a permit record')]);
    const mixed = assemble([kv('s/holders/a', '{"permits":3,"weight":1}', lease), kv('s/holders/b', 'nope', lease)]);
    expect(mixed.primitives[0]).toMatchObject({ kind: 'semaphore', permits: { used: 1, total: 3 } });
    expect(mixed.primitives[0]!.holders.map((h) => h.problem)).toEqual([undefined, expect.stringContaining('not a permit record')]);
  });

  test('a foreign key one segment below a lock joins its queue, marked; elsewhere it stays foreign', () => {
    const { primitives, foreign } = assemble([kv(`jobs/${L}`, '', lease), kv('jobs/notes', 'hello'), kv('other/notes', 'hello')]);
    expect(primitives).toHaveLength(1);
    expect(primitives[0]!.waiters).toEqual([expect.objectContaining({ key: 'jobs/notes', problem: expect.stringContaining('counts it as a contender') })]);
    expect(foreign.map((f) => f.key)).toEqual(['other/notes']);
  });

  test('keys of one txn on several lock names are a MultiLock; an empty ready alone is a barrier', () => {
    const a = kv(`a/${L}`, '', lease);
    const b = { ...kv(`b/${L}`, '', lease), createRevision: a.createRevision };
    const { primitives } = assemble([a, b, kv('p/ready', '')]);
    expect(primitives.map((p) => [p.kind, p.name, p.holders[0]!.multiLock])).toEqual([
      ['mutex', 'a', ['a', 'b']],
      ['mutex', 'b', ['a', 'b']],
      ['barrier', 'p/ready', undefined],
    ]);
  });

  test('displayKey shows bytes that are not UTF-8 as \\xNN', () => {
    expect(displayKey(Buffer.concat([Buffer.from('a/é🔒'), Buffer.from([0xff, 0xc3])]))).toBe('a/é🔒\\xff\\xc3');
  });
});
