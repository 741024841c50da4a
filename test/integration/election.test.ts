// Election against a real etcd: one leader at a time, failover, expiry in the queue, proclaim, observe
// (monotonic, compaction, broken watch), interop with `etcdctl elect`, aborts and validation.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Election, type LeaderState } from '../../src/election.js';
import type { Leadership } from '../../src/leadership.js';
import {
  LeaseLostError,
  NoLeaderError,
  NotLeaderError,
  Session,
  SessionClosedError,
} from '../../src/index.js';
import { startEtcd, startProxy, type EtcdCluster } from '../../src/testing/index.js';
import { etcdctl, eventually, exited, keysUnder, runTs, stillPending, uniqueName } from '../helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

let etcd: EtcdCluster;
let admin: Etcd3;
let scriptDir: string;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = etcd.client();
  scriptDir = mkdtempSync(join(tmpdir(), 'leasehold-election-'));
  writeFileSync(join(scriptDir, 'campaigner.mts'), campaignerScript);
});
afterAll(async () => {
  await etcd?.stop();
  rmSync(scriptDir, { recursive: true, force: true });
});

/** Another service, as a process: campaigns for NAME with VALUE on a session of TTL seconds. */
const campaignerScript = `import etcd3 from ${JSON.stringify(join(root, 'node_modules/etcd3/lib/index.js'))};
import { Session } from ${JSON.stringify(join(root, 'src/session.ts'))};
import { Election } from ${JSON.stringify(join(root, 'src/election.ts'))};
const { NAME, VALUE, TTL, ETCD_ENDPOINTS } = process.env;
const client = new etcd3.Etcd3({ hosts: ETCD_ENDPOINTS.split(',') });
const session = await Session.create(client, { ttl: Number(TTL) });
console.log(JSON.stringify({ event: 'session', key: NAME + '/' + session.leaseHex }));
try {
  const leadership = await new Election(session, NAME).campaign(VALUE);
  console.log(JSON.stringify({ event: 'leader', term: String(leadership.term) }));
  await new Promise((resolve) => leadership.signal.addEventListener('abort', resolve));
} catch (error) {
  console.log(JSON.stringify({ event: 'rejected', name: error.name }));
}
client.close();
process.exit(0);
`;

interface Campaigner {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the child's campaign key once its session exists. */
  key: Promise<string>;
  exited: Promise<number | null>;
}

function campaigner(name: string, value: string, ttl: number): Campaigner {
  const child = spawn(process.execPath, ['--import', 'tsx', join(scriptDir, 'campaigner.mts')], {
    cwd: root,
    env: { ...process.env, ETCD_ENDPOINTS: etcd.endpoints.join(','), NAME: name, VALUE: value, TTL: String(ttl) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const key = (async () => {
    await eventually(() => out.includes('"session"') || child.exitCode !== null, 30_000, 'child session');
    return (JSON.parse(out.split('\n')[0]!) as { key: string }).key;
  })();
  return { child, output: () => out, key, exited };
}

/** Kills a campaigner child for good (also a stopped one). */
async function reap(c: Campaigner): Promise<void> {
  if (c.child.exitCode === null && c.child.signalCode === null) {
    c.child.kill('SIGCONT');
    c.child.kill('SIGKILL');
  }
  await c.exited;
}

/** A Session on its own client, as a separate service would have. */
async function session(ttl = 10, client: Etcd3 = etcd.client()): Promise<Session> {
  return Session.create(client, { ttl });
}

/** Collects what `observe()` yields until the returned `stop()` is called. */
function observeInto(election: Election): { seen: LeaderState[]; stop: () => Promise<void> } {
  const seen: LeaderState[] = [];
  const controller = new AbortController();
  let failure: unknown;
  const done = (async () => {
    for await (const state of election.observe({ signal: controller.signal })) seen.push(state);
  })().catch((error: unknown) => {
    failure = error;
  });
  return {
    seen,
    stop: async () => {
      controller.abort();
      await done;
      // observe() ends cleanly on abort; it must not have thrown before.
      expect(failure).toBeUndefined();
    },
  };
}

/** Retries `fn` while the etcd3 client's circuit breaker is open after an outage (5 s by default). */
async function afterOutage<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await delay(200);
    }
  }
}

