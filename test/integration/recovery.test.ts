// Every primitive on a SessionSource through an etcd freeze longer than the TTL (SIGSTOP, then SIGCONT):
// what was held aborts with LeaseLostError, what was queued rejects with it, the next acquisition
// succeeds on a new lease within TTL + 2 s of the thaw, and no key of an old lease is left. Then the
// opt-in re-queue of the with… helpers, which never runs a section twice.
import { setTimeout as delay } from 'node:timers/promises';
import { noop } from 'cockatiel';
import { afterEach, describe, expect, test } from 'vitest';
import {
  Barrier,
  DoubleBarrier,
  Election,
  LeaderElector,
  LeaseLostError,
  Mutex,
  ReadWriteLock,
  Semaphore,
  Session,
  SessionSource,
  type SessionSourceOptions,
} from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { eventually, uniqueName } from '../helpers.js';

const fx = etcdForFile();
const TTL = 2;
/** How long etcd stays frozen: well past the TTL, so every lease of the test is lost. */
const FREEZE_MS = 2.5 * TTL * 1000;
/** The liveness bound after a thaw. */
const RECOVER_MS = (TTL + 2) * 1000;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A SessionSource as a service would make one for a short TTL: etcd3's host breaker off, calls bounded by ~TTL/3. */
function source(options: SessionSourceOptions = {}): SessionSource {
  const sessions = new SessionSource(fx.etcd.client({ faultHandling: { host: () => noop, global: noop } }), { ttl: TTL, requestTimeout: 600, ...options });
  cleanups.push(async () => sessions.close());
  return sessions;
}

/** Freezes the file's etcd for `ms` and thaws it; resolves with the instant of the thaw. */
async function freeze(ms = FREEZE_MS): Promise<number> {
  const member = fx.etcd.members[0]!;
  await member.pause();
  try {
    await delay(ms);
  } finally {
    await member.resume();
  }
  return performance.now();
}

/** The leases (hex) of the keys under `prefix`. */
async function leasesUnder(prefix: string): Promise<string[]> {
  const res = await fx.admin.getAll().prefix(prefix).exec();
  return res.kvs.map((kv) => BigInt(kv.lease).toString(16));
}

interface Holding {
  signal: AbortSignal;
  session: Session;
  release(): Promise<unknown>;
}

/** One primitive: how to hold it on a source, and how a second acquisition waits behind it. */
interface Case {
  kind: string;
  hold(sessions: SessionSource, name: string): Promise<Holding>;
  wait(sessions: SessionSource, name: string): Promise<Holding>;
}

const cases: Case[] = [
  { kind: 'Mutex', hold: async (s, n) => new Mutex(s, n).lock(), wait: async (s, n) => new Mutex(s, n).lock() },
  { kind: 'ReadWriteLock', hold: async (s, n) => new ReadWriteLock(s, n).writeLock(), wait: async (s, n) => new ReadWriteLock(s, n).readLock() },
  {
    kind: 'Semaphore',
    hold: async (s, n) => new Semaphore(s, n, { permits: 1 }).acquire(),
    wait: async (s, n) => new Semaphore(s, n, { permits: 1 }).acquire(),
  },
  {
    kind: 'Election',
    hold: async (s, n) => new Election(s, n).campaign('a').then((l) => ({ signal: l.signal, session: l.session, release: async () => l.resign() })),
    wait: async (s, n) => new Election(s, n).campaign('b').then((l) => ({ signal: l.signal, session: l.session, release: async () => l.resign() })),
  },
];

