// The semaphore's capacity accounting, on the in-memory fake of the port: weights add up to at most
// `permits`, the queue is strictly FIFO (a heavy head blocks lighter ones behind it), and a holder key
// whose record another program wrote — garbage, out of range, lease-less, other permits — is refused,
// never counted as free capacity. Proven against a real etcd in test/integration/semaphore.test.ts,
// hostile.test.ts and test/fault/semaphore.test.ts.
import { expect, test } from 'vitest';
import { ForeignKeyError, PermitsMismatchError, Semaphore } from '../../src/index.js';
import { onFake, sessionsOn, settle, track } from './fake-client.js';

const call = { timeoutMs: 1000 };
const b = (s: string): Buffer => Buffer.from(s);

test('weights add up to at most permits; a release admits the head when it fits', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 4);
  const sem = (i: number): Semaphore => new Semaphore(s[i]!, 'sem', { permits: 3 });
  const a = await sem(0).acquire({ weight: 2 });
  const bb = await sem(1).acquire({ weight: 1, signal: AbortSignal.timeout(2000) });
  const c = track(sem(2).acquire({ weight: 1 }));
  await settle();
  const d = track(sem(3).acquire({ weight: 2 }));
  await settle();
  expect([c.state, d.state]).toEqual(['pending', 'pending']);
  expect(await sem(0).tryAcquire()).toBeNull();
  await bb.release();
  expect((await c.promise).weight).toBe(1); // 2 + 1
  await settle();
  expect(d.state).toBe('pending'); // 2 + 1 + 2 > 3
  await a.release();
  expect((await d.promise).weight).toBe(2); // 1 + 2
  expect((await sem(0).holders()).map((h) => h.weight)).toEqual([1, 2]);
});

test('strict FIFO: a heavy head blocks a lighter acquisition behind it that would fit', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 3);
  const sem = (i: number): Semaphore => new Semaphore(s[i]!, 'sem', { permits: 3 });
  const a = await sem(0).acquire({ weight: 2 });
  const heavy = track(sem(1).acquire({ weight: 2 }));
  await settle();
  const light = track(sem(2).acquire({ weight: 1 }));
  await settle();
  expect([heavy.state, light.state]).toEqual(['pending', 'pending']);
  expect(await sem(2).tryAcquire({ weight: 1 })).toBeNull();
  await a.release();
  expect([(await heavy.promise).weight, (await light.promise).weight]).toEqual([2, 1]);
});

const garbage = [
  Buffer.from([0xff, 0xfe]),
  b('🦀'),
  b('[]'),
  b('null'),
  b('{}'),
  b('{"permits":3,"weight":0}'),
  b('{"permits":3,"weight":-1}'),
  b('{"permits":3,"weight":1.5}'),
  b('{"permits":3,"weight":"1"}'),
  b('{"permits":3,"weight":4}'),
  b('{"permits":"3","weight":1}'),
  b('{"permits":3,"weight":1e400}'),
];

test.each(garbage.map((value) => [value.toString(), value]))('a holder record %j written by another program is refused, not counted as free', async (_, value) => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const { id: foreign } = await f.fake.leaseGrant(30, call);
  await f.fake.txn({ compare: [], success: [{ put: { key: b('sem/holders/theirs'), value, lease: foreign } }] }, call);
  const sem = new Semaphore(s[0]!, 'sem', { permits: 3 });
  const refused = await sem.acquire({ signal: AbortSignal.timeout(2000) }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(ForeignKeyError);
  expect(refused).toMatchObject({ key: 'sem/holders/theirs', message: expect.stringMatching(/^sem\/holders\/theirs: not a permit record .*; delete it$/) as unknown });
  await expect(sem.tryAcquire()).rejects.toBeInstanceOf(ForeignKeyError);
  expect(f.fake.store.kvs().map((kv) => kv.key.toString())).toEqual(['sem/holders/theirs']); // ours removed
});

test('a holder key without a lease, or with other permits, is refused; a nested name is not ours to judge', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const sem = new Semaphore(s[0]!, 'sem', { permits: 3 });
  const { id: foreign } = await f.fake.leaseGrant(30, call);
  await f.fake.txn({ compare: [], success: [{ put: { key: b('sem/holders/nested/x'), value: b('🦀'), lease: foreign } }] }, call);
  await (await sem.acquire({ weight: 3, signal: AbortSignal.timeout(2000) })).release();
  await f.fake.txn({ compare: [], success: [{ put: { key: b('sem/holders/other'), value: b('{"permits":5,"weight":1}'), lease: foreign } }] }, call);
  await expect(sem.acquire({ signal: AbortSignal.timeout(2000) })).rejects.toMatchObject({ name: 'PermitsMismatchError', expected: 3, actual: 5, key: 'sem/holders/other' });
  await expect(sem.acquire()).rejects.toBeInstanceOf(PermitsMismatchError);
  await f.fake.txn({ compare: [], success: [{ put: { key: b('sem/holders/other'), value: b('{"permits":3,"weight":1}') } }] }, call);
  await expect(sem.acquire({ signal: AbortSignal.timeout(2000) })).rejects.toMatchObject({ name: 'ForeignKeyError', message: expect.stringContaining('a holder key without a lease') as unknown });
});
