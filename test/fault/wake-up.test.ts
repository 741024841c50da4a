// Fault scenarios 18a–c: waiters wake within 2 s of the delete that puts them first (the checker's L
// rule), also when the watch stream they share is replaced under them (a TCP reset, a member restart)
// and when the release lands between a waiter's read and its watch's creation. TTL 30 s makes a
// waiter's periodic re-check of a quiet watch 10 s: a waiter that missed its wake-up shows it, 8 s
// past the bound, while every safety rule still holds.
import { describe, expect, test } from 'vitest';
import type { EtcdMember } from '../../src/testing/index.js';
import { startProxy } from '../../src/testing/proxy.js';
import { describe as describeCheck, type CheckResult } from './checker.js';
import { type ClientProc, faultRounds, isOk, queued, type Scenario, scenarioPerTest } from './harness.js';

const TTL = 30;
/** Long enough for a waiter that misses its wake-up to be woken by its 10 s re-check: the checker then says so. */
const WAKE_MS = 25_000;

/** `holder` takes the lock and the waiters queue behind it in order; resolves with where each waiter's log stood. */
async function lineUp(s: Scenario, holder: ClientProc, waiters: readonly ClientProc[]): Promise<number[]> {
  await holder.call({ cmd: 'acquire' }, 'acquire');
  const from: number[] = [];
  for (const [i, w] of waiters.entries()) {
    from.push(w.lines.length);
    w.send({ cmd: 'acquire' });
    await queued(s, i + 2);
  }
  return from;
}

/** The holder releases; each waiter in turn holds, writes once and releases. */
async function handOff(holder: ClientProc, waiters: readonly ClientProc[], from: readonly number[]): Promise<void> {
  await holder.call({ cmd: 'release' }, 'release');
  for (const [i, w] of waiters.entries()) {
    await w.waitFor(isOk('acquire'), WAKE_MS, from[i], 'its wake-up');
    await w.call({ cmd: 'effect' }, 'effect');
    await w.call({ cmd: 'release' }, 'release');
  }
}

/**
 * After a fault that dropped the waiters' watches on `member`: waits (2 s at most) until the member
 * serves fewer than `n` watches, then (4 s at most) until it serves `n` again — the waiters have
 * watched anew. Resolves either way: a waiter that never watches again is for the checker to catch.
 */
async function rewatched(s: Scenario, member: EtcdMember, n: number): Promise<void> {
  const until = performance.now() + 2000;
  while ((await s.watchers(member, Number.POSITIVE_INFINITY, 0)) >= n && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
  await s.watchers(member, n, 4000);
}

function expectLive(result: CheckResult, s: Scenario, waits: number): void {
  const dir = s.save(result);
  expect(result.violations, `${describeCheck(result)}\nlogs: ${dir}`).toEqual([]);
  expect(result.wakes.length, 'wake-ups measured').toBeGreaterThanOrEqual(waits);
  expect(result.counter).toBe(result.applied);
}

describe('wake-ups under faults', { timeout: 180_000 }, () => {
  const start = scenarioPerTest();

  test('18a. L: the waiters\' shared watch stream is reset through the proxy while they wait: each wakes within 2 s of its predecessor\'s release', async () => {
    const s = await start('18a-wake-after-reset', { ttl: TTL });
    // Member 1: the history recorder watches through member 0, so member 1's watches are the waiters'.
    const member = s.etcd.members[1]!;
    const proxy = await startProxy(member.clientUrl);
    try {
      const h = s.spawn('h');
      const waiters = ['w1', 'w2', 'w3'].map((id) => s.spawn(id, { endpoints: [proxy.url] }));
      const rounds = faultRounds(1, 5);
      for (let round = 0; round < rounds; round++) {
        const from = await lineUp(s, h, waiters);
        await s.watchers(member, waiters.length);
        proxy.reset();
        s.fault('reset', { target: 'w1,w2,w3' });
        await rewatched(s, member, waiters.length);
        await handOff(h, waiters, from);
      }
      const result = await s.finish();
      console.log(`[fault 18a] ${rounds} round(s), ${proxy.accepted} connections through the proxy; ${describeCheck(result)}`);
      expectLive(result, s, 3 * rounds);
      expect(proxy.accepted, 'the waiters reconnected').toBeGreaterThan(waiters.length);
    } finally {
      await proxy.close();
    }
  });

  test('18b. L: the member the waiters watch through is killed and restarted while they wait: each wakes within 2 s of its predecessor\'s release', async () => {
    const s = await start('18b-wake-after-restart', { ttl: TTL });
    const leader = await s.etcd.leader();
    // A follower the history recorder does not watch through (it starts on member 0).
    const member = s.etcd.members.find((m) => m !== leader && m !== s.etcd.members[0])!;
    const others = s.etcd.members.filter((m) => m !== member).map((m) => m.clientUrl);
    const h = s.spawn('h', { endpoints: others });
    const waiters = ['w1', 'w2'].map((id) => s.spawn(id, { endpoints: [member.clientUrl] }));
    const rounds = faultRounds(1, 4);
    for (let round = 0; round < rounds; round++) {
      const from = await lineUp(s, h, waiters);
      await s.watchers(member, waiters.length);
      await member.kill();
      s.fault('member-kill', { member: member.name });
      await member.restart();
      s.fault('member-restart', { member: member.name });
      await s.watchers(member, waiters.length, 4000);
      await handOff(h, waiters, from);
    }
    const result = await s.finish();
    console.log(`[fault 18b] ${rounds} restart(s) of ${member.name}; ${describeCheck(result)}`);
    expectLive(result, s, 2 * rounds);
  });

  test('18c. L: the holder releases between a waiter\'s read and its watch\'s creation (the proxy holds the read\'s answer): it wakes within 2 s', async () => {
    const s = await start('18c-wake-gap', { ttl: TTL });
    const proxy = await startProxy(s.etcd.members[1]!.clientUrl);
    try {
      const h = s.spawn('h');
      const w = s.spawn('w', { endpoints: [proxy.url] });
      await w.call({ cmd: 'session' }, 'session');
      const rounds = faultRounds(1, 5);
      for (let round = 0; round < rounds; round++) {
        await h.call({ cmd: 'acquire' }, 'acquire');
        // w joins the queue (its txn is applied: its key exists) and reads h as its blocker, but the
        // answer is held; h's release is applied before w can watch h's key.
        proxy.blackhole('toClient');
        s.fault('blackhole', { target: 'w', direction: 'toClient' });
        const from = w.lines.length;
        w.send({ cmd: 'acquire' });
        await queued(s, 2);
        await h.call({ cmd: 'release' }, 'release');
        expect(await s.contenders()).toHaveLength(1);
        proxy.heal();
        s.fault('heal', { target: 'w' });
        await w.waitFor(isOk('acquire'), WAKE_MS, from, 'its wake-up');
        await w.call({ cmd: 'effect' }, 'effect');
        await w.call({ cmd: 'release' }, 'release');
      }
      const result = await s.finish();
      console.log(`[fault 18c] ${rounds} round(s); ${describeCheck(result)}`);
      expectLive(result, s, rounds);
    } finally {
      await proxy.close();
    }
  });
});