describe('every primitive on a SessionSource through an etcd freeze of 2.5 × TTL', () => {
  const recoveries: string[] = [];
  afterEach(() => {
    if (recoveries.length > 0) console.log(`[recovery] ${recoveries.splice(0).join('; ')}`);
  });

  test.each(cases)('$kind: the holder aborts and the waiter rejects with LeaseLostError; the next acquisition gets a new lease; no old key is left', async (c) => {
    const name = uniqueName(c.kind.toLowerCase());
    const [a, b] = [source(), source()];
    const held = await c.hold(a, name);
    expect(held.session).toBe(a.session);
    const old = [held.session.leaseHex, (await b.current()).leaseHex];
    const waiting = c.wait(b, name).then((h) => h, (e: unknown) => e);
    await eventually(async () => (await leasesUnder(`${name}/`)).length === 2, 5000, 'the waiter queued in etcd');

    const thawed = await freeze();
    expect(held.signal.aborted).toBe(true);
    expect(held.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(await waiting).toBeInstanceOf(LeaseLostError);
    const again = await c.hold(a, name);
    const took = performance.now() - thawed;
    recoveries.push(`${c.kind}: next acquisition ${took.toFixed(0)} ms after the thaw`);
    expect(took).toBeLessThan(RECOVER_MS);
    expect(again.session.leaseHex).not.toBe(old[0]);
    expect(again.signal.aborted).toBe(false);
    await eventually(async () => (await leasesUnder(`${name}/`)).every((lease) => !old.includes(lease)), RECOVER_MS, 'no key of an old lease');
    await again.release();
  });

  test('Barrier: a raised barrier aborts with LeaseLostError and is down after the thaw; hold() works again on a new lease', async () => {
    const name = uniqueName('barrier');
    const a = source();
    const barrier = new Barrier(a, name);
    const raised = (await barrier.hold())!;
    expect(raised.session).toBe(a.session);
    const thawed = await freeze();
    expect(raised.signal.reason).toBeInstanceOf(LeaseLostError);
    let again = null;
    while (!again) {
      again = await barrier.hold().catch(() => null); // rejects until the source has its next session
      if (!again) await delay(20);
      expect(performance.now() - thawed).toBeLessThan(RECOVER_MS);
    }
    recoveries.push(`Barrier: hold() ${(performance.now() - thawed).toFixed(0)} ms after the thaw`);
    expect(again.session.leaseHex).not.toBe(raised.session.leaseHex);
    expect(await leasesUnder(name)).toEqual([again.session.leaseHex]);
    await again.release();
  });

  test('DoubleBarrier: an enter waiting across the freeze rejects with LeaseLostError; both enter and leave again on new leases', async () => {
    const name = uniqueName('double');
    const [a, b] = [source(), source()];
    const [da, db] = [new DoubleBarrier(a, name, { count: 2 }), new DoubleBarrier(b, name, { count: 2 })];
    const entering = da.enter().then(() => 'entered', (e: unknown) => e);
    await eventually(async () => (await leasesUnder(`${name}/`)).length === 1, 5000, 'a waits inside');
    const old = (await leasesUnder(`${name}/`))[0];
    const thawed = await freeze();
    expect(await entering).toBeInstanceOf(LeaseLostError);
    await Promise.all([da.enter(), db.enter()]);
    recoveries.push(`DoubleBarrier: both entered ${(performance.now() - thawed).toFixed(0)} ms after the thaw`);
    expect(performance.now() - thawed).toBeLessThan(RECOVER_MS);
    expect(await leasesUnder(`${name}/`)).not.toContain(old);
    await Promise.all([da.leave(), db.leave()]);
    expect(await leasesUnder(`${name}/`)).toEqual([]);
  });
});

describe('LeaderElector through an etcd freeze of 2.5 × TTL', () => {
  test('the term ends with LeaseLostError; a new term on a new lease within TTL + 2 s of the thaw, without backing off', async () => {
    const name = uniqueName('elector');
    const sessions = source();
    const elector = new LeaderElector(sessions.client, name, { source: sessions, identity: 'a' });
    const terms: { session: Session; signal: AbortSignal; at: number }[] = [];
    const running = elector.run(async ({ session, signal }) => {
      terms.push({ session, signal, at: performance.now() });
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    });
    cleanups.push(async () => elector.stop().then(async () => running));
    await eventually(() => terms.length === 1, 5000, 'the first term');
    const thawed = await freeze();
    expect(terms[0]!.signal.reason).toBeInstanceOf(LeaseLostError);
    await eventually(() => terms.length === 2, RECOVER_MS, 'a new term after the thaw');
    console.log(`[recovery] LeaderElector: new term ${(terms[1]!.at - thawed).toFixed(0)} ms after the thaw`);
    expect(terms[1]!.session.leaseId).not.toBe(terms[0]!.session.leaseId);
    expect(elector.health()).toMatchObject({ healthy: true, ready: true, leading: true });
  });
});

describe('with… helpers on a SessionSource: re-queue only when asked, never run a section twice', () => {
  test('withLock({ requeue: true }) waiting across a freeze queues again on the next lease and runs once; without it, LeaseLostError', async () => {
    const name = uniqueName('requeue');
    const [a, b, c] = [source(), source(), source()];
    const holder = await new Mutex(a, name).lock();
    let runs = 0;
    const requeued = new Mutex(b, name).withLock(async (lock) => {
      runs++;
      return lock.session.leaseHex;
    }, { requeue: true });
    const plain = new Mutex(c, name).withLock(() => 'ran').catch((e: unknown) => e);
    await eventually(async () => (await leasesUnder(`${name}/`)).length === 3, 5000, 'both queued');
    const bLease = (await b.current()).leaseHex;
    await freeze();
    expect(holder.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(await plain).toBeInstanceOf(LeaseLostError);
    const lease = await requeued;
    expect(runs).toBe(1);
    expect(lease).not.toBe(bLease);
  });

  test('a section that started is never re-run: its signal aborts with LeaseLostError and the call rejects once', async () => {
    const name = uniqueName('started');
    const pool = new Semaphore(source(), name, { permits: 1 });
    let runs = 0;
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const call = pool
      .withPermit(async (permit) => {
        runs++;
        started();
        await new Promise((resolve) => permit.signal.addEventListener('abort', resolve, { once: true }));
        throw permit.signal.reason;
      }, { requeue: true })
      .catch((e: unknown) => e);
    await running;
    await freeze();
    expect(await call).toBeInstanceOf(LeaseLostError);
    expect(runs).toBe(1);
  });

  test('requeue needs a SessionSource: a fixed Session has no next lease', async () => {
    const mutex = new Mutex(await fx.session(), uniqueName('fixed'));
    await expect(mutex.withLock(() => 1, { requeue: true })).rejects.toThrow('Option `requeue` of Mutex.withLock needs a SessionSource');
    await expect(mutex.withLock(() => 1, { requeue: 'yes' as unknown as boolean })).rejects.toThrow('Expected `requeue` of Mutex.withLock to be a boolean, got the string "yes"');
    const semaphore = new Semaphore(source(), uniqueName('fixed'), { permits: 2 });
    await expect(semaphore.withPermit(() => 1, { wieght: 2 } as never)).rejects.toThrow(/Unknown option `wieght` of Semaphore.withPermit.*did you mean `weight`/);
    expect(await semaphore.withPermit((p) => p.weight, { weight: 2, requeue: true })).toBe(2);
  });
});
