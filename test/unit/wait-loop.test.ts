// How a wait rides out trouble, on the in-memory fake of the port: a transient failure of a waiter's
// read is a pause before the next pass, a final one (a permission refused) ends the wait and removes
// its key; a watch that breaks, or that etcd cancels behind a compaction, is followed by a re-read and
// a new watch; an observer whose snapshot read hits a compaction starts over. The session's retry
// policy is cockatiel's `noop`, so every failure reaches the wait itself. Proven against a real etcd
// in test/integration/outage.test.ts, recovery.test.ts and the fault suite.
import { noop } from 'cockatiel';
import { expect, test } from 'vitest';
import { Mutex, PermissionDeniedError, type LockHandle, type Session } from '../../src/index.js';
import type { TxnRequest } from '../../src/transport/messages.js';
import { refusal } from './fake-store.js';
import { onFake, sessionsOn, settle, track, until, watching } from './fake-client.js';

/** `jobs` held on the first session, waited for on the second (its wait under way). */
async function contended(s: Session[]): Promise<{ holder: LockHandle; waiter: ReturnType<typeof track<LockHandle>> }> {
  const holder = await new Mutex(s[0]!, 'jobs').lock();
  const waiter = track(new Mutex(s[1]!, 'jobs').lock());
  await settle();
  return { holder, waiter };
}

/** Matches the reads of a waiter whose key is `key`: its guarded read and its snapshot read. */
function readsOf(key: string, seen: { n: number }): (name: string, req: unknown) => boolean {
  return (name, req) => {
    if (name !== 'txn') return false;
    const t = req as TxnRequest;
    const about = t.compare[0]?.key ?? t.success[0]?.range?.key;
    const mine = about?.toString() === key && t.success.every((op) => op.range);
    if (mine) seen.n++;
    return mine;
  };
}

test('a transient failure of a waiter\'s reads pauses the wait; it resumes and gets the lock', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2, { retryPolicy: noop });
  const { holder, waiter } = await contended(s);
  // Every read of the waiter fails for 300 ms: passes of the loop, each after a growing backoff.
  const seen = { n: 0 };
  let failing = true;
  const reads = readsOf(`jobs/${s[1]!.leaseHex}`, seen);
  f.fake.faults.failWhere((name, req) => failing && reads(name, req), undefined, Infinity);
  await holder.release();
  await settle(300);
  failing = false;
  const handle = await waiter.promise;
  expect(seen.n).toBeGreaterThanOrEqual(3); // the snapshot read, then passes of the loop, failed
  expect(seen.n).toBeLessThan(30); // paused between passes (25 ms growing to 2 s), not a hot loop
  expect(handle.held).toBe(true);
});

test('a final failure of a waiter\'s read ends the wait with it, and its key is removed', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2, { retryPolicy: noop });
  const { holder, waiter } = await contended(s);
  const denied = refusal('PERMISSION_DENIED', 'permission', '7 PERMISSION_DENIED: etcdserver: permission denied');
  for (let i = 0; i < 2; i++) f.fake.faults.failWhere(readsOf(`jobs/${s[1]!.leaseHex}`, { n: 0 }), denied);
  await holder.release();
  await expect(waiter.promise).rejects.toBeInstanceOf(PermissionDeniedError);
  expect(f.fake.store.kvs()).toEqual([]);
});

test('a broken watch stream: the waiter re-reads, watches again, and still gets the lock', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2, { retryPolicy: noop });
  const { holder, waiter } = await contended(s);
  expect(f.fake.watched()).toEqual([holder.key]);
  f.fake.endStreams();
  expect(f.fake.watched()).toEqual([]);
  await until(watching(f, [holder.key])); // after a backoff (25 ms and up), a re-read, a new stream
  expect(waiter.state).toBe('pending');
  await holder.release();
  expect((await waiter.promise).held).toBe(true);
});

test('a watch etcd cancels behind a compaction: the waiter re-reads, watches again, and still gets the lock', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2, { retryPolicy: noop });
  const { holder, waiter } = await contended(s);
  f.fake.cancelWatchers();
  await until(watching(f, [holder.key]));
  await holder.release();
  expect((await waiter.promise).held).toBe(true);
});

test('an observer whose snapshot read hits a compaction starts over', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1, { retryPolicy: noop });
  const holder = await new Mutex(s[0]!, 'jobs').lock();
  const compacted = refusal('OUT_OF_RANGE', 'compacted', '11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted');
  f.fake.faults.failWhere((name, req) => name === 'range' && (req as { revision?: bigint }).revision !== undefined, compacted);
  const stop = new AbortController();
  const observed = Mutex.observe(f.client, 'jobs', { signal: AbortSignal.any([stop.signal, AbortSignal.timeout(2000)]), retryPolicy: noop });
  const first = await observed.next();
  expect(first.value).toMatchObject({ key: holder.key, token: holder.token });
  stop.abort();
  await observed.return();
});
