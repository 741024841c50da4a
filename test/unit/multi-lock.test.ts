// A MultiLock's decisions, on the in-memory fake of the port: its keys share one create revision (one
// token); it waits in each name's queue for the contender just ahead there; and on a Session that
// holds one of its names already (a Mutex), it waits its local turn instead of taking that key for a
// stray of an earlier owner of the lease. Proven against a real etcd in
// test/integration/multi-lock*.test.ts and test/fault/multi-lock.test.ts.
import { expect, test } from 'vitest';
import { MultiLock, Mutex } from '../../src/index.js';
import { onFake, sessionsOn, settle, track, until, watching } from './fake-client.js';

test('one token for every name; it waits for the contender just ahead in each queue', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 3);
  const a = await new Mutex(s[0]!, 'a').lock();
  const b = await new Mutex(s[1]!, 'b').lock();
  const multi = track(new MultiLock(s[2]!, ['a', 'b']).lock());
  await until(watching(f, [a.key]));
  await a.release();
  await until(watching(f, [b.key]));
  expect(multi.state).toBe('pending');
  await b.release();
  const handle = await multi.promise;
  expect(f.fake.store.kvs().map((kv) => [kv.key.toString(), kv.createRevision])).toEqual([
    [`a/${s[2]!.leaseHex}`, handle.token],
    [`b/${s[2]!.leaseHex}`, handle.token],
  ]);
});

test('on the Session that holds one of its names, it waits its turn and leaves that key alone', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const held = await new Mutex(s[0]!, 'a').lock();
  const multi = track(new MultiLock(s[0]!, ['a', 'b']).lock());
  await settle(50);
  expect(multi.state).toBe('pending');
  expect(f.fake.store.kvs().map((kv) => [kv.key.toString(), kv.createRevision])).toEqual([[held.key, held.token]]);
  expect(held.held).toBe(true);
  await held.release();
  expect((await multi.promise).held).toBe(true);
});