/** Terms strictly increase, except for proclaims, which keep the term and change the value. */
function expectMonotonic(seen: LeaderState[]): void {
  for (let i = 1; i < seen.length; i++) {
    const [a, b] = [seen[i - 1]!, seen[i]!];
    if (b.term === a.term) {
      expect(b.key).toBe(a.key);
      expect(b.value).not.toBe(a.value);
    } else {
      expect(b.term).toBeGreaterThan(a.term);
    }
  }
}

describe('Election', () => {
  test('campaign: etcd’s key layout, term = create revision, value stored, leader() agrees', async () => {
    await using s = await session();
    const name = uniqueName('layout');
    const election = new Election(s, name);
    await expect(election.leader()).rejects.toBeInstanceOf(NoLeaderError);
    await using leadership = await election.campaign('pod-a');
    expect(leadership.key).toBe(`${name}/${s.leaseHex}`);
    expect(leadership.leaseId).toBe(s.leaseId);
    expect(leadership.value).toBe('pod-a');
    const kv = (await admin.get(leadership.key).exec()).kvs[0]!;
    expect(BigInt(kv.create_revision)).toBe(leadership.term);
    expect(kv.value.toString()).toBe('pod-a');
    expect(kv.lease).toBe(s.leaseId);
    expect(await election.leader()).toEqual({ key: leadership.key, value: 'pod-a', term: leadership.term, leaseId: s.leaseId });
    expect(leadership.isLeader).toBe(true);
    await leadership.resign();
    expect(leadership.isLeader).toBe(false);
    expect(leadership.signal.reason).toBeInstanceOf(NotLeaderError);
    expect(await keysUnder(admin, `${name}/`)).toEqual([]);
    await leadership.resign(); // idempotent
    await expect(election.leader()).rejects.toBeInstanceOf(NoLeaderError);
  });

  test('one leader at a time, strictly increasing terms, across 24 handovers among 4 sessions', async () => {
    const name = uniqueName('handover');
    const sessions = await Promise.all(Array.from({ length: 4 }, () => session()));
    await using watcherSession = await session();
    const watcher = new Election(watcherSession, name);
    const observer = observeInto(watcher);
    let leaders = 0;
    let maxLeaders = 0;
    const terms: bigint[] = [];
    try {
      await Promise.all(
        sessions.map(async (s, i) => {
          const election = new Election(s, name);
          for (let round = 0; round < 6; round++) {
            const leadership = await election.campaign(`c${i}-r${round}`);
            maxLeaders = Math.max(maxLeaders, ++leaders);
            terms.push(leadership.term);
            // An independent read (another session's view) names us, with our term and value.
            expect(await watcher.leader()).toMatchObject({ key: leadership.key, term: leadership.term, value: `c${i}-r${round}` });
            // A write fenced by the term is applied.
            await leadership.commit(admin.put(`${name}-log/${leadership.term}`).value(String(i)));
            await delay(3);
            leaders--;
            await leadership.resign();
          }
        }),
      );
      expect(maxLeaders).toBe(1);
      expect(terms).toHaveLength(24);
      for (let i = 1; i < terms.length; i++) expect(terms[i]).toBeGreaterThan(terms[i - 1]!);
      expect((await admin.getAll().prefix(`${name}-log/`).keys()).length).toBe(24);
      // The observer saw leaders only in term order, each of them a real leader, up to the last one.
      await eventually(() => observer.seen.at(-1)?.term === terms.at(-1), 5000, 'observer catches up');
      expectMonotonic(observer.seen);
      for (const state of observer.seen) expect(terms).toContain(state.term);
      expect(observer.seen.length).toBeGreaterThan(1);
    } finally {
      await observer.stop();
      await Promise.all(sessions.map((s) => s.close()));
    }
  });

  test('failover when the leader’s session closes: the waiting campaigner leads at once', async () => {
    const name = uniqueName('close');
    const a = await session();
    await using b = await session();
    const leaderA = await new Election(a, name).campaign('a');
    const waiting = new Election(b, name).campaign('b');
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 2, 5000, 'b queued');
    expect(await stillPending(waiting, 100)).toBe(true);
    const t0 = performance.now();
    await a.close();
    const leaderB = await waiting;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(leaderA.signal.reason).toBeInstanceOf(SessionClosedError);
    expect(leaderB.term).toBeGreaterThan(leaderA.term);
    await expect(leaderA.proclaim('still me?')).rejects.toBeInstanceOf(NotLeaderError);
    await leaderB.resign();
  });

  test('failover when the leader’s lease expires (its process is killed) within TTL + 2 s', async () => {
    const name = uniqueName('expiry');
    const ttl = Math.max(2, etcd.minTtl);
    const other = campaigner(name, 'doomed', ttl);
    try {
      await eventually(() => other.output().includes('"leader"'), 30_000, 'child leads');
      await using reader = await session();
      const theirs = await new Election(reader, name).leader();
      expect(theirs.value).toBe('doomed');
      await using b = await session();
      const waiting = new Election(b, name).campaign('b');
      await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 2, 5000, 'b queued');
      const t0 = performance.now();
      other.child.kill('SIGKILL'); // no resign, no revoke: etcd must expire the lease
      const leaderB = await waiting;
      expect(performance.now() - t0).toBeLessThan(ttl * 1000 + 2000);
      expect(leaderB.term).toBeGreaterThan(theirs.term);
      await leaderB.resign();
    } finally {
      await reap(other);
    }
  });

  test('a campaigner whose lease is revoked while queued is never told it leads (etcd 19597)', async () => {
    const name = uniqueName('queued-expiry');
    await using a = await session();
    // A long keep-alive interval: the session itself would not notice the revocation for 10 s.
    await using b = await Session.create(etcd.client(), { ttl: 30 });
    await using c = await session();
    const leaderA = await new Election(a, name).campaign('a');
    const bCampaign = new Election(b, name).campaign('b');
    bCampaign.catch(() => undefined);
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 2, 5000, 'b queued');
    const cCampaign = new Election(c, name).campaign('c');
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 3, 5000, 'c queued');
    await admin.leaseClient.leaseRevoke({ ID: b.leaseId });
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 2, 5000, 'b’s key gone');
    await leaderA.resign(); // wakes b (watching a) and c (watching a since b's key went)
    const leaderC = await cCampaign;
    await expect(bCampaign).rejects.toBeInstanceOf(LeaseLostError);
    expect(b.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(await new Election(a, name).leader()).toMatchObject({ key: leaderC.key, value: 'c' });
    await leaderC.resign();
  });

  test('a campaigner frozen (SIGSTOP) in the queue past its TTL is told LeaseLostError, never leader', async () => {
    const name = uniqueName('frozen');
    await using a = await session();
    const leaderA = await new Election(a, name).campaign('a');
    const frozen = campaigner(name, 'frozen', Math.max(2, etcd.minTtl));
    try {
      const childKey = await frozen.key;
      await eventually(async () => (await keysUnder(admin, `${name}/`)).includes(childKey), 10_000, 'child queued');
      frozen.child.kill('SIGSTOP');
      await eventually(async () => !(await keysUnder(admin, `${name}/`)).includes(childKey), 10_000, 'child lease expired');
      // While it is frozen, the leader resigns: the child's watch on the leader's key has an event waiting.
      await leaderA.resign();
      await expect(new Election(a, name).leader()).rejects.toBeInstanceOf(NoLeaderError);
      frozen.child.kill('SIGCONT');
      expect(await frozen.exited).toBe(0);
      expect(frozen.output()).toContain('"event":"rejected","name":"LeaseLostError"');
      expect(frozen.output()).not.toContain('"leader"');
      await expect(new Election(a, name).leader()).rejects.toBeInstanceOf(NoLeaderError);
    } finally {
      await reap(frozen);
    }
  });

  test('proclaim is seen by observers and leader(); after the leadership ends it is NotLeaderError', async () => {
    const name = uniqueName('proclaim');
    await using s = await session();
    await using w = await session();
    const watcher = new Election(w, name);
    const observer = observeInto(watcher);
    try {
      const leadership = await new Election(s, name).campaign('starting');
      await eventually(() => observer.seen.at(-1)?.value === 'starting', 5000, 'observer sees the leader');
      await leadership.proclaim('50%');
      expect(leadership.value).toBe('50%');
      await eventually(() => observer.seen.at(-1)?.value === '50%', 5000, 'observer sees the proclaim');
      expect(await watcher.leader()).toMatchObject({ value: '50%', term: leadership.term });
      // The key stays bound to the lease after a proclaim.
      expect((await admin.get(leadership.key).exec()).kvs[0]!.lease).toBe(s.leaseId);
      await leadership.proclaim('done');
      await eventually(() => observer.seen.at(-1)?.value === 'done', 5000, 'observer sees the second proclaim');
      expect(observer.seen.every((state) => state.term === leadership.term)).toBe(true);
      await leadership.resign();
      await expect(leadership.proclaim('late')).rejects.toBeInstanceOf(NotLeaderError);
      await expect(leadership.commit(admin.put(`${name}-x`).value('late'))).rejects.toBeInstanceOf(NotLeaderError);
      expect(await admin.get(`${name}-x`).string()).toBeNull();
    } finally {
      await observer.stop();
    }
  });

  test('a leader whose key is deleted by someone else is demoted: signal aborts, proclaim fails', async () => {
    const name = uniqueName('deleted');
    await using s = await session();
    const election = new Election(s, name);
    const leadership = await election.campaign('x');
    await admin.delete().key(leadership.key);
    await eventually(() => leadership.signal.aborted, 5000, 'leader notices');
    expect(leadership.signal.reason).toBeInstanceOf(NotLeaderError);
    expect(s.alive).toBe(true);
    await expect(leadership.proclaim('y')).rejects.toBeInstanceOf(NotLeaderError);
    // The local turn was passed on: the same session can campaign again, with a newer term.
    const again = await election.campaign('x2');
    expect(again.term).toBeGreaterThan(leadership.term);
    await again.resign();
  });

  test('observe never goes back, survives a compaction, and ends cleanly on abort', async () => {
    const name = uniqueName('compaction');
    const sessions = await Promise.all(Array.from({ length: 3 }, () => session()));
    const observer = observeInto(new Election(sessions[0]!, name));
    try {
      const handover = async (i: number, value: string): Promise<Leadership> => {
        const leadership = await new Election(sessions[i]!, name).campaign(value);
        await leadership.proclaim(`${value}+`);
        return leadership;
      };
      let current = await handover(1, 'one');
      await eventually(() => observer.seen.at(-1)?.value === 'one+', 5000, 'first leader seen');
      const { header } = await admin.get('anything').exec();
      await admin.kv.compact({ revision: header.revision, physical: true });
      for (const [i, value] of [
        [2, 'two'],
        [1, 'three'],
        [2, 'four'],
      ] as const) {
        await current.resign();
        current = await handover(i, value);
      }
      await eventually(() => observer.seen.at(-1)?.value === 'four+', 5000, 'leaders after the compaction seen');
      expectMonotonic(observer.seen);
      // A new observer after the compaction starts from the current leader.
      const late = observeInto(new Election(sessions[0]!, name));
      await eventually(() => late.seen.length > 0, 5000, 'late observer');
      expect(late.seen[0]).toMatchObject({ term: current.term, value: 'four+' });
      await late.stop();
      await current.resign();
    } finally {
      await observer.stop();
      await Promise.all(sessions.map((s) => s.close()));
    }
  });

  test('observe survives a broken watch (etcd killed and restarted) and goes on from the new state', async () => {
    await using own = await startEtcd();
    const client = own.client();
    const name = uniqueName('broken-watch');
    const a = await Session.create(client, { ttl: 30 });
    const observer = observeInto(new Election(a, name));
    try {
      const leaderA = await new Election(a, name).campaign('a');
      await eventually(() => observer.seen.at(-1)?.value === 'a', 5000, 'a seen');
      await own.members[0]!.restart(); // SIGKILL and start again: every watch stream breaks
      await afterOutage(() => leaderA.proclaim('a again'));
      await eventually(() => observer.seen.at(-1)?.value === 'a again', 15_000, 'proclaim after restart seen');
      await leaderA.resign();
      const b = await afterOutage(() => Session.create(client, { ttl: 30 }));
      const leaderB = await new Election(b, name).campaign('b');
      await eventually(() => observer.seen.at(-1)?.value === 'b', 15_000, 'next leader after restart seen');
      expectMonotonic(observer.seen);
      expect(observer.seen.map((state) => state.value)).toEqual(['a', 'a again', 'b']);
      await leaderB.resign();
      await b.close();
    } finally {
      await observer.stop();
      await a.close();
    }
  });

  test('nested names are not contenders: `jobs` ignores `jobs/nightly/<lease>`', async () => {
    const name = uniqueName('nest');
    await using s1 = await session();
    await using s2 = await session();
    const nested = await new Election(s1, `${name}/nightly`).campaign('nested');
    await expect(new Election(s2, name).leader()).rejects.toBeInstanceOf(NoLeaderError);
    const top = await new Election(s2, name).campaign('top'); // not blocked by the nested key
    expect(await new Election(s1, name).leader()).toMatchObject({ key: top.key, value: 'top' });
    const observer = observeInto(new Election(s1, name));
    await eventually(() => observer.seen.length > 0, 5000, 'observer');
    expect(observer.seen[0]).toMatchObject({ key: top.key });
    await observer.stop();
    await top.resign();
    await nested.resign();
  });

  test('abort while queued: the key is deleted, the reason is rethrown, the queue goes on', async () => {
    const name = uniqueName('abort');
    await using a = await session();
    await using b = await session();
    await using c = await session();
    const leaderA = await new Election(a, name).campaign('a');
    const controller = new AbortController();
    const bCampaign = new Election(b, name).campaign('b', { signal: controller.signal });
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 2, 5000, 'b queued');
    const cCampaign = new Election(c, name).campaign('c');
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 3, 5000, 'c queued');
    const reason = new Error('not today');
    controller.abort(reason);
    await expect(bCampaign).rejects.toBe(reason);
    expect(await keysUnder(admin, `${name}/`)).toEqual([leaderA.key, `${name}/${c.leaseHex}`]);
    expect(await stillPending(cCampaign, 100)).toBe(true);
    await leaderA.resign();
    const leaderC = await cCampaign;
    await leaderC.resign();
    const already = AbortSignal.abort(reason);
    await expect(new Election(b, name).campaign('b', { signal: already })).rejects.toBe(reason);
  });

  test('two campaigns for one name on one session: the second waits until the first resigns', async () => {
    const name = uniqueName('same-session');
    await using s = await session();
    const election = new Election(s, name);
    const first = await election.campaign('first');
    const second = election.campaign('second');
    expect(await stillPending(second, 200)).toBe(true);
    expect(await keysUnder(admin, `${name}/`)).toEqual([first.key]);
    await first.resign();
    const leader = await second;
    expect(leader.key).toBe(first.key);
    expect(leader.term).toBeGreaterThan(first.term);
    expect(leader.value).toBe('second');
    expect(first.signal.aborted).toBe(true);
    await leader.resign();
  });

  test('campaigning on an adopted lease whose key exists takes it over and writes the new value', async () => {
    const name = uniqueName('adopt');
    const s1 = await Session.create(etcd.client(), { ttl: 10 });
    const old = await new Election(s1, name).campaign('before restart');
    // A new process adopts the lease (e.g. persisted across a restart) and campaigns again.
    await using s2 = await Session.create(etcd.client(), { leaseId: s1.leaseId });
    const resumed = await new Election(s2, name).campaign('after restart');
    expect(resumed.term).toBe(old.term);
    expect(await new Election(s2, name).leader()).toMatchObject({ value: 'after restart', term: old.term });
    await resumed.resign();
    await expect(new Election(s2, name).leader()).rejects.toBeInstanceOf(NoLeaderError);
  });

  test('inputs are validated with TypeErrors that name the value', async () => {
    await using s = await session();
    expect(() => new Election(s, '')).toThrow(/Expected `name` of Election to be a non-empty string, got the string ""/);
    expect(() => new Election(s, 'a/')).toThrow(TypeError);
    expect(() => new Election({} as Session, 'x')).toThrow(TypeError);
    const election = new Election(s, uniqueName('validate'));
    await expect(election.campaign(42 as unknown as string)).rejects.toThrow(
      /Expected `value` of Election.campaign to be a string, got `42`/,
    );
    await expect(election.campaign('v', { signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(TypeError);
    await expect(election.leader({ signal: {} as AbortSignal })).rejects.toThrow(TypeError);
    const leadership = await election.campaign('v');
    await expect(leadership.proclaim(null as unknown as string)).rejects.toThrow(/`value` of Leadership.proclaim/);
    await leadership.resign();
  });

  test('a closed session cannot campaign, but leader() and observe() need no lease and still work', async () => {
    const name = uniqueName('closed');
    const s = await session();
    await s.close();
    const election = new Election(s, name);
    await expect(election.campaign('x')).rejects.toBeInstanceOf(SessionClosedError);
    await using other = await session();
    const leadership = await new Election(other, name).campaign('other');
    expect(await election.leader()).toMatchObject({ value: 'other', term: leadership.term });
    const observer = observeInto(election);
    await eventually(() => observer.seen.at(-1)?.value === 'other', 5000, 'observed on a closed session');
    await observer.stop();
    await leadership.resign();
  });
});

describe('Election calls with a signal, and Leadership.election', () => {
  test('leader({ signal }): aborting a read that etcd does not answer rejects at once with the reason', async () => {
    await using proxy = await startProxy(etcd.members[0]!.clientUrl);
    const client = new Etcd3({ hosts: [proxy.url] });
    await using s = await Session.create(client, { ttl: 10 });
    const name = uniqueName('leader-signal');
    await using other = await session();
    const leadership = await new Election(other, name).campaign('them');
    const election = new Election(s, name);
    expect(await election.leader({ signal: new AbortController().signal })).toMatchObject({ value: 'them', term: leadership.term });
    proxy.blackhole();
    const controller = new AbortController();
    const reading = election.leader({ signal: controller.signal });
    expect(await stillPending(reading, 200)).toBe(true); // etcd does not answer (its deadline is 5 s)
    const reason = new Error('stop reading');
    const t0 = performance.now();
    controller.abort(reason);
    await expect(reading).rejects.toBe(reason);
    expect(performance.now() - t0).toBeLessThan(2500); // at once, not at the 5 s request deadline
    // An already aborted signal rejects before any call.
    await expect(election.leader({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    proxy.heal();
    expect(await election.leader()).toMatchObject({ value: 'them' });
    await leadership.resign();
    client.close();
  });

  test('proclaim(value, { signal }): an aborted proclaim rejects with the reason; leadership and value stay consistent', async () => {
    await using proxy = await startProxy(etcd.members[0]!.clientUrl);
    const client = new Etcd3({ hosts: [proxy.url] });
    await using s = await Session.create(client, { ttl: 10 });
    const name = uniqueName('proclaim-signal');
    const election = new Election(s, name);
    const leadership = await election.campaign('v1');
    expect(leadership.election).toBe(election);
    expect(await leadership.election.leader()).toMatchObject({ key: leadership.key, term: leadership.term, value: 'v1' });
    // Already aborted: no write at all.
    const reason = new Error('never mind');
    await expect(leadership.proclaim('v2', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(leadership.value).toBe('v1');
    expect(await admin.get(leadership.key).string()).toBe('v1');
    // Aborted while etcd does not answer: rejects at once; the leadership itself is not ended by it.
    proxy.blackhole();
    const controller = new AbortController();
    const proclaiming = leadership.proclaim('v3', { signal: controller.signal });
    expect(await stillPending(proclaiming, 200)).toBe(true);
    const t0 = performance.now();
    controller.abort(reason);
    await expect(proclaiming).rejects.toBe(reason);
    expect(performance.now() - t0).toBeLessThan(2500); // at once, not at the 5 s request deadline
    expect(leadership.value).toBe('v1'); // not confirmed, so not taken as the value
    expect(leadership.signal.aborted).toBe(false);
    proxy.heal();
    // The write may or may not have landed; either way the key is still ours, and a proclaim works.
    expect(['v1', 'v3']).toContain(await admin.get(leadership.key).string());
    // txn(): a builder guarded by the term, for etcd writes that must only land while leading.
    const guarded = await leadership.txn().then(client.put(`${name}-fenced`).value('by the leader')).commit();
    expect(guarded.succeeded).toBe(true);
    await leadership.proclaim('v4', { signal: AbortSignal.timeout(10_000) });
    expect(leadership.value).toBe('v4');
    expect(await new Election(s, name).leader()).toMatchObject({ value: 'v4', term: leadership.term });
    await leadership.resign();
    const late = await leadership.txn().then(client.put(`${name}-fenced`).value('after resigning')).commit();
    expect(late.succeeded).toBe(false);
    expect(await admin.get(`${name}-fenced`).string()).toBe('by the leader');
    client.close();
  });
});

describe('Election interop with etcdctl elect', () => {
  const ctl = (args: string[]) => etcdctl(etcd.endpoints, args);

  test('`etcdctl elect NAME VALUE` leads: our campaign waits, leader() and observe() show it; it resigns → we lead', async () => {
    const name = uniqueName('ctl-leads');
    const child = ctl(['elect', name, 'from-etcdctl']);
    try {
      await eventually(() => child.output().includes('from-etcdctl'), 10_000, 'etcdctl elected');
      await using s = await session();
      const election = new Election(s, name);
      const theirs = await election.leader();
      expect(theirs.value).toBe('from-etcdctl');
      expect(theirs.key).toMatch(new RegExp(`^${name}/[0-9a-f]+$`));
      expect(child.output()).toContain(theirs.key);
      const observer = observeInto(election);
      const ours = election.campaign('from-node');
      expect(await stillPending(ours, 300)).toBe(true);
      await eventually(() => observer.seen.length > 0, 10_000, 'the observer’s first answer'); // before etcdctl resigns
      child.kill('SIGINT'); // etcdctl resigns on SIGINT
      const leadership = await ours;
      expect(leadership.term).toBeGreaterThan(theirs.term);
      await eventually(() => observer.seen.at(-1)?.value === 'from-node', 5000, 'observer sees us');
      expect(observer.seen[0]).toMatchObject({ value: 'from-etcdctl' });
      await observer.stop();
      await leadership.resign();
    } finally {
      child.kill('SIGKILL');
      await exited(child);
    }
  });

  test('we lead: `etcdctl elect -l` shows our value and proclaims; `etcdctl elect` waits until we resign', async () => {
    const name = uniqueName('ctl-observes');
    await using s = await session();
    const leadership = await new Election(s, name).campaign('node-leader');
    const listener = ctl(['elect', '-l', name]);
    const campaigner = ctl(['elect', name, 'ctl-candidate']);
    try {
      await eventually(() => listener.output().includes(`${leadership.key}\nnode-leader\n`), 10_000, 'etcdctl -l sees us');
      await leadership.proclaim('node-leader v2');
      await eventually(() => listener.output().includes('node-leader v2'), 10_000, 'etcdctl -l sees the proclaim');
      await delay(300);
      expect(campaigner.output()).not.toContain('ctl-candidate');
      await leadership.resign();
      await eventually(() => campaigner.output().includes('ctl-candidate'), 10_000, 'etcdctl elected after us');
      await eventually(() => listener.output().includes('ctl-candidate'), 10_000, 'etcdctl -l sees the handover');
    } finally {
      listener.kill('SIGINT');
      campaigner.kill('SIGINT');
      await Promise.all([exited(listener), exited(campaigner)]);
    }
  });
});

describe('examples/election.ts', () => {
  test('runs to completion against a real etcd', async () => {
    const { code, output } = await runTs(join(root, 'examples', 'election.ts'), { ETCD_ENDPOINTS: etcd.endpoints.join(',') });
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(output).toMatch(/bob leads with term \d+ > \d+/);
    expect(output).toContain('alice can no longer proclaim: NotLeaderError');
  }, 60_000);
});
