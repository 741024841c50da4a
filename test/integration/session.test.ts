// Session against a real etcd: options, keep-alive, validity deadline, close, lease reuse, loss.
import { execFile } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { circuitBreaker, ConsecutiveBreaker, handleAll, IsolatedCircuitError, noop, retry } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { describe, expect, test } from 'vitest';
import { isLeaseholdError, LeaseLostError, Mutex, Session, SessionClosedError, sessionDefaults } from '../../src/index.js';
import { startEtcd, startProxy } from '../../src/testing/index.js';
import { eventually, keysUnder, uniqueName } from '../helpers.js';
import { etcdForFile } from '../fixture.js';

const fx = etcdForFile(5);

async function etcdctl(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('etcdctl', [`--endpoints=${fx.etcd.endpoints.join(',')}`, ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  return stdout;
}

/** Records every value `session.deadline` takes, polled every 2 ms, with the instant it was first seen. */
function recordDeadlines(session: Session): { moves: { at: number; deadline: number }[]; stop: () => void } {
  const moves = [{ at: performance.now(), deadline: session.deadline }];
  const timer = setInterval(() => {
    if (session.deadline !== moves.at(-1)!.deadline) moves.push({ at: performance.now(), deadline: session.deadline });
  }, 2);
  return { moves, stop: () => clearInterval(timer) };
}

/** An etcd3 client without etcd3's own retries and breakers: only leasehold's policy retries. */
const bareClient = (hosts: string[]) => new Etcd3({ hosts, faultHandling: { host: () => noop, global: noop } });

describe('Session', () => {
  test('bad options are rejected with errors that name the value', async () => {
    const c = fx.etcd.client();
    await expect(Session.create(c, { ttl: 0 })).rejects.toThrow('Expected `ttl` to be an integer from 1 to 9000000000, got `0`');
    await expect(Session.create(c, { ttl: 1.5 })).rejects.toThrow('got `1.5`');
    await expect(Session.create(c, { ttl: '5' as unknown as number })).rejects.toThrow(TypeError);
    await expect(Session.create(c, { ttl: 2, safetyMargin: 2000 })).rejects.toThrow(
      'Expected `safetyMargin` to be less than the TTL (2000 ms), got `2000`',
    );
    await expect(Session.create(c, { ttl: 2, safetyMargin: -1 })).rejects.toThrow('got `-1`');
    await expect(Session.create(c, { ttl: 3, keepAliveInterval: 5000 })).rejects.toThrow(RangeError);
    await expect(Session.create(c, { requestTimeout: 0 })).rejects.toThrow('`requestTimeout`');
    await expect(Session.create(c, { leaseId: 'abc' })).rejects.toThrow('Expected `leaseId` to be a positive decimal string or bigint below 2^63 (etcd\'s decimal lease id), got the string "abc"');
    await expect(Session.create({} as Etcd3)).rejects.toThrow(/etcd3 Etcd3 or Namespace/);
    const reason = new Error('no thanks');
    await expect(Session.create(c, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
  });

  test('without options: a lease of sessionDefaults.ttl (60 s) from etcd, kept by a deadline a tenth of the TTL short', async () => {
    const before = performance.now();
    await using s = await Session.create(fx.etcd.client());
    const after = performance.now();
    const deadline = s.deadline; // before the first keep-alive moves it
    const lease = await fx.admin.leaseClient.leaseTimeToLive({ ID: s.leaseId });
    expect(Number(lease.grantedTTL)).toBe(sessionDefaults.ttl);
    expect(s.ttl).toBe(60);
    // Default safetyMargin: ttl × 100 ms.
    expect(deadline).toBeGreaterThanOrEqual(before + 60_000 - 6000);
    expect(deadline).toBeLessThanOrEqual(after + 60_000 - 6000);
  });

  test('keep-alives hold the lease well past its TTL and move the deadline forward; etcdctl lists the lease as leaseHex', async () => {
    // A keep-alive every 150 ms: a stall of ~750 ms, not ~570 ms, on a loaded machine would lose the 1 s lease.
    await using s = await Session.create(fx.etcd.client(), { ttl: fx.etcd.minTtl, keepAliveInterval: 150 });
    const first = s.deadline;
    await delay(fx.etcd.minTtl * 1000 * 2.5);
    expect(s.alive).toBe(true);
    expect(s.deadline).toBeGreaterThan(first);
    // Alive on the server, long after its TTL, with the TTL asked for.
    const lease = await fx.admin.leaseClient.leaseTimeToLive({ ID: s.leaseId });
    expect(Number(lease.grantedTTL)).toBe(fx.etcd.minTtl);
    expect(Number(lease.TTL)).toBeGreaterThan(-1);
    expect(Number(lease.TTL)).toBeLessThanOrEqual(fx.etcd.minTtl);
    expect(s.ttl).toBe(fx.etcd.minTtl);
    // etcd's own tool names leases in hex (zero-padded to 16 digits); leaseHex is the same number
    // without the padding, as etcd's recipes write it in keys.
    const listed = (await etcdctl('lease', 'list')).split('\n').filter((l) => /^[0-9a-f]{16}$/.test(l.trim()));
    expect(listed.map((id) => BigInt(`0x${id.trim()}`).toString(16))).toContain(s.leaseHex);
    expect(s.leaseHex).toMatch(/^[1-9a-f][0-9a-f]*$/);
    expect(BigInt(`0x${s.leaseHex}`).toString()).toBe(s.leaseId);
  });

  test('close() revokes the lease, releases what it held, aborts with SessionClosedError, and is idempotent', async () => {
    const s = await Session.create(fx.etcd.client(), { ttl: 30 });
    const name = uniqueName('closing');
    const lock = await new Mutex(s, name).lock();
    await s.close();
    expect(s.signal.reason).toBeInstanceOf(SessionClosedError);
    expect(lock.signal.aborted).toBe(true);
    expect(lock.held).toBe(false);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
    const ttl = await fx.admin.leaseClient.leaseTimeToLive({ ID: s.leaseId });
    expect(Number(ttl.TTL)).toBe(-1);
    await s.close();
    await expect(new Mutex(s, name).lock()).rejects.toBeInstanceOf(SessionClosedError);
  });

  test('an existing lease can be adopted, and a key it already owns is resumed, not duplicated', async () => {
    const granted = await fx.admin.leaseClient.leaseGrant({ TTL: 20 });
    const name = uniqueName('adopted');
    const hex = BigInt(granted.ID).toString(16);
    await fx.admin.put(`${name}/${hex}`).value('').lease(granted.ID);
    const existing = await fx.admin.get(`${name}/${hex}`).exec();
    await using s = await Session.create(fx.etcd.client(), { leaseId: granted.ID });
    expect(s.leaseId).toBe(granted.ID);
    expect(s.ttl).toBe(20);
    const lock = await new Mutex(s, name).lock();
    expect(lock.token).toBe(BigInt(existing.kvs[0]!.create_revision));
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([`${name}/${hex}`]);
    await lock.release();
  });

  test('adopting a lease that does not exist is LeaseLostError', async () => {
    await expect(Session.create(fx.etcd.client(), { leaseId: '123456789' })).rejects.toBeInstanceOf(LeaseLostError);
  });

  test('a lease revoked on the server loses the session at the next keep-alive, and loss is final', async () => {
    const s = await Session.create(fx.etcd.client(), { ttl: 3 });
    await fx.admin.leaseClient.leaseRevoke({ ID: s.leaseId });
    await eventually(() => s.signal.aborted, 3000, 'session lost');
    expect(s.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(s.alive).toBe(false);
    await expect(new Mutex(s, 'x').lock()).rejects.toBe(s.signal.reason);
    await s.close(); // does not throw
  });

  test('a session on an etcd3 namespace keeps its keys inside the namespace', async () => {
    const ns = fx.etcd.client().namespace('tenant-a/');
    await using s = await Session.create(ns, { ttl: 5 });
    const name = uniqueName('ns-lock');
    await using lock = await new Mutex(s, name).lock();
    expect(await keysUnder(fx.admin, `tenant-a/${name}/`)).toEqual([`tenant-a/${name}/${s.leaseHex}`]);
    await lock.commit(ns.put('value').value('1'));
    expect(await fx.admin.get('tenant-a/value').string()).toBe('1');
  });
});

describe('Session options change behaviour as documented', () => {
  test('G4: the validity deadline is sendTime + TTL − safetyMargin, never later — at create and after every keep-alive', async () => {
    // At create the send time is bracketed exactly: the grant is sent after `before`, answered before `after`.
    for (const safetyMargin of [0, 1500]) {
      const before = performance.now();
      const s = await Session.create(fx.etcd.client(), { ttl: 5, safetyMargin, keepAliveInterval: 200 });
      const after = performance.now();
      expect(s.deadline, `margin ${safetyMargin}`).toBeGreaterThanOrEqual(before + 5000 - safetyMargin);
      expect(s.deadline, `margin ${safetyMargin}`).toBeLessThanOrEqual(after + 5000 - safetyMargin);
      // After a keep-alive the deadline moves to its send time + TTL − margin: never further ahead of the
      // instant the move is seen (the send came first), and behind it by no more than the round trip
      // plus the 2 ms poll (here under 300 ms, however loaded the machine).
      const record = recordDeadlines(s);
      await delay(1500);
      record.stop();
      const moves = record.moves.slice(1);
      expect(moves.length, `margin ${safetyMargin}: keep-alives every 200 ms`).toBeGreaterThanOrEqual(3);
      for (const { at, deadline } of moves) {
        expect(deadline - at, `margin ${safetyMargin}`).toBeLessThanOrEqual(5000 - safetyMargin + 1);
        // (800 ms: a round trip on a loaded machine, still short of the 1 s a whole-second TTL would cut.)
        expect(deadline - at, `margin ${safetyMargin}`).toBeGreaterThanOrEqual(5000 - safetyMargin - 800);
      }
      await s.close();
    }
  });

  test('safetyMargin: a session whose keep-alives stop is lost that long before etcd could expire its lease', async () => {
    await using own = await startEtcd();
    const member = own.members[0]!;
    const lostAfter: Record<number, number> = {};
    for (const safetyMargin of [0, 2000]) {
      const s = await Session.create(own.client(), { ttl: 3, keepAliveInterval: 250, safetyMargin });
      await delay(600);
      const paused = performance.now();
      await member.pause();
      const lost = await new Promise<number>((resolve) => s.signal.addEventListener('abort', () => resolve(performance.now()), { once: true }));
      await member.resume();
      expect(isLeaseholdError(s.signal.reason) && s.signal.reason.name).toBe('LeaseLostError');
      // The last successful keep-alive went out at most one interval (plus a round trip) before the pause.
      lostAfter[safetyMargin] = lost - paused;
      expect(lost - paused, `margin ${safetyMargin}`).toBeGreaterThanOrEqual(3000 - safetyMargin - 250 - 500);
      // (Up to 1 s late: a timer on a loaded 2-core machine; etcd3's own loss would come at 2 × TTL = 6 s.)
      expect(lost - paused, `margin ${safetyMargin}`).toBeLessThanOrEqual(3000 - safetyMargin + 1000);
      // And the session said so at its own deadline, not later.
      expect(lost - s.deadline).toBeLessThanOrEqual(1000);
      await s.close();
    }
    expect(lostAfter[0]! - lostAfter[2000]!).toBeGreaterThan(1000);
  });

  test('keepAliveInterval: keep-alives (and deadline moves) come at that pace, not at the default TTL / 3', async () => {
    const fast = await Session.create(fx.etcd.client(), { ttl: 5, keepAliveInterval: 200 });
    const slow = await Session.create(fx.etcd.client(), { ttl: 5 }); // every 1667 ms
    const [f, sl] = [recordDeadlines(fast), recordDeadlines(slow)];
    await delay(1500);
    f.stop();
    sl.stop();
    const gaps = f.moves.slice(2).map((m, i) => m.at - f.moves[i + 1]!.at);
    expect(f.moves.length - 1).toBeGreaterThanOrEqual(4);
    expect(sl.moves.length - 1).toBeLessThanOrEqual(1);
    // Each move is one keep-alive later: about 200 ms apart.
    const median = gaps.toSorted((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
    expect(median).toBeGreaterThanOrEqual(120);
    expect(median).toBeLessThanOrEqual(400);
    await Promise.all([fast.close(), slow.close()]);
  });

  test('leaseId as a bigint adopts that lease, keeps it alive and takes its TTL from etcd', async () => {
    const granted = await fx.admin.leaseClient.leaseGrant({ TTL: fx.etcd.minTtl + 1 });
    const s = await Session.create(fx.etcd.client(), { leaseId: BigInt(granted.ID) });
    expect(s.leaseId).toBe(granted.ID);
    expect(s.leaseHex).toBe(BigInt(granted.ID).toString(16));
    expect(s.ttl).toBe(fx.etcd.minTtl + 1);
    const name = uniqueName('bigint-lease');
    const lock = await new Mutex(s, name).lock();
    expect((await fx.admin.get(lock.key).exec()).kvs[0]!.lease).toBe(granted.ID);
    await delay((fx.etcd.minTtl + 1) * 1000 * 2); // well past the TTL: kept alive
    expect(s.alive).toBe(true);
    expect(Number((await fx.admin.leaseClient.leaseTimeToLive({ ID: granted.ID })).TTL)).toBeGreaterThan(-1);
    await s.close();
    expect(Number((await fx.admin.leaseClient.leaseTimeToLive({ ID: granted.ID })).TTL)).toBe(-1);
  });

  test('signal aborted while the grant is in flight: create rejects with the reason, and the lease etcd granted is revoked', async () => {
    await using proxy = await startProxy(fx.etcd.members[0]!.clientUrl);
    const client = bareClient([proxy.url]);
    await client.get('warm-up').string(); // the connection exists before the blackhole
    const before = new Set((await fx.admin.leaseClient.leaseLeases()).leases.map((l) => l.ID));
    proxy.blackhole('toClient'); // requests reach etcd, answers are held back
    const controller = new AbortController();
    const creating = Session.create(client, { ttl: 30, signal: controller.signal });
    const granted = async () => (await fx.admin.leaseClient.leaseLeases()).leases.map((l) => l.ID).filter((id) => !before.has(id));
    await eventually(async () => (await granted()).length === 1, 5000, 'the grant reached etcd');
    const [lease] = await granted();
    const reason = new Error('shutting down');
    controller.abort(reason);
    await expect(creating).rejects.toBe(reason);
    expect(await granted()).toEqual([lease]); // granted, its answer not yet delivered
    proxy.heal(); // the answer arrives after the abort: the lease must not be left to run 30 s
    await eventually(async () => (await granted()).length === 0, 3000, 'the late lease revoked');
    expect(Number((await fx.admin.leaseClient.leaseTimeToLive({ ID: lease! })).TTL)).toBe(-1);
    client.close();
  });

  test('retryPolicy is the policy around every etcd call: an isolated breaker refuses the grant, noop gives up where the default retries', async () => {
    // Every call goes through it, the grant first.
    const isolated = circuitBreaker(handleAll, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(1) });
    const isolation = isolated.isolate();
    await expect(Session.create(fx.etcd.client(), { retryPolicy: isolated })).rejects.toBeInstanceOf(IsolatedCircuitError);
    isolation.dispose();
    // A counting policy sees the calls of create, lock and release.
    const counting = retry(handleAll, { maxAttempts: 0 });
    let calls = 0;
    counting.onSuccess(() => calls++);
    const s = await Session.create(fx.etcd.client(), { retryPolicy: counting });
    const afterCreate = calls;
    const lock = await new Mutex(s, uniqueName('policy')).lock();
    await lock.release();
    expect(afterCreate).toBe(1);
    expect(calls).toBeGreaterThanOrEqual(3);
    await s.close();

    // Unanswered calls (requestTimeout 300 ms) during a 3 s blackhole: with noop, lock() fails at its
    // first deadline; with the default policy (≈ 6.5 s of retries) it gets the lock once the link heals.
    await using proxy = await startProxy(fx.etcd.members[0]!.clientUrl);
    const client = bareClient([proxy.url]);
    const outcomes: Record<string, { ok: boolean; ms: number; error?: unknown }> = {};
    for (const [label, retryPolicy] of [['noop', noop], ['default', undefined]] as const) {
      const session = await Session.create(client, { ttl: 10, requestTimeout: 300, ...(retryPolicy ? { retryPolicy } : {}) });
      proxy.blackhole();
      const healing = delay(3000).then(() => proxy.heal());
      const started = performance.now();
      outcomes[label] = await new Mutex(session, uniqueName(`policy-${label}`)).lock().then(
        async (h) => (await h.release(), { ok: true, ms: performance.now() - started }),
        (error: unknown) => ({ ok: false, ms: performance.now() - started, error }),
      );
      await healing;
      await session.close();
    }
    client.close();
    expect(outcomes['noop']).toMatchObject({ ok: false });
    expect(outcomes['noop']!.ms).toBeLessThan(2500);
    expect(String(outcomes['noop']!.error)).toMatch(/deadline/i);
    expect(outcomes['default']).toMatchObject({ ok: true });
    expect(outcomes['default']!.ms).toBeGreaterThanOrEqual(2900);
  });
});
