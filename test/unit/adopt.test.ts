// Key adoption, on the in-memory fake of the port: a session that adopts a lease (`leaseId`) takes
// back what the lease holds — a Mutex key as held with its old token, a semaphore permit of the same
// weight — and deletes the lease's other leftovers; a key at our own name that another lease (or no
// lease) holds is refused with ForeignKeyError and left alone. Proven against a real etcd in
// test/integration/adopt.test.ts and foreign-own-key.test.ts.
import { expect, test } from 'vitest';
import { ForeignKeyError, Mutex, ReadWriteLock, Semaphore, Session } from '../../src/index.js';
import { onFake, sessionsOn } from './fake-client.js';

const call = { timeoutMs: 1000 };
const b = (s: string): Buffer => Buffer.from(s);
const keys = (f: ReturnType<typeof onFake>): string[] => f.fake.store.kvs().map((kv) => kv.key.toString());

test('an adopted lease: its Mutex key is held again, with its old token', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const before = await new Mutex(s[0]!, 'jobs').lock();
  await using adopted = await Session.create(f.client, { leaseId: s[0]!.leaseId });
  const again = await new Mutex(adopted, 'jobs').lock({ signal: AbortSignal.timeout(2000) });
  expect([again.key, again.token]).toEqual([before.key, before.token]);
  expect(keys(f)).toEqual([before.key]);
});

test.each([
  ['another lease', true, /has our key's name but is bound to lease [0-9a-f]+, not to ours/],
  ['no lease', false, /has our key's name but is bound to no lease, not to ours/],
])('a key at our own name on %s is refused with ForeignKeyError and left alone', async (_, leased, message) => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const lease = leased ? (await f.fake.leaseGrant(30, call)).id : undefined;
  const own = `jobs/${s[0]!.leaseHex}`;
  await f.fake.txn({ compare: [], success: [{ put: { key: b(own), value: b('theirs'), ...(lease ? { lease } : {}) } }] }, call);
  const mutex = new Mutex(s[0]!, 'jobs');
  const refused = await mutex.lock({ signal: AbortSignal.timeout(2000) }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(ForeignKeyError);
  expect(refused).toMatchObject({ key: own, message: expect.stringMatching(message) as unknown });
  await expect(mutex.tryLock()).rejects.toBeInstanceOf(ForeignKeyError);
  const kv = f.fake.store.kvs()[0]!;
  expect([kv.key.toString(), kv.value.toString(), kv.lease]).toEqual([own, 'theirs', lease ?? '0']);
});

test("an adopted lease: a permit of the same weight is resumed, the lease's other leftovers deleted", async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2);
  const sem = (session: Session): Semaphore => new Semaphore(session, 'sem', { permits: 5 });
  const theirs = await sem(s[1]!).acquire({ weight: 1 }); // another lease's: neither resumed nor deleted
  const light = await sem(s[0]!).acquire({ weight: 1 });
  const heavy = await sem(s[0]!).acquire({ weight: 3 });
  const reader = await new ReadWriteLock(s[0]!, 'cfg').readLock();
  await using adopted = await Session.create(f.client, { leaseId: s[0]!.leaseId });
  const resumed = await sem(adopted).acquire({ weight: 3, signal: AbortSignal.timeout(2000) });
  expect([resumed.key, resumed.token]).toEqual([heavy.key, heavy.token]);
  expect(keys(f)).toEqual([reader.key, heavy.key, theirs.key].sort()); // our weight-1 permit is gone; the lock is another name
  const read = await new ReadWriteLock(adopted, 'cfg').readLock({ signal: AbortSignal.timeout(2000) });
  expect([read.key, read.token]).toEqual([reader.key, reader.token]);
  expect(keys(f)).not.toContain(light.key);
});
