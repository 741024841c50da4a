// MultiLock against a real etcd: one txn, one token, all-or-nothing, FIFO per name, no deadlock,
// guarded writes on every key, aborts, loss, the same Session, hostile input, limits.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { setTimeout as delay } from 'node:timers/promises';
import { noop } from 'cockatiel';
import { Registry } from 'prom-client';
import { describe, expect, test } from 'vitest';
import {
  channels,
  EtcdRequestError,
  ForeignKeyError,
  liveState,
  LeaseLostError,
  MultiLock,
  Mutex,
  NotHeldError,
  Session,
  SessionSource,
  isLeaseLostError,
  maxMultiLockNames,
  type AcquireContext,
  type ReleaseMessage,
} from '../../src/index.js';
import { registerLeaseholdMetrics } from '../../src/prometheus.js';
import { startEtcd } from '../../src/testing/index.js';
import { etcdctl, eventually, exited, keysUnder, scraped, stillPending, uniqueName, untilReleased } from '../helpers.js';
import { etcdForFile } from '../fixture.js';
import { prng } from '../prng.js';

const fx = etcdForFile(5);

/** `count` fresh names under one base. */
const namesOf = (base: string, count: number): string[] => {
  const root = uniqueName(base);
  return Array.from({ length: count }, (_, i) => `${root}/n${i}`);
};

/** Every key under every name, in one list. */
async function keysOf(names: readonly string[]): Promise<string[]> {
  return (await Promise.all(names.map(async (n) => keysUnder(fx.admin, `${n}/`)))).flat();
}

/** `rounds` times, `a` asks for [x, y] and `b` for [y, x] at the same instant; a deadlock times out. */
async function oppositeOrders(a: Session, b: Session, x: string, y: string, rounds: number): Promise<void> {
  const signal = AbortSignal.timeout(30_000);
  for (let i = 0; i < rounds; i++) {
    await Promise.all([
      new MultiLock(a, [x, y]).withLock(() => delay(1), { signal }),
      new MultiLock(b, [y, x]).withLock(() => delay(1), { signal }),
    ]);
  }
}

