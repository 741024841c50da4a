// The read/write lock's rules, on the in-memory fake of the port: readers pass readers, but neither a
// holding writer nor a writer queued before them; a writer waits for every key of either kind before
// it, watching only the newest. Proven against a real etcd in test/integration/rw-lock.test.ts and
// test/fault/rw-lock.test.ts.
import { expect, test } from 'vitest';
import { ReadWriteLock } from '../../src/index.js';
import { onFake, sessionsOn, settle, track, until, watching } from './fake-client.js';

test('readers pass readers', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2);
  const first = await new ReadWriteLock(s[0]!, 'cfg').readLock();
  const second = await new ReadWriteLock(s[1]!, 'cfg').readLock({ signal: AbortSignal.timeout(2000) });
  const third = await new ReadWriteLock(s[1]!, 'cfg').tryReadLock(); // a second reader on one session too
  expect([first.held, second.held, third?.held]).toEqual([true, true, true]);
  expect(await new ReadWriteLock(s[0]!, 'cfg').holders()).toHaveLength(3);
});

test('a reader waits for a holding writer', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2);
  const writer = await new ReadWriteLock(s[0]!, 'cfg').writeLock();
  expect(await new ReadWriteLock(s[1]!, 'cfg').tryReadLock()).toBeNull();
  const reader = track(new ReadWriteLock(s[1]!, 'cfg').readLock());
  await settle();
  expect(reader.state).toBe('pending');
  expect(f.fake.watched()).toEqual([writer.key]);
  await writer.release();
  expect((await reader.promise).held).toBe(true);
});

test('a reader waits for a writer queued before it, not only for one that holds', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 3);
  const r1 = await new ReadWriteLock(s[0]!, 'cfg').readLock();
  const w = track(new ReadWriteLock(s[1]!, 'cfg').writeLock());
  await settle();
  expect(await new ReadWriteLock(s[2]!, 'cfg').tryReadLock()).toBeNull();
  const r2 = track(new ReadWriteLock(s[2]!, 'cfg').readLock());
  await settle();
  expect([w.state, r2.state]).toEqual(['pending', 'pending']);
  await r1.release();
  const writer = await w.promise;
  await settle();
  expect(r2.state).toBe('pending');
  await writer.release();
  expect((await r2.promise).held).toBe(true);
});

test('a writer waits for every reader before it, watching only the newest', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 3);
  const within = { signal: AbortSignal.timeout(2000) };
  const readers = [await new ReadWriteLock(s[0]!, 'cfg').readLock(within), await new ReadWriteLock(s[1]!, 'cfg').readLock(within)];
  expect(await new ReadWriteLock(s[2]!, 'cfg').tryWriteLock()).toBeNull();
  const w = track(new ReadWriteLock(s[2]!, 'cfg').writeLock());
  await settle();
  expect(f.fake.watched()).toEqual([readers[1]!.key]);
  await readers[1]!.release();
  await until(watching(f, [readers[0]!.key]));
  expect(w.state).toBe('pending'); // the older reader still holds
  await readers[0]!.release();
  expect((await w.promise).held).toBe(true);
});
