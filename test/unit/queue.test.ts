// The shared queue's decisions, on the in-memory fake of the port (milliseconds, no etcd): the order
// is the order of create revisions (not of key names), each waiter watches only the contender just
// ahead of it, another program's keys under the name are contenders (a nested name is not), a key
// without a lease is refused, and a waiter never counts its own key. Proven against a real etcd in
// test/integration/mutex.test.ts, foreign-own-key.test.ts and the fault suite.
import { expect, test } from 'vitest';
import { ForeignKeyError, Mutex } from '../../src/index.js';
import { EtcdOps } from '../../src/transport/etcd.js';
import { defaultRetryPolicy } from '../../src/transport/retry.js';
import { pick } from '../../src/engine/queue.js';
import { onFake, sessionsOn, settle, track, until, watching } from './fake-client.js';

const call = { timeoutMs: 1000 };
const b = (s: string): Buffer => Buffer.from(s);

test('waiters get the lock in create-revision order, each watching only the one just ahead', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 4);
  const key = (i: number): string => `jobs/${s[i]!.leaseHex}`;
  // Key names ascend with the lease ids (s0 < s1 < s2 < s3); the queue is in the order of joining.
  const order = [2, 0, 3, 1];
  const holder = await new Mutex(s[2]!, 'jobs').lock();
  const waiting = order.slice(1).map((i) => track(new Mutex(s[i]!, 'jobs').lock()));
  await until(watching(f, [key(2), key(0), key(3)]));
  expect(waiting.map((w) => w.state)).toEqual(['pending', 'pending', 'pending']);
  const tokens = [holder.token];
  let current = holder;
  for (const [n, w] of waiting.entries()) {
    await current.release();
    current = await w.promise;
    tokens.push(current.token);
    expect(current.key).toBe(key(order[n + 1]!));
    await settle();
    expect(waiting.slice(n + 1).map((later) => later.state)).toEqual(waiting.slice(n + 1).map(() => 'pending'));
  }
  await current.release();
  expect(tokens).toEqual([...tokens].sort((x, y) => (x < y ? -1 : 1)));
});

test("another program's key under the name is a contender; a nested name is not", async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const { id: foreign } = await f.fake.leaseGrant(30, call);
  // etcdctl lock's layout (`name/<lease hex>`) on its own lease, and a key of the name `jobs/nested`.
  await f.fake.txn({ compare: [], success: [{ put: { key: b('jobs/nested/x'), value: b('🦀'), lease: foreign } }] }, call);
  const theirs = `jobs/${BigInt(foreign).toString(16)}`;
  await f.fake.txn({ compare: [], success: [{ put: { key: b(theirs), value: b(''), lease: foreign } }] }, call);
  const lock = track(new Mutex(s[0]!, 'jobs').lock());
  await settle();
  expect(lock.state).toBe('pending');
  expect(f.fake.watched()).toEqual([theirs]);
  await f.fake.txn({ compare: [], success: [{ deleteRange: { key: b(theirs) } }] }, call);
  await until(() => lock.state === 'resolved', 1000); // the nested name's key, still there, blocks nobody
  await (await lock.promise).release();
});

test('a contender without a lease is refused with ForeignKeyError naming it, and our key is removed', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  await f.fake.txn({ compare: [], success: [{ put: { key: b('jobs/0'), value: b('') } }] }, call);
  const error = await new Mutex(s[0]!, 'jobs').lock({ signal: AbortSignal.timeout(2000) }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ForeignKeyError);
  expect(error).toMatchObject({ key: 'jobs/0', message: expect.stringContaining('jobs/0: a contender key without a lease') as unknown });
  expect(f.fake.store.kvs().map((kv) => kv.key.toString())).toEqual(['jobs/0']);
});

test('tryLock behind a holder: null, and its key is gone again', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2);
  const held = await new Mutex(s[0]!, 'jobs').lock();
  expect(await new Mutex(s[1]!, 'jobs').tryLock()).toBeNull();
  expect(f.fake.store.kvs().map((kv) => kv.key.toString())).toEqual([held.key]);
  await held.release();
  const mine = await new Mutex(s[1]!, 'jobs').tryLock();
  expect(mine?.key).toBe(`jobs/${s[1]!.leaseHex}`);
});