describe('MultiLock', () => {
  test('one txn writes a Mutex key per name, all with one create revision: the token', async () => {
    await using s = await fx.session();
    const names = namesOf('layout', 3);
    await using locks = await new MultiLock(s, names).lock();
    expect(locks.names).toEqual(names);
    expect(locks.keys).toEqual(names.map((n) => `${n}/${s.leaseHex}`));
    expect(locks.key).toBe(locks.keys[0]);
    for (const key of locks.keys) {
      const kv = (await fx.admin.get(key).exec()).kvs[0]!;
      expect(BigInt(kv.create_revision)).toBe(locks.token);
      expect(kv.lease).toBe(s.leaseId);
      expect(kv.value.length).toBe(0);
    }
    expect(locks.held).toBe(true);
    expect(await locks.release()).toBe('deleted');
    expect(locks.held).toBe(false);
    expect(locks.signal.reason).toBeInstanceOf(NotHeldError);
    expect(await keysOf(names)).toEqual([]);
    expect(await locks.release()).toBe('deleted'); // idempotent: the same outcome
  });

  test('all or nothing: one name held elsewhere holds back the others, which stay queued (and block) until it is free', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    await using c = await fx.session();
    const [x, y, z] = namesOf('all-or-nothing', 3) as [string, string, string];
    const held = await new Mutex(a, y).lock();
    const waiting = new MultiLock(b, [x, y, z]).lock();
    await eventually(async () => (await keysOf([x, y, z])).length === 4, 5000, 'joined');
    expect(await stillPending(waiting, 300)).toBe(true);
    // Queued on x and z, the MultiLock is ahead of anyone who comes later there.
    expect(await new Mutex(c, x).tryLock()).toBeNull();
    const later = new Mutex(c, z).lock();
    await held.release();
    const locks = await waiting;
    expect(locks.token > held.token).toBe(true);
    expect(await stillPending(later, 200)).toBe(true);
    await locks.release();
    await (await later).release();
  });

  test('FIFO per name: acquisitions that overlap are served in the order they joined, on every shared name', async () => {
    const names = namesOf('fifo', 3);
    const [x, y, z] = names as [string, string, string];
    const sessions = await Promise.all(Array.from({ length: 5 }, () => fx.session()));
    try {
      const first = await new MultiLock(sessions[0]!, [x, y, z]).lock();
      const sets = [[z, x], [y], [x, y, z], [y, z]];
      const order: number[] = [];
      const waits: Promise<void>[] = [];
      for (const [i, set] of sets.entries()) {
        const lock = new MultiLock(sessions[i + 1]!, set);
        waits.push(lock.withLock(async () => void order.push(i)));
        const before = sets.slice(0, i).reduce((n, s) => n + s.length, 0);
        await eventually(async () => (await keysOf(names)).length === 3 + before + set.length, 5000, 'joined');
      }
      await first.release();
      await Promise.all(waits);
      // [z,x] and [y] are disjoint: either may finish first; [x,y,z] waits for both; [y,z] for it.
      expect(order.slice(2)).toEqual([2, 3]);
      expect(new Set(order.slice(0, 2))).toEqual(new Set([0, 1]));
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
    }
  });

  test('no deadlock and never two holders of a name: 8 sessions, random sets in random orders, counters under commit', async () => {
    const pool = namesOf('random', 5);
    const sessions = await Promise.all(Array.from({ length: 8 }, () => fx.session()));
    const random = prng(2024);
    const holders = new Map(pool.map((n) => [n, 0]));
    let overlaps = 0;
    const increments = new Map(pool.map((n) => [n, 0]));
    try {
      await Promise.all(
        sessions.map(async (s) => {
          for (let cycle = 0; cycle < 6; cycle++) {
            const set = pool.filter(() => random() < 0.5).sort(() => random() - 0.5);
            if (set.length === 0) set.push(pool[Math.floor(random() * pool.length)]!);
            await new MultiLock(s, set).withLock(async (locks) => {
              for (const n of set) if (holders.set(n, holders.get(n)! + 1).get(n)! > 1) overlaps++;
              // A guarded read-modify-write of every name's counter: a lost update would show.
              const counts = await Promise.all(set.map(async (n) => Number((await fx.admin.get(`${n}-counter`).string()) ?? '0')));
              await delay(2);
              await locks.commit(...set.map((n, i) => fx.admin.put(`${n}-counter`).value(String(counts[i]! + 1))));
              for (const n of set) increments.set(n, increments.get(n)! + 1);
              for (const n of set) holders.set(n, holders.get(n)! - 1);
            }, { signal: AbortSignal.timeout(60_000) });
          }
        }),
      );
    } finally {
      await Promise.all(sessions.map((s) => s.close()));
    }
    expect(overlaps).toBe(0);
    for (const n of pool) expect(Number((await fx.admin.get(`${n}-counter`).string()) ?? '0')).toBe(increments.get(n));
    expect(await keysOf(pool)).toEqual([]);
  });

  test('two sessions asking for the same names in opposite orders, at the same instant, 20 times: no deadlock', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const [x, y] = namesOf('opposite', 2) as [string, string];
    await oppositeOrders(a, b, x, y, 20);
    expect(await keysOf([x, y])).toEqual([]);
  });

  test('abort while waiting deletes every key and rejects with the reason unchanged', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const names = namesOf('abort', 3);
    const held = await new Mutex(a, names[2]!).lock();
    const controller = new AbortController();
    const waiting = new MultiLock(b, names).lock({ signal: controller.signal });
    await eventually(async () => (await keysOf(names)).length === 4, 5000, 'joined');
    const reason = new Error('changed my mind');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(await keysOf(names)).toEqual([held.key]);
    await expect(new MultiLock(b, names).lock({ signal: AbortSignal.timeout(200) })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(await keysOf(names)).toEqual([held.key]);
    await expect(new MultiLock(b, names).lock({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    await held.release();
  });

  test('tryLock takes free names at once, and returns null (leaving no key) when any is held or waited for', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const names = namesOf('try', 3);
    const locks = await new MultiLock(a, names).tryLock();
    expect(locks).not.toBeNull();
    expect(await new MultiLock(b, [names[2]!, `${names[2]!}-other`]).tryLock()).toBeNull();
    expect(await keysOf([...names, `${names[2]!}-other`])).toEqual(locks!.keys);
    await locks!.release();
    const again = await new MultiLock(b, names).tryLock();
    expect(again?.keys).toEqual(names.map((n) => `${n}/${b.leaseHex}`));
    await again!.release();
  });

  test('commit() and txn() are guarded on every key: a write does not land once any one lock is gone', async () => {
    await using s = await fx.session();
    const names = namesOf('guarded', 3);
    const data = `${names[0]!}-data`;
    const locks = await new MultiLock(s, names).lock();
    await locks.commit(fx.admin.put(data).value('v1'));
    // Someone deletes the key of the last name: that lock is no longer ours.
    await fx.admin.delete().key(locks.keys[2]!);
    await expect(locks.commit(fx.admin.put(data).value('v2'))).rejects.toBeInstanceOf(NotHeldError);
    expect((await locks.txn().then(fx.admin.put(data).value('v3')).commit()).succeeded).toBe(false);
    expect(await fx.admin.get(data).string()).toBe('v1');
    // The holding had already ended: the others are deleted, and the outcome says so.
    expect(await locks.release()).toBe('already-gone');
    expect(await keysOf(names)).toEqual([]);
  });

  test('a waiter one of whose keys is deleted by someone else gets NotHeldError naming it, never the locks', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    await using c = await fx.session();
    const [x, y] = namesOf('deleted-waiter', 2) as [string, string];
    const held = await new Mutex(a, y).lock();
    const waiting = new MultiLock(b, [x, y]).lock();
    waiting.catch(() => undefined);
    await eventually(async () => (await keysOf([x, y])).length === 3, 5000, 'joined');
    // x was free: our key there is first. Someone deletes it, and another client takes x.
    await fx.admin.delete().key(`${x}/${b.leaseHex}`);
    const other = await new Mutex(c, x).lock({ signal: AbortSignal.timeout(5000) });
    await held.release();
    const error = await waiting.then(() => new Error('granted while a key was gone'), (e: unknown) => e);
    expect(error).toBeInstanceOf(NotHeldError);
    expect((error as NotHeldError).message).toContain(`${x}/${b.leaseHex}`);
    expect(other.held).toBe(true);
    expect(await keysOf([x, y])).toEqual([other.key]);
    await other.release();
  });

  test('a waiter whose lease is gone gets LeaseLostError; a holder’s signal aborts with it', async () => {
    await using a = await fx.session();
    const b = await fx.session();
    const names = namesOf('lost', 2);
    const held = await new Mutex(a, names[1]!).lock();
    const waiting = new MultiLock(b, names).lock();
    waiting.catch(() => undefined);
    await eventually(async () => (await keysOf(names)).length === 3, 5000, 'joined');
    await fx.admin.leaseClient.leaseRevoke({ ID: b.leaseId });
    await held.release();
    await expect(waiting).rejects.toBeInstanceOf(LeaseLostError);
    await b.close();

    const c = await fx.session();
    const locks = await new MultiLock(c, names).lock();
    await fx.admin.leaseClient.leaseRevoke({ ID: c.leaseId });
    await eventually(() => locks.signal.aborted, 5000, 'holder aborted');
    expect(isLeaseLostError(locks.signal.reason)).toBe(true);
    expect(locks.held).toBe(false);
    expect(await locks.release()).toBe('lease-ended');
    await c.close();
  });

  test('on one Session: a Mutex and a MultiLock on a shared name take turns; two MultiLocks in opposite orders never deadlock', async () => {
    await using s = await fx.session();
    const [x, y] = namesOf('same-session', 2) as [string, string];
    const mutex = await new Mutex(s, y).lock();
    const multi = new MultiLock(s, [x, y]).lock();
    expect(await stillPending(multi, 300)).toBe(true);
    expect(await new MultiLock(s, [y]).tryLock()).toBeNull();
    await mutex.release();
    const locks = await multi;
    expect(locks.keys).toContain(mutex.key); // the same key, taken in turn — never shared
    expect(await new Mutex(s, x).tryLock()).toBeNull();
    await locks.release();
    // Both ask at once, in opposite orders, many times: every turn is taken in one order.
    await oppositeOrders(s, s, x, y, 10);
    expect(await keysOf([x, y])).toEqual([]);
  });

  test('duplicates are taken once; nested names are separate locks', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const [x] = namesOf('dup', 1) as [string];
    const locks = await new MultiLock(a, [x, `${x}/inner`, x]).lock();
    expect(locks.names).toEqual([x, `${x}/inner`]);
    expect(locks.keys).toEqual([`${x}/${a.leaseHex}`, `${x}/inner/${a.leaseHex}`]);
    await locks.release();
    // A lock on x/inner does not block x (its key is deeper than one segment below x/).
    await using inner = await new Mutex(a, `${x}/inner`).lock();
    const outer = await new MultiLock(b, [x, `${x}/other`]).lock({ signal: AbortSignal.timeout(5000) });
    expect(outer.held && inner.held).toBe(true);
    await outer.release();
  });

  test('queue() reads every name at one revision; MultiLock.queue needs no Session', async () => {
    await using a = await fx.session();
    await using b = await fx.session();
    const names = namesOf('queue', 2);
    const held = await new MultiLock(a, names).lock();
    const waiting = new MultiLock(b, [names[1]!]).lock();
    await eventually(async () => (await keysOf(names)).length === 3, 5000, 'joined');
    const state = await new MultiLock(a, names).queue();
    expect(state.queues.map((q) => q.name)).toEqual(names);
    expect(state.queues.map((q) => q.holders.map((h) => h.token))).toEqual([[held.token], [held.token]]);
    expect(state.queues[1]!.waiters.map((w) => w.leaseHex)).toEqual([b.leaseHex]);
    expect(state.queues[0]!.waiters).toEqual([]);
    const statics = await MultiLock.queue(fx.admin, names);
    expect(statics.queues).toEqual(state.queues);
    await held.release();
    await (await waiting).release();
  });

  test('withLock releases after fn, also when it throws', async () => {
    await using s = await fx.session();
    const names = namesOf('with', 2);
    const boom = new Error('boom');
    await expect(new MultiLock(s, names).withLock(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(await keysOf(names)).toEqual([]);
    expect(await new MultiLock(s, names).withLock((locks) => locks.keys.length)).toBe(2);
    expect(await keysOf(names)).toEqual([]);
  });

  test('an adopted lease’s stray key on one of the names is deleted, and the names are joined afresh', async () => {
    const original = await fx.session();
    const names = namesOf('adopted', 2);
    const stray = await new Mutex(original, names[0]!).lock();
    const adopted = await Session.create(fx.etcd.client(), { leaseId: original.leaseId });
    try {
      const locks = await new MultiLock(adopted, names).lock({ signal: AbortSignal.timeout(5000) });
      expect(locks.token > stray.token).toBe(true);
      expect(await keysOf(names)).toEqual(locks.keys);
      await locks.release();
    } finally {
      await adopted.close();
    }
  });

  test('on a SessionSource each acquisition takes the current Session; after a loss the next is on a new lease', async () => {
    const sessions = new SessionSource(fx.etcd.client(), { ttl: 5 });
    try {
      const names = namesOf('source', 2);
      const multi = new MultiLock(sessions, names);
      const first = await multi.lock();
      expect(first.session).toBe(await sessions.current());
      await fx.admin.leaseClient.leaseRevoke({ ID: first.session.leaseId });
      await eventually(() => first.signal.aborted, 5000, 'holder aborted');
      expect(isLeaseLostError(first.signal.reason)).toBe(true);
      const second = await multi.lock({ signal: AbortSignal.timeout(10_000) });
      expect(second.session.leaseId).not.toBe(first.session.leaseId);
      expect(second.keys).toEqual(names.map((n) => `${n}/${second.session.leaseHex}`));
      await second.release();
      expect(await keysOf(names)).toEqual([]);
    } finally {
      await sessions.close();
    }
  });

  test('a contender key without a lease on one name is refused with ForeignKeyError naming it; no key of ours is left', async () => {
    await using s = await fx.session();
    const [x, y] = namesOf('foreign', 2) as [string, string];
    await fx.admin.put(`${y}/written-by-hand`).value('');
    const error = await new MultiLock(s, [x, y]).lock().then(() => new Error('granted behind a key that never expires'), (e: unknown) => e);
    expect(error).toBeInstanceOf(ForeignKeyError);
    expect((error as Error).message).toContain(`${y}/written-by-hand`);
    expect(await keysOf([x, y])).toEqual([`${y}/written-by-hand`]);
    await fx.admin.delete().key(`${y}/written-by-hand`);
  });

  test('bad input is rejected with errors that name the value', async () => {
    await using s = await fx.session();
    expect(() => new MultiLock(s, 'a' as unknown as string[])).toThrow('Expected `names` of MultiLock to be an array of lock names, got the string "a"');
    expect(() => new MultiLock(s, [])).toThrow('Expected `names` of MultiLock to hold at least one name, got an empty array');
    expect(() => new MultiLock(s, ['a', 'b/'])).toThrow('Expected `name` of MultiLock (names[1]) not to end with "/", got the string "b/"');
    expect(() => new MultiLock(s, ['a', 7 as unknown as string])).toThrow('Expected `name` of MultiLock (names[1]) to be a non-empty string, got `7`');
    expect(() => new MultiLock(s, ['a', , 'b'] as string[])).toThrow('names[1]');
    const many = Array.from({ length: maxMultiLockNames + 1 }, (_, i) => `n${i}`);
    expect(() => new MultiLock(s, many)).toThrow(RangeError);
    expect(new MultiLock(s, [...many.slice(0, maxMultiLockNames), 'n0']).names).toHaveLength(maxMultiLockNames);
    expect(() => new MultiLock({} as Session, ['a'])).toThrow(/leasehold Session/);
    await expect(new MultiLock(s, ['a']).lock({ signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(/`signal` of MultiLock.lock to be an AbortSignal/);
    await expect(new MultiLock(s, ['a']).withLock(42 as unknown as () => void)).rejects.toThrow(/`fn` of MultiLock.withLock/);
  });
});

describe('MultiLock and outages', () => {
  test('a waiter rides out an etcd restart and gets every name once they are free', async () => {
    await using own = await startEtcd();
    const options = { faultHandling: { host: () => noop } }; // etcd3's breaker off, as docs/session.md says for short TTLs
    await using a = await Session.create(own.client(options), { ttl: 5 });
    await using b = await Session.create(own.client(options), { ttl: 5 });
    const held = await new Mutex(a, 'restart/y').lock();
    const waiting = new MultiLock(b, ['restart/x', 'restart/y', 'restart/z']).lock();
    await delay(200);
    await own.members[0]!.restart();
    expect(await stillPending(waiting, 300)).toBe(true);
    await held.release();
    const locks = await waiting;
    expect(locks.token > held.token).toBe(true);
    await locks.release();
  });
});

describe('MultiLock interop with etcdctl lock on one of the names', () => {
  const ctl = (args: string[]) => etcdctl(fx.etcd.endpoints, args);

  test('`etcdctl lock` holding one name holds the MultiLock back; it gets every name once etcdctl exits', async () => {
    await using s = await fx.session();
    const [x, y, z] = namesOf('interop-a', 3) as [string, string, string];
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-multi-interop-'));
    const child = ctl(['lock', '--ttl=2', y, '--', 'sh', '-c', `echo HELD; ${untilReleased(dir)}`]);
    try {
      await eventually(() => child.output().includes('HELD'), 10_000, 'etcdctl holds');
      const [theirs] = await keysUnder(fx.admin, `${y}/`);
      const waiting = new MultiLock(s, [x, y, z]).lock();
      expect(await stillPending(waiting, 500)).toBe(true);
      expect(await keysUnder(fx.admin, `${y}/`)).toEqual([theirs, `${y}/${s.leaseHex}`]);
      writeFileSync(join(dir, 'release'), '');
      await exited(child);
      const locks = await waiting;
      expect(await keysOf([x, y, z])).toEqual(locks.keys);
      await locks.release();
    } finally {
      writeFileSync(join(dir, 'release'), '');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a MultiLock holding several names blocks `etcdctl lock` on any of them until it releases', async () => {
    await using s = await fx.session();
    const [x, y] = namesOf('interop-b', 2) as [string, string];
    const locks = await new MultiLock(s, [x, y]).lock();
    const child = ctl(['lock', '--ttl=2', y, '--', 'sh', '-c', 'echo GOT']);
    await eventually(async () => (await keysUnder(fx.admin, `${y}/`)).length === 2, 10_000, 'etcdctl queued');
    await delay(500);
    expect(child.output()).not.toContain('GOT');
    await locks.release();
    await eventually(() => child.output().includes('GOT'), 10_000, 'etcdctl acquires');
    await exited(child);
  });
});

describe('MultiLock diagnostics and metrics', () => {
  test('a wait is one trace with every name; a holding is one per name in the live state, on leasehold:release and in the metrics', async () => {
    const names = namesOf('diag', 2);
    const traces: AcquireContext[] = [];
    const releases: ReleaseMessage[] = [];
    const onRelease = (m: unknown): void => void releases.push(m as ReleaseMessage);
    const tracing = { start: () => undefined, end: () => undefined, asyncStart: () => undefined, error: () => undefined, asyncEnd: (c: unknown) => void traces.push({ ...(c as AcquireContext) }) };
    tracingChannel(channels.acquire).subscribe(tracing);
    channel(channels.release).subscribe(onRelease);
    const registry = new Registry();
    const metrics = registerLeaseholdMetrics(registry);
    try {
      await using s = await fx.session();
      const locks = await new MultiLock(s, names).lock();
      expect(traces).toMatchObject([{ primitive: 'multilock', name: names.join(', '), names, blocking: true, outcome: 'granted', token: locks.token }]);
      const mine = liveState().holdings.filter((h) => h.primitive === 'multilock' && h.lease === s.leaseHex);
      expect(mine.map((h) => [h.name, h.key, h.token])).toEqual(names.map((n, i) => [n, locks.keys[i], locks.token]));
      for (const n of names) {
        expect(await scraped(registry, `leasehold_held{primitive="multilock",name="${n}"}`)).toBe(1);
        expect(await scraped(registry, `leasehold_acquisitions_total{primitive="multilock",name="${n}",outcome="granted"}`)).toBe(1);
      }
      await locks.release();
      expect(releases.filter((r) => r.lease === s.leaseHex).map((r) => [r.name, r.key, r.outcome])).toEqual(names.map((n, i) => [n, locks.keys[i], 'released']));
      expect(liveState().holdings.filter((h) => h.lease === s.leaseHex)).toEqual([]);
      expect(await scraped(registry, `leasehold_held{primitive="multilock",name="${names[0]!}"}`)).toBe(0);
    } finally {
      metrics.unregister();
      tracingChannel(channels.acquire).unsubscribe(tracing);
      channel(channels.release).unsubscribe(onRelease);
    }
  });
});

describe('MultiLock limits', () => {
  test('64 names fit in one txn; a server with a smaller --max-txn-ops refuses at once with EtcdRequestError', async () => {
    await using s = await fx.session();
    const names = namesOf('max', maxMultiLockNames);
    const locks = await new MultiLock(s, names).lock();
    expect(await keysOf(names)).toHaveLength(maxMultiLockNames);
    await locks.release();

    await using small = await startEtcd({ extraArgs: ['--max-txn-ops=8'] });
    const client = small.client();
    await using t = await Session.create(client, { ttl: 5 });
    await expect(new MultiLock(t, ['a', 'b', 'c', 'd', 'e']).lock()).rejects.toBeInstanceOf(EtcdRequestError);
    const four = await new MultiLock(t, ['a', 'b', 'c', 'd']).lock();
    await four.release();
    client.close();
  });
});
