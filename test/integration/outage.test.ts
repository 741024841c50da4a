// etcd going away under the library: which error each call reports, that a lost session's reason wins
// over the transport error, that release() never rejects for a transient cause, that a lease granted
// after a short outage is trusted from the attempt that succeeded, and what an observer with vacancies
// reports while no leader can be confirmed. Each test starts (and kills, or freezes) an etcd of its own.
import { setTimeout as delay } from 'node:timers/promises';
import { handleAll, noop, retry } from 'cockatiel';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  Barrier,
  DoubleBarrier,
  Election,
  EtcdUnavailableError,
  LeaseLostError,
  Mutex,
  ReadWriteLock,
  Semaphore,
  Session,
  isEtcdUnavailableError,
  isLeaseholdError,
} from '../../src/index.js';
import { startEtcd } from '../../src/testing/index.js';

describe('etcd down', () => {
  test('a transport failure names the endpoint and the gRPC status', async () => {
    await using etcd = await startEtcd();
    const endpoint = etcd.endpoints[0]!.replace(/^https?:\/\//, '');
    await etcd.members[0]!.kill();
    const client = etcd.client();
    const error = await Session.create(client, { ttl: 5, retryPolicy: retry(handleAll, { maxAttempts: 1 }) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtcdUnavailableError);
    const unavailable = error as EtcdUnavailableError;
    expect(unavailable.endpoints).toEqual([endpoint]);
    expect(unavailable.code).toBe('UNAVAILABLE');
    expect(unavailable.message).toMatch(new RegExp(`^etcd at ${endpoint.replace(/[.]/g, '\\.')} unavailable: 14 UNAVAILABLE`));
    expect(unavailable.cause).toBeInstanceOf(Error);
  });

  test('release() of a held lock keeps deleting through an outage and resolves once the key is gone', async () => {
    await using etcd = await startEtcd();
    const client = etcd.client({ faultHandling: { host: () => noop, global: noop } });
    await using session = await Session.create(client, { ttl: 20, requestTimeout: 500 });
    const lock = await new Mutex(session, 'through-outage').lock();
    const member = etcd.members[0]!;
    await member.pause();
    const releasing = lock.release();
    await delay(1500); // several attempts time out meanwhile
    await member.resume();
    // 'already-gone' when a timed-out attempt was applied after all and the retry found nothing.
    expect(['deleted', 'already-gone']).toContain(await releasing);
    const admin = etcd.client();
    expect(await admin.getAll().prefix('through-outage/').keys()).toEqual([]);
  });
});

// Both transports: the etcd3 one is where a breaker's BrokenCircuitError and raw gRPC errors once leaked.
describe.each(['h2', 'etcd3'] as const)('etcd down, on the %s transport', (transport) => {
  test('waiters of every primitive get LeaseLostError, and release() resolves, when the lease is lost while etcd is down', async () => {
    await using etcd = await startEtcd();
    const ttl = Math.max(2, etcd.minTtl); // not 1 s: a loaded machine could lose the holder during the set-up
    // etcd3's defaults (breakers, global retry): what used to leak BrokenCircuitError and 14 UNAVAILABLE
    // on the etcd3 transport.
    const client = etcd.client();
    const holder = await Session.create(client, { ttl, transport });
    const waiter = await Session.create(client, { ttl, transport });
    const [mutex, rw, sem, election] = ['m', 'rw', 's', 'e'];
    const lock = await new Mutex(holder, mutex).lock();
    const read = await new ReadWriteLock(holder, rw).readLock();
    const permit = await new Semaphore(holder, sem, { permits: 1 }).acquire();
    const leadership = await new Election(holder, election).campaign('holder');
    const waits = [
      new Mutex(waiter, mutex).lock(),
      new ReadWriteLock(waiter, rw).writeLock(),
      new Semaphore(waiter, sem, { permits: 1 }).acquire(), // the head of the queue, watching the holders
      new Election(waiter, election).campaign('waiter'),
    ].map(async (p) => p.then(() => 'acquired', (e: unknown) => e));
    await delay(300); // everyone is queued and watching
    const killed = performance.now();
    await etcd.members[0]!.kill();
    const outcomes = await Promise.all(waits);
    const lostAfter = performance.now() - killed;
    for (const outcome of outcomes) {
      expect(outcome, String(outcome)).toBeInstanceOf(LeaseLostError);
      expect(outcome).toBe(waiter.signal.reason);
    }
    expect(lostAfter).toBeLessThan(ttl * 1000 + 2000);
    // The holders' releases never reject: the session is over, the keys go with the lease.
    const releases = await Promise.allSettled([lock.release(), read.release(), permit.release(), leadership.resign()]);
    expect(releases.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    expect(releases.map((r) => (r as PromiseFulfilledResult<string>).value)).toEqual(['lease-ended', 'lease-ended', 'lease-ended', 'lease-ended']);
  });

  test('no error an outage produces reaches the caller without a leasehold error around it', async () => {
    await using etcd = await startEtcd();
    const client = etcd.client(); // etcd3's default breakers
    const session = await Session.create(client, { ttl: 10, transport });
    await etcd.members[0]!.kill();
    const calls = [
      new Election(session, 'e').leader(),
      Session.create(client, { ttl: 5, transport }),
      new Mutex(session, 'm').tryLock(),
    ];
    for (const outcome of await Promise.allSettled(calls)) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason as Error;
      expect(isLeaseholdError(reason), `${reason.name}: ${reason.message}`).toBe(true);
      if (isEtcdUnavailableError(reason)) expect(reason.message).toMatch(/^etcd at 127\.0\.0\.1:\d+/);
    }
    await session.close();
  });
});

describe('Session.create after a short outage', () => {
  test('the validity clock starts at the attempt that succeeded, not before the first one', async () => {
    await using etcd = await startEtcd();
    const ttl = 3;
    const client = etcd.client({ faultHandling: { host: () => noop, global: noop } });
    const member = etcd.members[0]!;
    await member.pause();
    const creating = Session.create(client, { ttl, requestTimeout: 400 });
    // Longer than TTL − safetyMargin (2.7 s): a clock started before the first attempt has run out.
    await delay(3200);
    await member.resume();
    const started = performance.now();
    const session = await creating;
    expect(session.alive).toBe(true);
    expect(session.deadline).toBeGreaterThan(started + 1000);
    await session.close();
  });
});

// Issue 19 §4: every wait loop rides out an outage the same way. One etcd is killed for 12 s while a
// waiter of every primitive waits (sessions with a 30 s TTL, so no lease runs out meanwhile); after
// the restart the blockers let go, and every wait must end as it would have without the outage —
// never with the EtcdUnavailableError of a loop that gave up after the transport's retries (~7 s).
describe('a 12 s outage while every primitive waits', () => {
  const outageMs = 12_000;
  const outcomes = new Map<string, Promise<{ ok: true; at: number } | { ok: false; error: unknown; at: number }>>();
  let restartedAt = 0;
  let heldThrough: boolean[] = [];
  let etcd: Awaited<ReturnType<typeof startEtcd>> | undefined;
  const settle = (what: string, wait: Promise<unknown>): void => {
    outcomes.set(
      what,
      wait.then(
        () => ({ ok: true as const, at: performance.now() }),
        (error: unknown) => ({ ok: false as const, error, at: performance.now() }),
      ),
    );
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    const session = async (): Promise<Session> => Session.create(etcd!.client(), { ttl: 30 });
    const [holder, waiter, other] = [await session(), await session(), await session()];
    const lock = await new Mutex(holder, 'm').lock();
    const write = await new ReadWriteLock(holder, 'rw').writeLock();
    const permit = await new Semaphore(holder, 's', { permits: 1 }).acquire();
    const leadership = await new Election(holder, 'e').campaign('holder');
    const raised = await new Barrier(holder, 'b').hold();
    const pair = [new DoubleBarrier(holder, 'leave', { count: 2 }), new DoubleBarrier(other, 'leave', { count: 2 })];
    await Promise.all(pair.map(async (p) => p.enter()));
    const observed: string[] = [];
    // Generous, but bounded: a wait that never ends fails its test instead of hanging the file.
    const signal = AbortSignal.timeout(60_000);
    settle('Mutex.lock', new Mutex(waiter, 'm').lock({ signal }).then(async (h) => h.release()));
    settle('ReadWriteLock.readLock', new ReadWriteLock(waiter, 'rw').readLock({ signal }).then(async (h) => h.release()));
    settle('Semaphore.acquire', new Semaphore(waiter, 's', { permits: 1 }).acquire({ signal }).then(async (h) => h.release()));
    // The new leader stays until the observer has seen it: an observer reports the latest leader, so a
    // leadership that begins and ends while it is still reconnecting (its retries back off to 2 s
    // during the outage) is one it may never report.
    let sawWaiter = (): void => undefined;
    const seen = new Promise<void>((resolve) => (sawWaiter = resolve));
    const untilSeen = Promise.race([seen, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))]);
    settle('Election.campaign', new Election(waiter, 'e').campaign('waiter', { signal }).then(async (l) => untilSeen.then(async () => l.resign())));
    settle('Election.observe', (async () => {
      for await (const state of new Election(other, 'e').observe({ signal })) {
        observed.push(state.value);
        if (state.value === 'waiter') {
          sawWaiter();
          return;
        }
      }
      throw new Error(`observe ended without seeing the new leader (saw ${observed.join(', ')})`);
    })());
    settle('Barrier.wait', new Barrier(waiter, 'b').wait({ signal }));
    const entering = new DoubleBarrier(waiter, 'enter', { count: 2 });
    settle('DoubleBarrier.enter', entering.enter({ signal }).then(async () => entering.leave({ signal })));
    settle('DoubleBarrier.leave', pair[0]!.leave({ signal }));
    await delay(500); // every waiter is queued and watching
    const member = etcd.members[0]!;
    await member.kill();
    await delay(outageMs);
    await member.restart();
    restartedAt = performance.now();
    heldThrough = [lock.signal, write.signal, permit.signal, leadership.signal, raised!.signal].map((sig) => !sig.aborted);
    // The blockers let go, through whatever is left of the outage for their own client.
    const partner = new DoubleBarrier(other, 'enter', { count: 2 });
    const bounded = { signal: AbortSignal.timeout(30_000) };
    await Promise.allSettled([
      lock.release(),
      write.release(),
      permit.release(),
      leadership.resign(),
      raised!.release(),
      pair[1]!.leave(bounded),
      partner.enter(bounded).then(async () => partner.leave(bounded)),
    ]);
    await Promise.all(outcomes.values());
    await Promise.all([holder.close(), waiter.close(), other.close()]);
  }, 120_000);

  afterAll(async () => etcd?.stop());

  test('what was held before the outage is still held after it (the leases outlived it)', () => {
    expect(heldThrough).toEqual([true, true, true, true, true]);
  });

  test.each([
    'Mutex.lock',
    'ReadWriteLock.readLock',
    'Semaphore.acquire',
    'Election.campaign',
    'Election.observe',
    'Barrier.wait',
    'DoubleBarrier.enter',
    'DoubleBarrier.leave',
  ])('%s waits through the outage and ends after the restart', async (what) => {
    const outcome = await outcomes.get(what)!;
    if (!outcome.ok) throw new Error(`${what} gave up during the outage: ${String(outcome.error)}`, { cause: outcome.error });
    expect(outcome.at).toBeGreaterThanOrEqual(restartedAt);
  });
});

describe('Election.observe with vacancies through an outage', () => {
  test('yields null once no leader can be confirmed (etcd down), and the same leader again once it can', async () => {
    await using etcd = await startEtcd();
    const client = etcd.client();
    const leader = await new Election(await Session.create(client, { ttl: 60 }), 'v').campaign('kept');
    const observer = await Session.create(client, { ttl: 60 });
    const seen: (string | null)[] = [];
    const controller = new AbortController();
    const following = (async () => {
      for await (const state of new Election(observer, 'v').observe({ signal: controller.signal, vacancies: true })) seen.push(state?.value ?? null);
    })();
    await expect.poll(() => seen, { timeout: 10_000 }).toEqual(['kept']);
    await etcd.members[0]!.kill();
    // The killed member breaks the watch; the re-read that follows fails: the leader is unconfirmed.
    await expect.poll(() => seen, { timeout: 15_000 }).toEqual(['kept', null]);
    await etcd.members[0]!.restart();
    await expect.poll(() => seen, { timeout: 30_000 }).toEqual(['kept', null, 'kept']);
    expect(leader.isLeader).toBe(true); // the lease (60 s) outlived the outage: the same term, confirmed
    controller.abort();
    await following;
  }, 60_000);
});
