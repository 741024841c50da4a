// The engine's wait for a delete (or a put) on the in-memory fake of the port: a delete between our
// read and the watch's creation is found by a re-read (the watch starts at "now"), a key deleted and
// written again counts as gone, a put or a quiet watch wakes nobody, a stuck watch is found by the
// periodic re-check, an abort rejects with its reason, a broken watch resolves false. Proven against
// etcd by test/integration/mutex.test.ts, recovery.test.ts and the fault suite (18a–18c).
import { expect, test } from 'vitest';
import { EtcdOps } from '../../src/transport/etcd.js';
import { defaultRetryPolicy } from '../../src/transport/retry.js';
import { untilAbsent } from '../../src/engine/wait-loop.js';
import { waitForDelete, waitForDeletes, waitForPut, type Wake } from '../../src/engine/watch.js';
import { FakeTransport } from './fake-transport.js';
import { settle, track, until } from './fake-client.js';

const call = { timeoutMs: 1000 };
const b = (s: string): Buffer => Buffer.from(s);

/** A fake, ops on it that re-check a quiet watch only every minute, and a blocker key `q/a` on a lease. */
async function setup(recheckMs = 60_000): Promise<{ fake: FakeTransport; ops: EtcdOps; blocker: { key: string; bytes: Buffer; createRevision: bigint }; readAt: bigint } & Disposable> {
  const fake = new FakeTransport();
  const ops = new EtcdOps(fake, Buffer.alloc(0), defaultRetryPolicy(), 1000, recheckMs);
  const { id } = await fake.leaseGrant(30, call);
  const put = await fake.txn({ compare: [], success: [{ put: { key: b('q/a'), value: b(''), lease: id } }] }, call);
  const readAt = put.header.revision;
  return { fake, ops, blocker: { key: 'q/a', bytes: b('q/a'), createRevision: readAt }, readAt, [Symbol.dispose]: () => fake.close() };
}

const del = (fake: FakeTransport, key: string): Promise<unknown> => fake.txn({ compare: [], success: [{ deleteRange: { key: b(key) } }] }, call);
const put = (fake: FakeTransport, key: string, value = ''): Promise<unknown> => fake.txn({ compare: [], success: [{ put: { key: b(key), value: b(value) } }] }, call);

test('a delete event wakes the wait with the revision of the delete; a put on the key does not', async () => {
  using s = await setup();
  const wake: Wake = {};
  const waiting = track(waitForDelete(s.ops, s.blocker, s.readAt, AbortSignal.timeout(2000), wake));
  await settle();
  await put(s.fake, 'q/a', 'rewritten');
  await settle();
  expect(waiting.state).toBe('pending');
  const deleted = (await del(s.fake, 'q/a')) as { header: { revision: bigint } };
  expect(await waiting.promise).toBe(true);
  expect(wake.deletedAt).toBe(deleted.header.revision);
});

test('deleted between our read and the watch: found by the re-read the newer creation revision calls for', async () => {
  using s = await setup();
  await del(s.fake, 'q/a');
  const waiting = track(waitForDelete(s.ops, s.blocker, s.readAt, AbortSignal.timeout(2000)));
  await settle(50);
  expect(waiting.state).toBe('resolved');
  expect(await waiting.promise).toBe(true);
});

test('deleted and written again before the watch (another create revision): gone as well', async () => {
  using s = await setup();
  await del(s.fake, 'q/a');
  await put(s.fake, 'q/a');
  const waiting = track(waitForDelete(s.ops, s.blocker, s.readAt, AbortSignal.timeout(2000)));
  await settle(50);
  expect(waiting.state).toBe('resolved');
});

