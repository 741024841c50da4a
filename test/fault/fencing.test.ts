// Fault scenarios 19a–d: fencing against stale requests. A stale handle meets a newer key of the same
// name (release, re-lock on the same session: the key's name is the lease's), for a Mutex and for an
// Election; an operator deletes the leader's key while its answers are held, and the leader proclaims;
// a release whose first attempt the network holds until after the retry succeeded and the name was
// locked again. In each, etcd must refuse the stale request: the guard compares the key's create
// revision, never just its name or its existence.
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { sumMetric, type EtcdMember } from '../../src/testing/index.js';
import { startProxy } from '../../src/testing/proxy.js';
import { describe as describeCheck, type CheckResult } from './checker.js';
import { type ClientProc, isOk, queued, type Scenario, scenarioPerTest } from './harness.js';
import type { LogEvent } from './protocol.js';

const TTL = 2;

function expectSafe(result: CheckResult, s: Scenario): void {
  const dir = s.save(result);
  expect(result.violations, `${describeCheck(result)}\nlogs: ${dir}`).toEqual([]);
  expect(result.counter).toBe(result.applied);
}

/** Txn requests `member` has answered: proof that a held request reached etcd. */
async function txns(s: Scenario, member: EtcdMember): Promise<number> {
  return sumMetric(await s.etcd.metrics(member), 'grpc_server_handled_total', { grpc_method: 'Txn' });
}

/** Polls until `member` has answered more than `than` txns, or `timeoutMs`; resolves with the count. */
async function txnsAbove(s: Scenario, member: EtcdMember, than: number, timeoutMs = 10_000): Promise<number> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const n = await txns(s, member);
    if (n > than || performance.now() > until) return n;
    await delay(50);
  }
}

/**
 * `c` holds, writes once and lets go; holds the same name again on the same session (the same key,
 * a newer token); then writes through the stale handle — with its guarded txn, and with `commit()`.
 */
async function staleAfterReacquire(c: ClientProc): Promise<{ first: LogEvent; second: LogEvent; staleTxn: LogEvent; staleCommit: LogEvent; fresh: LogEvent }> {
  const first = await c.call({ cmd: 'acquire' }, 'acquire');
  await c.call({ cmd: 'effect' }, 'effect');
  await c.call({ cmd: 'release' }, 'release');
  const second = await c.call({ cmd: 'acquire' }, 'acquire');
  const staleTxn = await c.call({ cmd: 'effect', stale: true, checkHeld: false }, 'effect');
  const staleCommit = await c.call({ cmd: 'effect', stale: true, checkHeld: false, via: 'commit' }, 'effect');
  const fresh = await c.call({ cmd: 'effect' }, 'effect');
  await c.call({ cmd: 'release' }, 'release');
  return { first, second, staleTxn, staleCommit, fresh };
}

