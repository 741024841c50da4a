// Mutex against a real etcd: FIFO, mutual exclusion, herd-free handoff, aborts, lease loss, interop.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { noop } from 'cockatiel';
import { describe, expect, test } from 'vitest';
import { LeaseLostError, Mutex, NotHeldError, Session, isLeaseLostError } from '../../src/index.js';
import { startEtcd } from '../../src/testing/index.js';
import { etcdctl, eventually, exited, keysUnder, stillPending, uniqueName, untilReleased } from '../helpers.js';
import { etcdForFile } from '../fixture.js';

const fx = etcdForFile(5);

describe('Mutex', () => {
  test('an uncontended lock is ours at once, with etcd’s key layout and a token that is the create revision', async () => {
    await using s = await fx.session();
    const name = uniqueName('layout');
    const mutex = new Mutex(s, name);
    await using lock = await mutex.lock();
    expect(lock.key).toBe(`${name}/${s.leaseHex}`);
    expect(lock.leaseId).toBe(s.leaseId);
    const kv = await fx.admin.get(lock.key).exec();
    expect(kv.kvs).toHaveLength(1);
    expect(BigInt(kv.kvs[0]!.create_revision)).toBe(lock.token);
    expect(kv.kvs[0]!.lease).toBe(s.leaseId);
    expect(lock.held).toBe(true);
    await lock.release();
    expect(lock.held).toBe(false);
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(NotHeldError);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
    await lock.release(); // idempotent
  });

  test('waiters acquire in FIFO order (6 contenders)', async () => {
    const name = uniqueName('fifo');
    const sessions = await Promise.all(Array.from({ length: 6 }, () => fx.session()));
    try {
      const first = await new Mutex(sessions[0]!, name).lock();
      const order: number[] = [];
      const waits: Promise<void>[] = [];
      for (let i = 1; i < sessions.length; i++) {
        const mutex = new Mutex(sessions[i]!, name);
        waits.push(
          mutex.lock().then(async (h) => {
            order.push(i);
            await delay(10);
            await h.release();
          }),
        );
        // Make the queue order unambiguous: wait until this waiter's key is in etcd.
        await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === i + 1, 5000, 'enqueue');
      }
      await first.release();
      await Promise.all(waits);
      expect(order).toEqual([1, 2, 3, 4, 5]);
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
    }
  });

  test('exactly one holder at a time under 20 contenders, tokens strictly increasing', async () => {
    const name = uniqueName('exclusive');
    const sessions = await Promise.all(Array.from({ length: 20 }, () => fx.session()));
    const cycles = 8;
    let holders = 0;
    let maxHolders = 0;
    const tokens: bigint[] = [];
    let counter = 0;
    try {
      await Promise.all(
        sessions.map(async (s) => {
          const mutex = new Mutex(s, name);
          for (let i = 0; i < cycles; i++) {
            await mutex.withLock(async (lock) => {
              holders++;
              maxHolders = Math.max(maxHolders, holders);
              tokens.push(lock.token);
              // A guarded read-modify-write: lost updates would show if two held the lock at once.
              const current = Number((await fx.admin.get(`${name}-counter`).string()) ?? '0');
              await delay(1);
              await lock.commit(fx.admin.put(`${name}-counter`).value(String(current + 1)));
              counter++;
              holders--;
            });
          }
        }),
      );
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
    }
    expect(maxHolders).toBe(1);
    expect(counter).toBe(20 * cycles);
    expect(Number(await fx.admin.get(`${name}-counter`).string())).toBe(20 * cycles);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!).toBe(true);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('many waiters sharing one etcd3 client keep working (closing a watch must not trip its circuit breaker)', async () => {
    // etcd3 counts an error on a still-writable stream as a host failure; three in a row opened the
    // host's circuit breaker and failed every call on that client for 5 s.
    const client = fx.etcd.client();
    const name = uniqueName('one-client');
    const sessions = await Promise.all(Array.from({ length: 6 }, () => Session.create(client, { ttl: 5 })));
    let acquisitions = 0;
    try {
      await Promise.all(
        sessions.map(async (s) => {
          for (let i = 0; i < 5; i++) await new Mutex(s, name).withLock(() => void acquisitions++);
        }),
      );
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
    }
    expect(acquisitions).toBe(30);
    expect(await client.get('anything').string()).toBeNull(); // the client still serves calls
  });

  test('tryLock takes a free lock and returns null while it is held', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const name = uniqueName('try');
    const lock = await new Mutex(a, name).tryLock();
    expect(lock).not.toBeNull();
    expect(await new Mutex(b, name).tryLock()).toBeNull();
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([lock!.key]); // the failed try left nothing
    await lock!.release();
    const again = await new Mutex(b, name).tryLock();
    expect(again).not.toBeNull();
    await again!.release();
  });

  test('abort while waiting rejects with the reason unchanged and leaves no key behind', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const name = uniqueName('abort');
    await using held = await new Mutex(a, name).lock();
    const controller = new AbortController();
    const waiting = new Mutex(b, name).lock({ signal: controller.signal });
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 5000, 'enqueue');
    const reason = new Error('changed my mind');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([held.key]);

    const timedOut = new Mutex(b, name).lock({ signal: AbortSignal.timeout(200) });
    await expect(timedOut).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([held.key]);

    const already = AbortSignal.abort(reason);
    await expect(new Mutex(b, name).lock({ signal: already })).rejects.toBe(reason);
  });

  test('G1: a waiter whose lease is gone while queued gets LeaseLostError, never the lock', async () => {
    await using a = await fx.session();
    const b = await fx.session();
    const name = uniqueName('expired-waiter');
    const held = await new Mutex(a, name).lock();
    const waiting = new Mutex(b, name).lock();
    waiting.catch(() => undefined);
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 5000, 'enqueue');
    // The lease vanishes on the server (as on expiry); the waiter's key goes with it.
    await fx.admin.leaseClient.leaseRevoke({ ID: b.leaseId });
    await held.release();
    const error = await waiting.then(
      () => new Error('acquired a lock on a lost lease'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LeaseLostError);
    expect(b.signal.aborted).toBe(true);
    expect(isLeaseLostError(b.signal.reason)).toBe(true);
    expect(b.alive).toBe(false);
    await expect(new Mutex(b, name).lock()).rejects.toBeInstanceOf(LeaseLostError);
    await b.close();
  });

  test('G1: a waiter whose queue key is deleted by someone else gets NotHeldError, never the lock', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const name = uniqueName('deleted-waiter');
    const held = await new Mutex(a, name).lock();
    const waiting = new Mutex(b, name).lock();
    waiting.catch(() => undefined);
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 5000, 'enqueue');
    await fx.admin.delete().key(`${name}/${b.leaseHex}`);
    await held.release();
    await expect(waiting).rejects.toBeInstanceOf(NotHeldError);
    expect(b.alive).toBe(true);
  });

  test('when the waiter ahead leaves while the holder still holds, the next waiter keeps waiting', async () => {
    await using holder = await fx.session();
    await using middle = await fx.session();
    await using last = await fx.session();
    const name = uniqueName('predecessor');
    const held = await new Mutex(holder, name).lock();
    const controller = new AbortController();
    const middleWait = new Mutex(middle, name).lock({ signal: controller.signal });
    middleWait.catch(() => undefined);
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 5000, 'enqueue');
    const lastWait = new Mutex(last, name).lock();
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 3, 5000, 'enqueue');
    controller.abort();
    // Aborted without a reason: the signal's own AbortError, unchanged.
    await expect(middleWait).rejects.toBe(controller.signal.reason);
    await expect(middleWait).rejects.toMatchObject({ name: 'AbortError' });
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([held.key, `${name}/${last.leaseHex}`]);
    expect(await stillPending(lastWait, 500)).toBe(true); // the holder still holds
    expect(held.held).toBe(true);
    await held.release();
    const got = await lastWait;
    expect(got.token > held.token).toBe(true);
    await got.release();
  });

  test('two acquisitions of one name on one Session exclude each other', async () => {
    await using s = await fx.session();
    const name = uniqueName('same-session');
    const mutex = new Mutex(s, name);
    const first = await mutex.lock();
    const second = mutex.lock();
    expect(await stillPending(second, 300)).toBe(true);
    expect(await new Mutex(s, name).tryLock()).toBeNull();
    await first.release();
    const h2 = await second;
    expect(h2.key).toBe(first.key);
    expect(h2.token > first.token).toBe(true);
    expect(first.held).toBe(false);
    // The first handle's late release must not delete the second's key (guarded by token).
    await first.release();
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([h2.key]);
    await h2.release();
  });

  test('names do not nest: `jobs` ignores `jobs/nightly/<lease>`', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const name = uniqueName('jobs');
    await using nested = await new Mutex(a, `${name}/nightly`).lock();
    const outer = await new Mutex(b, name).lock({ signal: AbortSignal.timeout(5000) });
    expect(outer.held && nested.held).toBe(true);
    await outer.release();
    // And the nested key sorted after ours still does not block a later contender.
    await using c = await fx.session();
    const h = await new Mutex(c, name).tryLock();
    expect(h).not.toBeNull();
    await h!.release();
  });

  test('a release wakes exactly one waiter (herd-free)', async () => {
    const name = uniqueName('herd');
    const sessions = await Promise.all(Array.from({ length: 8 }, () => fx.session()));
    try {
      const held = await new Mutex(sessions[0]!, name).lock();
      const acquired: number[] = [];
      const waits = sessions.slice(1).map((s, i) =>
        new Mutex(s, name).lock().then((h) => {
          acquired.push(i);
          return h;
        }),
      );
      await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 8, 5000, 'enqueue');
      // Count watch events etcd delivers per release: one watcher per key, so one delete → one event.
      const before = await fx.etcd.metrics();
      await held.release();
      await eventually(() => acquired.length === 1, 5000, 'handoff');
      await delay(200);
      const after = await fx.etcd.metrics();
      const events = (m: Map<string, number>) =>
        [...m].filter(([k]) => k.startsWith('etcd_debugging_mvcc_events_total')).reduce((n, [, v]) => n + v, 0);
      expect(acquired).toHaveLength(1);
      // The delete reaches the one watcher of the released key (>= 1 proves the counter is live);
      // the woken waiter's re-read is not a watch event. A herd would show 7.
      expect(events(after) - events(before)).toBeGreaterThanOrEqual(1);
      expect(events(after) - events(before)).toBeLessThanOrEqual(2);
      await Promise.all(waits.map((w) => w.then((h) => h.release())));
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
    }
  });

  test('guarded writes succeed only while the lock is held', async () => {
    await using s = await fx.session();
    const name = uniqueName('guarded');
    const lock = await new Mutex(s, name).lock();
    await lock.commit(fx.admin.put(`${name}-data`).value('v1'));
    const res = await lock.txn().then(fx.admin.put(`${name}-data`).value('v2')).commit();
    expect(res.succeeded).toBe(true);
    await lock.release();
    await expect(lock.commit(fx.admin.put(`${name}-data`).value('v3'))).rejects.toBeInstanceOf(NotHeldError);
    const stale = await lock.txn().then(fx.admin.put(`${name}-data`).value('v4')).commit();
    expect(stale.succeeded).toBe(false);
    expect(await fx.admin.get(`${name}-data`).string()).toBe('v2');
  });

  test('bad names and signals are rejected with errors that name the value', async () => {
    await using s = await fx.session();
    expect(() => new Mutex(s, '')).toThrow('Expected `name` of Mutex to be a non-empty string, got the string ""');
    expect(() => new Mutex(s, 'jobs/')).toThrow('Expected `name` of Mutex not to end with "/", got the string "jobs/"');
    expect(() => new Mutex(s, 42 as unknown as string)).toThrow(TypeError);
    await expect(new Mutex(s, 'x').lock({ signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(
      /`signal` of Mutex.lock to be an AbortSignal, got the string "soon"/,
    );
    expect(() => new Mutex({} as Session, 'x')).toThrow(/leasehold Session/);
  });
});

describe('Mutex interop with etcdctl lock', () => {
  const ctl = (args: string[]) => etcdctl(fx.etcd.endpoints, args);

  test('a lock held by `etcdctl lock` blocks ours until it exits', async () => {
    await using s = await fx.session();
    const name = uniqueName('interop-a');
    // etcdctl holds the lock until the test writes `release`.
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-interop-'));
    const release = join(dir, 'release');
    const child = ctl(['lock', '--ttl=2', name, '--', 'sh', '-c', `echo HELD; ${untilReleased(dir)}`]);
    try {
      await eventually(() => child.output().includes('HELD'), 10_000, 'etcdctl holds');
      const [theirs] = await keysUnder(fx.admin, `${name}/`);
      expect(theirs).toMatch(new RegExp(`^${name}/[0-9a-f]+$`));
      const ours = new Mutex(s, name).lock();
      expect(await stillPending(ours, 500)).toBe(true);
      writeFileSync(release, '');
      await exited(child);
      const lock = await ours;
      expect(await keysUnder(fx.admin, `${name}/`)).toEqual([lock.key]);
      await lock.release();
    } finally {
      writeFileSync(release, '');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a lock held by us blocks `etcdctl lock` until we release', async () => {
    await using s = await fx.session();
    const name = uniqueName('interop-b');
    const lock = await new Mutex(s, name).lock();
    const child = ctl(['lock', '--ttl=2', name, '--', 'sh', '-c', 'echo GOT']);
    await delay(1000);
    expect(child.output()).not.toContain('GOT');
    await lock.release();
    await eventually(() => child.output().includes('GOT'), 10_000, 'etcdctl acquires');
    await exited(child);
  });
});

describe('Mutex and lease loss', () => {
  test('the holder’s signal aborts with LeaseLostError within the TTL when keep-alives stop', async () => {
    await using own = await startEtcd();
    const client = own.client();
    const ttl = 2;
    const s = await Session.create(client, { ttl });
    const lock = await new Mutex(s, 'lost').lock();
    const lostAt = new Promise<number>((resolve) =>
      lock.signal.addEventListener('abort', () => resolve(performance.now()), { once: true }),
    );
    const member = own.members[0]!;
    await member.pause(); // nothing answers: no keep-alive can succeed
    const pausedAt = performance.now();
    const at = await lostAt;
    expect(lock.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(lock.held).toBe(false);
    // Lost by the local deadline (sendTime + TTL − margin of the last success), not etcd3's 2 × TTL.
    // (+1.5 s of slack for a loaded machine's timers: still before etcd3's 2 × TTL = 4 s.)
    expect(at - pausedAt).toBeLessThan(ttl * 1000 + 1500);
    await member.resume();
    await lock.release(); // resolves: nothing to release on a lost lease
    await s.close();
  });

  // With etcd3's default host circuit breaker the client is blocked for 5 s after three failures, longer
  // than a 5 s lease lasts: short-TTL users turn it off (docs/session.md); with a 30 s lease the default
  // client rides it out (an open breaker is a transient error to leasehold).
  test.each([
    { client: 'breaker off (docs/session.md), TTL 5 s', ttl: 5, options: { faultHandling: { host: () => noop } } },
    { client: 'etcd3 defaults, TTL 30 s', ttl: 30, options: {} },
  ])('a waiter rides out an etcd restart — $client', async ({ ttl, options }) => {
    await using own = await startEtcd();
    await using a = await Session.create(own.client(options), { ttl });
    await using b = await Session.create(own.client(options), { ttl });
    const held = await new Mutex(a, 'restart').lock();
    const waiting = new Mutex(b, 'restart').lock();
    await delay(200);
    await own.members[0]!.restart();
    expect(await stillPending(waiting, 300)).toBe(true);
    await held.release();
    const got = await waiting;
    expect(got.token > held.token).toBe(true);
    await got.release();
  });

  test('a lease revoked behind the session’s back aborts the holder and is final', async () => {
    await using s = await fx.session(5);
    const lock = await new Mutex(s, uniqueName('revoked')).lock();
    await fx.admin.leaseClient.leaseRevoke({ ID: s.leaseId });
    await eventually(() => lock.signal.aborted, 5000, 'holder aborted');
    expect(isLeaseLostError(lock.signal.reason)).toBe(true);
    expect(s.alive).toBe(false);
    await expect(new Mutex(s, 'other').tryLock()).rejects.toBeInstanceOf(LeaseLostError);
  });
});
