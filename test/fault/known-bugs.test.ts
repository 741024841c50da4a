// Minimal repros of library bugs the fault suite found. Open ones fail while the bug is there, so they
// run only on demand — `LEASEHOLD_REPRO=1 npx vitest run test/fault/known-bugs.test.ts` — and a fix
// moves its repro to the "fixed" block, which always runs. See docs/guarantees.md, "Known issues".
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Mutex, Session } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { startProxy } from '../../src/testing/proxy.js';

/** The open repros run only when asked for (they fail while the bug is there). */
const runOpenRepros = Boolean(process.env['LEASEHOLD_REPRO']);

describe('fixed library bugs (regressions)', { timeout: 60_000 }, () => {
  let etcd: EtcdCluster;
  beforeAll(async () => {
    etcd = await startEtcd({ provider: 'binary', members: 3 });
  });
  afterAll(async () => {
    await etcd.stop();
  });

  test('a Session survives a partition of one of its two endpoints (keep-alive fails over)', async () => {
    // Two endpoints, each behind a proxy; one is blackholed for 1.5 × TTL while the other is healthy.
    // Every session's keep-alive must move to the healthy member in time. Before the fix about a third
    // of the sessions were lost: the stalled stream was noticed one keep-alive tick too late, and its
    // replacement landed on the stalled endpoint again half the time. Now an unanswered keep-alive
    // replaces its stream after interval/2, on another member first.
    await using a = await startProxy(etcd.members[0]!.clientUrl);
    await using b = await startProxy(etcd.members[1]!.clientUrl);
    const clients = Array.from({ length: 8 }, () => new Etcd3({ hosts: [a.url, b.url] }));
    const sessions = await Promise.all(clients.map(async (c) => Session.create(c, { ttl: 3, requestTimeout: 1000 })));
    await delay(1200);
    a.blackhole();
    await delay(4500);
    a.heal();
    const lost = sessions.filter((s) => s.signal.aborted).length;
    await Promise.all(sessions.map(async (s) => s.close()));
    for (const c of clients) c.close();
    expect(lost, `${lost} of 8 sessions lost although one endpoint stayed healthy`).toBe(0);
  });

  test('LockHandle.commit() is bounded by the session requestTimeout when the member does not answer', async () => {
    await using proxy = await startProxy(etcd.members[0]!.clientUrl);
    const client = new Etcd3({ hosts: [proxy.url] });
    const session = await Session.create(client, { ttl: 5, requestTimeout: 500 });
    const lock = await new Mutex(session, 'repro/commit').lock();
    proxy.blackhole();
    const started = performance.now();
    const outcome = await Promise.race([
      lock.commit(client.put('repro/commit-value').value('x')).then(
        () => 'committed',
        () => 'rejected',
      ),
      delay(3000).then(() => 'still pending after 3 s'),
    ]);
    const elapsed = performance.now() - started;
    proxy.heal();
    await session.close();
    client.close();
    expect(outcome, `after ${elapsed.toFixed(0)} ms`).toBe('rejected');
  });
  test('Session.create() never hands out a session that is lost on arrival', async () => {
    // A grant answered later than TTL − safetyMargin: the lease cannot be trusted any more.
    await using proxy = await startProxy(etcd.members[0]!.clientUrl);
    const client = new Etcd3({ hosts: [proxy.url] });
    proxy.blackhole();
    const creating = Session.create(client, { ttl: 1, requestTimeout: 5000 });
    await delay(1500);
    proxy.heal();
    await expect(creating).rejects.toThrow(/past its validity/);
    const fine = await Session.create(client, { ttl: 1 });
    expect(fine.alive).toBe(true);
    await fine.close();
    client.close();
  });

  test('lock() rides out a leader failover instead of rejecting with etcd3\'s BrokenCircuitError', async () => {
    // etcd3's default per-host circuit breaker opens after 3 consecutive recoverable errors (deadline
    // exceeded, leader changed) and then refuses calls for 5 s; while the leader is frozen the other
    // members fail calls too, so all breakers can open. leasehold's retry policy does not count
    // BrokenCircuitError as transient, so lock() rejects with it (seen in fault scenario 7).
    const sessions = await Promise.all(
      Array.from({ length: 4 }, async () => Session.create(etcd.client(), { ttl: 10, requestTimeout: 500, transport: 'etcd3' })),
    );
    const errors: string[] = [];
    let stop = false;
    const workers = sessions.map(async (session) => {
      const mutex = new Mutex(session, 'repro/breaker');
      while (!stop) {
        try {
          const h = await mutex.lock({ signal: AbortSignal.timeout(2000) });
          await h.release();
        } catch (error) {
          errors.push(error instanceof Error ? (error.name === 'Error' ? error.constructor.name : error.name) : String(error));
          await delay(50);
        }
      }
    });
    const leader = await etcd.leader();
    await leader.pause();
    await delay(3000);
    await leader.resume();
    await delay(1000);
    stop = true;
    await Promise.all(workers);
    await Promise.all(sessions.map(async (s) => s.close()));
    expect(errors.filter((e) => e === 'BrokenCircuitError')).toEqual([]);
  });
});

describe.runIf(runOpenRepros)('etcd 3.4.23 bugs (repros, not leasehold\'s)', { timeout: 60_000 }, () => {
  test('a leader frozen past the TTL revokes, when it thaws, leases the new leader kept alive (etcd 15247)', async () => {
    // Reproduces in about a third of the runs on 3.4.23 (a race between the thawed leader's lessor
    // and its stepping down); mitigated by etcd PR 16822, in 3.4.31.
    await using etcd = await startEtcd({ provider: 'binary', members: 3 });
    const leader = await etcd.leader();
    const others = etcd.members.filter((m) => m !== leader).map((m) => m.clientUrl);
    // Half the clients talk to every member, half never to the old leader.
    const clients = Array.from({ length: 6 }, (_, i) => new Etcd3({ hosts: i % 2 === 0 ? [...etcd.endpoints] : others }));
    const sessions = await Promise.all(clients.map(async (c) => Session.create(c, { ttl: 2, requestTimeout: 1000 })));
    await Promise.all(sessions.map(async (s, i) => clients[i]!.put(`repro/k${i}`).value('v').lease(s.leaseId).exec()));
    await leader.pause();
    await delay(4000);
    const alive = sessions.filter((s) => !s.signal.aborted);
    await leader.resume();
    await delay(1500);
    // Sessions that survived the freeze (their keep-alives succeeded through the new leader) must not
    // be revoked by the thawing old leader.
    const revoked = alive.filter((s) => s.signal.aborted);
    for (const s of sessions) await s.close();
    for (const c of clients) c.close();
    expect(alive.length).toBeGreaterThan(0);
    expect(revoked.map((s) => String((s.signal.reason as Error).cause))).toEqual([]);
  });
});