describe('fencing against stale requests', { timeout: 120_000 }, () => {
  const start = scenarioPerTest();

  /** 19a/19b: the stale handle's txn is refused by etcd and its commit with `refusal`; the checker is clean. */
  async function staleRefused(s: Scenario, c: ClientProc, refusal: RegExp): Promise<void> {
    const { first, second, staleTxn, staleCommit, fresh } = await staleAfterReacquire(c);
    const result = await s.finish();
    console.log(`[fault ${s.name.slice(0, 3)}] stale txn: ${staleTxn.err}; stale commit: ${staleCommit.err}; ${describeCheck(result)}`);
    expectSafe(result, s);
    expect(result.applied).toBe(2);
    expect(second.key, 'the same key name').toBe(first.key);
    expect(BigInt(second.token!)).toBeGreaterThan(BigInt(first.token!));
    expect(staleTxn).toMatchObject({ ev: 'fail', fenced: true, err: 'not held (guard failed)' });
    expect(staleCommit).toMatchObject({ ev: 'fail', fenced: true, err: expect.stringMatching(refusal) as unknown });
    expect(fresh.ev).toBe('ok');
  }

  test('19a. G2: release, lock again on the same session (same key, newer token): the stale handle\'s txn and commit are refused', async () => {
    const s = await start('19a-stale-lock-handle', { ttl: TTL });
    await staleRefused(s, s.spawn('a'), /^NotHeldError/);
  });

  test('19b. G2: resign, campaign again on the same session (same key, newer term): the stale leadership\'s txn and commit are refused', async () => {
    const s = await start('19b-stale-leadership', { ttl: TTL });
    await staleRefused(s, s.spawn('k', { kind: 'election' }), /^NotLeaderError/);
  });

  test('19c. G2: an operator deletes the leader\'s key and the leader proclaims before it can know: the proclaim fails and creates nothing', async () => {
    const s = await start('19c-proclaim-after-delete', { ttl: 5 });
    const member = s.etcd.members[1]!;
    const proxy = await startProxy(member.clientUrl);
    try {
      const l = s.spawn('l', { kind: 'election', endpoints: [proxy.url] });
      // The other candidate talks to the other members: every txn member 1 answers is the leader's.
      const c = s.spawn('c', { kind: 'election', endpoints: s.etcd.members.filter((m) => m !== member).map((m) => m.clientUrl) });
      const led = await l.call({ cmd: 'acquire' }, 'acquire');
      c.send({ cmd: 'acquire' });
      await queued(s, 2);
      // The leader hears nothing more (its requests still go out): no watch event, no answer.
      proxy.blackhole('toClient');
      s.fault('blackhole', { target: 'l', direction: 'toClient' });
      await s.etcdctl('del', led.key!);
      const before = await txns(s, member);
      const from = l.lines.length;
      l.send({ cmd: 'proclaim', value: 'after the delete' });
      const handled = await txnsAbove(s, member, before);
      proxy.heal();
      s.fault('heal', { target: 'l' });
      const proclaimed = await l.waitFor((x) => x.op === 'proclaim' && (x.ev === 'ok' || x.ev === 'fail'), 15_000, from, 'the proclaim');
      await c.waitFor(isOk('acquire'), 15_000, 0, 'the next leader');
      await c.call({ cmd: 'effect' }, 'effect');
      await c.call({ cmd: 'release' }, 'release');
      const result = await s.finish();
      console.log(`[fault 19c] proclaim: ${proclaimed.ev} ${proclaimed.err ?? ''}; ${describeCheck(result)}`);
      expect(handled, 'the proclaim reached etcd while its leader knew nothing').toBeGreaterThan(before);
      expect(proclaimed.ev).toBe('fail');
      expect(proclaimed.err).toMatch(/^NotLeaderError/);
      // Nothing created: after the operator's delete, the leader's key was never written again.
      const deleted = s.recorder.events.find((e) => e.type === 'delete' && e.key === led.key)!;
      expect(s.recorder.events.filter((e) => e.key === led.key && e.rev > deleted.rev)).toEqual([]);
      // An operator who deletes the leader's key makes two leaders until the old one hears of it (G3
      // assumes nobody steals the key): the one overlap allowed is c's, which led from that delete.
      const next = result.acquisitions.find((x) => x.client === 'c')!;
      expect(next.version?.heldFrom).toBe(deleted.rev);
      const stolen = result.violations.filter((v) => v.rule === 'R3' && v.client === 'c' && v.message.includes(`l token ${led.token}`));
      expectSafe({ ...result, violations: result.violations.filter((v) => !stolen.includes(v)) }, s);
    } finally {
      await proxy.close();
    }
  });

  test('19d. G2, G6: a release\'s first attempt is held by the network until after its retry succeeded and the name was locked again: the newer key survives', async () => {
    const s = await start('19d-stale-delete', { ttl: 10 });
    const member = s.etcd.members[1]!;
    const proxy = await startProxy(member.clientUrl);
    try {
      // requestTimeout 5 s: the first attempt is still waiting for its answer when its connection is cut,
      // so it never cancels itself (an RST_STREAM behind it would stop etcd from acting on it).
      const a = s.spawn('a', { endpoints: [proxy.url], requestTimeout: 5000 });
      const first = await a.call({ cmd: 'acquire' }, 'acquire');
      await a.call({ cmd: 'effect' }, 'effect');
      proxy.blackhole('toTarget');
      s.fault('blackhole', { target: 'a', direction: 'toTarget' });
      const from = a.lines.length;
      a.send({ cmd: 'release' });
      await a.waitFor((x) => x.op === 'release' && x.ev === 'invoke', 10_000, from);
      await delay(500); // its delete request is in the proxy by now
      const stranded = proxy.strand();
      s.fault('strand', { target: 'a', connections: stranded });
      proxy.heal();
      s.fault('heal', { target: 'a' });
      const released = await a.waitFor((x) => x.op === 'release' && x.ev !== 'invoke', 15_000, from, 'the retried release');
      const again = await a.call({ cmd: 'acquire' }, 'acquire');
      await a.call({ cmd: 'effect' }, 'effect');
      // The held first attempt arrives now, long after it was retried.
      const before = await txns(s, member);
      const bytes = await proxy.deliverStranded({ lingerMs: 1000 });
      s.fault('deliver-stranded', { target: 'a', bytes });
      const handled = await txnsAbove(s, member, before, 3000);
      const survived = await s.contenders();
      const after = await a.call({ cmd: 'effect' }, 'effect');
      await a.call({ cmd: 'release' }, 'release');
      const result = await s.finish();
      console.log(`[fault 19d] ${stranded} connection(s) stranded, ${bytes} bytes delivered late, txns handled ${before} -> ${handled}; ${describeCheck(result)}`);
      expect(stranded).toBeGreaterThanOrEqual(1);
      expect(released.ev).toBe('ok');
      expect(again.key, 'the same key name').toBe(first.key);
      expect(BigInt(again.token!)).toBeGreaterThan(BigInt(first.token!));
      expect(handled, 'etcd answered the stale delete').toBeGreaterThan(before);
      expect(survived, 'the newer key survived the stale delete').toEqual([again.key]);
      expect(after.ev).toBe('ok');
      // The newer key went only with its own release.
      const gone = s.recorder.events.filter((e) => e.type === 'delete' && e.key === again.key && e.createRevision === BigInt(again.token!));
      expect(gone).toHaveLength(1);
      expectSafe(result, s);
    } finally {
      await proxy.close();
    }
  });
});
