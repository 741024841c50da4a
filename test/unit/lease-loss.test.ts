// Faults never lose a lock silently, on the in-memory fake of the port: when etcd says the lease is
// gone, every handle taken on it aborts its signal with LeaseLostError and reports not held, a guarded
// commit is refused, and an acquisition still waiting rejects with LeaseLostError rather than resolve;
// a waiter whose key someone else deleted rejects with NotHeldError. Proven against a real etcd in
// test/integration/session.test.ts, recovery.test.ts and test/fault/keep-alive.test.ts.
import { expect, test } from 'vitest';
import { isLeaseLostError, LeaseLostError, Mutex, NotHeldError, ReadWriteLock, Semaphore } from '../../src/index.js';
import { abortReason, onFake, sessionsOn, track } from './fake-client.js';

const call = { timeoutMs: 1000 };

test("a lease etcd reports gone: every handle's signal aborts with LeaseLostError, nothing is held", async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1, { keepAliveInterval: 50 });
  const session = s[0]!;
  const handles = [
    await new Mutex(session, 'jobs').lock(),
    await new ReadWriteLock(session, 'cfg').readLock(),
    await new Semaphore(session, 'sem', { permits: 2 }).acquire(),
  ];
  await f.fake.leaseRevoke(session.leaseId, call); // as etcd does when the lease expires
  const reasons = await Promise.all(handles.map(async (h) => abortReason(h.signal))); // the keep-alive asks every 50 ms
  for (const reason of reasons) expect(reason).toBeInstanceOf(LeaseLostError);
  expect(handles.map((h) => h.held)).toEqual([false, false, false]);
  expect(session.alive).toBe(false);
  await expect(handles[0]!.commit()).rejects.toBeInstanceOf(NotHeldError);
  await expect(new Mutex(session, 'jobs').lock()).rejects.toBeInstanceOf(LeaseLostError);
});

test('an acquisition waiting when its lease goes rejects with LeaseLostError, not with a handle', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2, { keepAliveInterval: 50 });
  const holder = await new Mutex(s[0]!, 'jobs').lock();
  const waiting = track(new Mutex(s[1]!, 'jobs').lock());
  await f.fake.leaseRevoke(s[1]!.leaseId, call);
  const error = await waiting.promise.catch((e: unknown) => e);
  expect(isLeaseLostError(error)).toBe(true);
  expect(holder.held).toBe(true);
  expect(f.fake.store.kvs().map((kv) => kv.key.toString())).toEqual([holder.key]);
});

test('a waiter whose key someone else deleted rejects with NotHeldError; its lease lives on', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2, { keepAliveInterval: 50 });
  const holder = await new Mutex(s[0]!, 'jobs').lock();
  const waiting = track(new Mutex(s[1]!, 'jobs').lock());
  await new Promise((resolve) => setTimeout(resolve, 10));
  await f.fake.txn({ compare: [], success: [{ deleteRange: { key: Buffer.from(`jobs/${s[1]!.leaseHex}`) } }] }, call);
  await holder.release(); // wakes the waiter, which finds its own key gone
  const error = await waiting.promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(NotHeldError);
  expect((error as Error).message).toMatch(/was deleted by someone else while waiting/);
  expect(s[1]!.alive).toBe(true);
});
