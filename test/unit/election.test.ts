// An election's decisions, on the in-memory fake of the port: the leader is the campaigner with the
// smallest create revision, the next one leads once it resigns; a leader whose key an operator
// deleted stops leading (NotLeaderError) while its lease lives on; a campaign on an adopted lease
// takes office with its own value. Proven against a real etcd in test/integration/election.test.ts,
// adopt.test.ts and test/fault/election.test.ts.
import { expect, test } from 'vitest';
import { Election, NotLeaderError, Session } from '../../src/index.js';
import { abortReason, onFake, sessionsOn, settle, track } from './fake-client.js';

const call = { timeoutMs: 1000 };

test('the oldest campaigner leads; the next leads once it resigns', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 3);
  const first = await new Election(s[1]!, 'svc').campaign('b');
  const second = track(new Election(s[0]!, 'svc').campaign('a'));
  await settle();
  expect(second.state).toBe('pending');
  expect(await new Election(s[2]!, 'svc').leader()).toMatchObject({ key: first.key, value: 'b', term: first.term });
  await first.resign();
  const next = await second.promise;
  expect(await new Election(s[2]!, 'svc').leader()).toMatchObject({ key: next.key, value: 'a', term: next.term });
  expect(next.term).toBeGreaterThan(first.term);
});

test("a leader whose key an operator deleted stops leading with NotLeaderError; its lease lives on", async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 2);
  const leader = await new Election(s[0]!, 'svc').campaign('a');
  const next = track(new Election(s[1]!, 'svc').campaign('b'));
  await settle();
  await f.fake.txn({ compare: [], success: [{ deleteRange: { key: Buffer.from(leader.key) } }] }, call); // etcdctl del
  expect(await abortReason(leader.signal)).toBeInstanceOf(NotLeaderError);
  expect(leader.isLeader).toBe(false);
  expect(s[0]!.alive).toBe(true);
  await expect(leader.proclaim('again')).rejects.toBeInstanceOf(NotLeaderError);
  expect((await next.promise).isLeader).toBe(true);
});

test('a campaign on an adopted lease takes office with its own value', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const before = await new Election(s[0]!, 'svc').campaign('old');
  await using adopted = await Session.create(f.client, { leaseId: s[0]!.leaseId });
  const again = await new Election(adopted, 'svc').campaign('new', { signal: AbortSignal.timeout(2000) });
  expect([again.key, again.term]).toEqual([before.key, before.term]);
  expect(await new Election(adopted, 'svc').leader()).toMatchObject({ value: 'new', term: before.term });
});