test('a watch created at the revision of our read costs no re-read; one created later re-reads once and, finding the key, waits on', async () => {
  using s = await setup();
  let reads = 0;
  const changed = async (): Promise<boolean> => {
    reads++;
    return false;
  };
  const quiet = track(waitForDeletes(s.ops, [{ key: b('q/a') }], s.readAt, changed, AbortSignal.timeout(2000)));
  await settle(50);
  expect([quiet.state, reads]).toEqual(['pending', 0]);
  await put(s.fake, 'other');
  const later = track(waitForDeletes(s.ops, [{ key: b('q/a') }, { key: b('q/b') }], s.readAt, changed, AbortSignal.timeout(2000)));
  await settle(50);
  expect([later.state, reads]).toEqual(['pending', 1]); // one re-read, after both watches were created
  await del(s.fake, 'q/a');
  expect([await quiet.promise, await later.promise]).toEqual([true, true]);
});

test('a re-read that fails after the creation wakes the wait (the caller reads again)', async () => {
  using s = await setup();
  await put(s.fake, 'other');
  const waiting = waitForDeletes(s.ops, [{ key: b('q/a') }], s.readAt, () => Promise.reject(new Error('unavailable')), AbortSignal.timeout(2000));
  expect(await waiting).toBe(true);
});

test('a quiet watch is re-checked every recheckMs: a change it missed wakes the wait; a failed re-check resolves false', async () => {
  using s = await setup(30);
  let checks = 0;
  const missed = waitForDeletes(s.ops, [{ key: b('q/a') }], s.readAt, async () => ++checks >= 3, AbortSignal.timeout(2000));
  expect(await missed).toBe(true);
  expect(checks).toBe(3);
  const failing = waitForDeletes(s.ops, [{ key: b('q/a') }], s.readAt, () => Promise.reject(new Error('unavailable')), AbortSignal.timeout(2000));
  expect(await failing).toBe(false);
  await settle(100);
  expect(checks).toBe(3); // nothing re-checks after the wait ended
});

test('an abort rejects with its reason, at once when already aborted; the watch is cancelled', async () => {
  using s = await setup();
  const reason = new Error('caller gave up');
  await expect(waitForDelete(s.ops, s.blocker, s.readAt, AbortSignal.abort(reason))).rejects.toBe(reason);
  const controller = new AbortController();
  const waiting = waitForDelete(s.ops, s.blocker, s.readAt, controller.signal);
  await settle();
  expect(s.fake.watched()).toEqual(['q/a']);
  controller.abort(reason);
  await expect(waiting).rejects.toBe(reason);
  await settle();
  expect(s.fake.watched()).toEqual([]);
});

test('a broken watch resolves false (the caller re-reads after a pause)', async () => {
  using s = await setup();
  const waiting = waitForDelete(s.ops, s.blocker, s.readAt, AbortSignal.timeout(2000));
  await settle();
  s.fake.endStreams();
  expect(await waiting).toBe(false);
});

test('waitForPut wakes on a put in its range, not on a delete', async () => {
  using s = await setup();
  await put(s.fake, 'r/old');
  const { header } = await s.fake.range({ key: b('r/old') }, call);
  const waiting = track(waitForPut(s.ops, [{ key: b('r/'), rangeEnd: b('r0') }], header.revision, async () => false, AbortSignal.timeout(2000)));
  await settle();
  await del(s.fake, 'r/old');
  await settle();
  expect(waiting.state).toBe('pending');
  await put(s.fake, 'r/new');
  await settle();
  expect(waiting.state).toBe('resolved');
  expect(await waiting.promise).toBe(true);
});

test('untilAbsent (a Barrier\'s wait): at once when the key is absent, else when it is deleted, not when it is rewritten', async () => {
  using s = await setup();
  await untilAbsent(s.ops, 'nothing/here', AbortSignal.timeout(2000));
  const waiting = track(untilAbsent(s.ops, 'q/a', AbortSignal.timeout(2000)));
  await settle();
  await put(s.fake, 'q/a', 'again');
  await settle();
  expect(waiting.state).toBe('pending');
  await del(s.fake, 'q/a');
  await until(() => waiting.state === 'resolved', 1000);
});
