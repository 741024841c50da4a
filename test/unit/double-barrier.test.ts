// A double barrier's rounds, on the in-memory fake of the port: a round opens with exactly `count`
// members — the oldest waiter keys — when as many have entered, however many arrive at once; one left
// out takes its key back and waits for the next round; a `ready` record another program wrote is
// refused. Proven against a real etcd in test/integration/double-barrier*.test.ts and
// test/fault/barrier.test.ts.
import { expect, test } from 'vitest';
import { DoubleBarrier, ForeignKeyError } from '../../src/index.js';
import type { TxnRequest } from '../../src/transport/messages.js';
import { onFake, sessionsOn, settle, track, until } from './fake-client.js';

const call = { timeoutMs: 1000 };
const b = (s: string): Buffer => Buffer.from(s);
const waiterKeys = (f: ReturnType<typeof onFake>): string[] => f.fake.store.kvs().map((kv) => kv.key.toString()).filter((k) => k.startsWith('phase/waiters/'));

test('a round opens once count have entered, with exactly count members', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 4);
  const barriers = s.map((session) => new DoubleBarrier(session, 'phase', { count: 3 }));
  const entering = [track(barriers[0]!.enter()), track(barriers[1]!.enter())];
  await settle();
  expect(entering.map((e) => e.state)).toEqual(['pending', 'pending']);
  entering.push(track(barriers[2]!.enter()));
  await Promise.all(entering.map(async (e) => e.promise));
  const late = track(barriers[3]!.enter()); // the round is open: it waits for the next one
  await settle();
  expect(late.state).toBe('pending');
  const ready = JSON.parse(f.fake.store.kvs().find((kv) => kv.key.toString() === 'phase/ready')!.value.toString()) as { count: number; members: string[] };
  expect(ready.count).toBe(3);
  expect(ready.members).toHaveLength(3);
  await Promise.all(barriers.slice(0, 3).map(async (barrier) => barrier.leave()));
  await settle();
  expect(late.state).toBe('pending'); // a new round needs three again
  expect(waiterKeys(f)).toHaveLength(1);
});

test('more arrivals at once than count: the oldest count are the round; the one left out takes its key back', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 4);
  const barriers = s.map((session) => new DoubleBarrier(session, 'phase', { count: 3 }));
  const first = [track(barriers[0]!.enter()), track(barriers[1]!.enter())];
  await settle();
  const arriving = [track(barriers[2]!.enter()), track(barriers[3]!.enter())];
  await until(() => [...first, ...arriving].filter((e) => e.state !== 'pending').length >= 3);
  await settle();
  const states = [...first, ...arriving].map((e) => e.state);
  expect(states.filter((state) => state === 'resolved')).toHaveLength(3);
  expect(states.slice(0, 2)).toEqual(['resolved', 'resolved']);
  expect(waiterKeys(f)).toHaveLength(3); // the one left out took its key back
  const members = (JSON.parse(f.fake.store.kvs().find((kv) => kv.key.toString() === 'phase/ready')!.value.toString()) as { members: string[] }).members;
  expect(members).toEqual(f.fake.store.kvs().filter((kv) => kv.key.toString().startsWith('phase/waiters/')).map((kv) => String(kv.createRevision)).sort());
});

test('an opener that read more than count waiters opens the round of the oldest count', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 4);
  const barriers = s.map((session) => new DoubleBarrier(session, 'phase', { count: 3 }));
  const first = [track(barriers[0]!.enter()), track(barriers[1]!.enter())];
  await settle();
  // The first opening, by the arrival that joined third, fails once (and is retried): the other
  // arrival, which read all four waiter keys in its join, opens the round.
  const opening = (name: string, req: unknown): boolean => name === 'txn' && (req as TxnRequest).success.some((op) => op.put?.key.toString() === 'phase/ready');
  f.fake.faults.failWhere(opening);
  const arriving = [track(barriers[2]!.enter()), track(barriers[3]!.enter())];
  const all = [...first, ...arriving];
  await until(() => all.filter((e) => e.state !== 'pending').length >= 3); // the failed opening is retried after a backoff
  await settle();
  expect(first.map((e) => e.state)).toEqual(['resolved', 'resolved']);
  expect(arriving.map((e) => e.state).sort()).toEqual(['pending', 'resolved']);
  const members = (JSON.parse(f.fake.store.kvs().find((kv) => kv.key.toString() === 'phase/ready')!.value.toString()) as { members: string[] }).members;
  expect(members).toHaveLength(3);
  expect(waiterKeys(f)).toHaveLength(3);
});

test.each([
  ['garbage', '🦀', /phase\/ready: not a round record \(4 bytes that are not JSON\); delete it/],
  ['another count', '{"count":2,"members":["1","2"]}', /a round of 2 participants, but DoubleBarrier phase has count 3/],
  ['too few members', '{"count":3,"members":["1","2"]}', /not a round record \(members \["1","2"\] are not 3 ascending revisions/],
])('a ready record with %s is refused with ForeignKeyError', async (_, value, message) => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  await f.fake.txn({ compare: [], success: [{ put: { key: b('phase/ready'), value: b(value) } }] }, call);
  const refused = await new DoubleBarrier(s[0]!, 'phase', { count: 3 }).enter({ signal: AbortSignal.timeout(2000) }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(ForeignKeyError);
  expect((refused as Error).message).toMatch(message);
});