test('a waiter never takes its own key for a contender', () => {
  using f = onFake();
  const ops = new EtcdOps(f.fake, Buffer.alloc(0), defaultRetryPolicy(), 1000);
  const kv = (key: string, createRevision: bigint): never =>
    ({ key: b(key), value: b(''), createRevision, modRevision: createRevision, version: 1n, lease: '7' }) as never;
  const res = { header: { revision: 9n, memberId: '1', raftTerm: 1n }, kvs: [kv('jobs/own', 8n), kv('jobs/other', 5n)], more: false, count: 2n };
  expect(pick(ops, { prefix: 'jobs/' }, res, false, 'jobs/own')).toEqual({ key: 'jobs/other', bytes: b('jobs/other'), createRevision: 5n });
  expect(pick(ops, { prefix: 'jobs/' }, { ...res, kvs: [kv('jobs/own', 8n)] }, false, 'jobs/own')).toBeNull();
});

test('a contender whose key is not UTF-8 is watched by its bytes: its delete wakes the waiter', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const { id: foreign } = await f.fake.leaseGrant(30, call);
  const theirs = Buffer.concat([b('jobs/'), Buffer.from([0xff, 0xfe, 0x80])]);
  await f.fake.txn({ compare: [], success: [{ put: { key: theirs, value: b(''), lease: foreign } }] }, call);
  const lock = track(new Mutex(s[0]!, 'jobs').lock());
  await until(watching(f, [theirs.toString()]));
  await f.fake.txn({ compare: [], success: [{ deleteRange: { key: theirs } }] }, call);
  await until(() => lock.state === 'resolved', 1000); // by the delete event, not by the periodic re-read 1.7 s later
  await (await lock.promise).release();
});

test("a nested name's key between us and a contender does not hide the contender (a cut answer is read in full)", async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2);
  const holder = await new Mutex(s[0]!, 'jobs').lock();
  const { id: foreign } = await f.fake.leaseGrant(30, call);
  // Created after the holder's key and before ours: the newest key below ours is not a contender.
  await f.fake.txn({ compare: [], success: [{ put: { key: b('jobs/nested/x'), value: b(''), lease: foreign } }] }, call);
  const lock = track(new Mutex(s[1]!, 'jobs').lock());
  await until(watching(f, [holder.key]));
  await settle();
  expect(lock.state).toBe('pending');
  await holder.release();
  await until(() => lock.state === 'resolved', 1000);
  await (await lock.promise).release();
});

test('a waiter whose key was deleted and written again (a new create revision) while it waited never holds on the new key', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2);
  const holder = await new Mutex(s[0]!, 'jobs').lock();
  const lock = track(new Mutex(s[1]!, 'jobs').lock());
  await until(watching(f, [holder.key]));
  const own = b(`jobs/${s[1]!.leaseHex}`);
  const [kv] = (await f.fake.range({ key: own }, call)).kvs;
  await f.fake.txn({ compare: [], success: [{ deleteRange: { key: own } }] }, call);
  await f.fake.txn({ compare: [], success: [{ put: { key: own, value: b(''), lease: kv!.lease } }] }, call);
  await holder.release(); // wakes the waiter, whose key at the delete's revision is not the one it queued with
  await until(() => lock.state !== 'pending', 2000);
  expect(lock.state).toBe('rejected');
  expect(await lock.promise.catch((e: unknown) => (e as Error).name)).toBe('NotHeldError');
});

test("woken by the delete of the contender ahead, a waiter is not fooled by a nested name's key hiding an older holder", async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 3);
  const holder = await new Mutex(s[0]!, 'jobs').lock();
  const ahead = new AbortController();
  const first = track(new Mutex(s[1]!, 'jobs').lock({ signal: ahead.signal }));
  await until(watching(f, [holder.key]));
  const { id: foreign } = await f.fake.leaseGrant(30, call);
  await f.fake.txn({ compare: [], success: [{ put: { key: b('jobs/nested/x'), value: b(''), lease: foreign } }] }, call);
  const second = track(new Mutex(s[2]!, 'jobs').lock());
  await until(watching(f, [holder.key, `jobs/${s[1]!.leaseHex}`]));
  ahead.abort(new Error('gave up')); // its key goes: the second waiter wakes with the holder still holding
  await until(() => first.state === 'rejected');
  await settle(50);
  expect(second.state).toBe('pending');
  await holder.release();
  await until(() => second.state === 'resolved', 1000);
  await (await second.promise).release();
});
