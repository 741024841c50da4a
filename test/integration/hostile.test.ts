// Hostile input against a real etcd: names that are not well-formed Unicode, foreign keys and records
// under our prefixes, oversized names and values, and options that are wrong in every way a user can
// get them wrong. Each test guards one class of input listed in docs/guarantees.md ("Hostile input").
import { setTimeout as delay } from 'node:timers/promises';
import { GRPCResourceExhastedError } from 'etcd3';
import { describe, expect, test } from 'vitest';
import {
  Election,
  EtcdRequestError,
  ForeignKeyError,
  LeaseLostError,
  Mutex,
  PermitsMismatchError,
  ReadWriteLock,
  Semaphore,
  Session,
  isForeignKeyError,
  type LeaderState,
} from '../../src/index.js';
import { toTransportError } from '../../src/transport/etcd3/errors.js';
import { isTransientError as isTransient } from '../../src/transport/retry.js';

import { etcdForFile } from '../fixture.js';
import { keysUnder, stillPending, uniqueName } from '../helpers.js';

const isTransientError = (error: unknown): boolean => isTransient(toTransportError(error, undefined));

const fx = etcdForFile(5);

/** `('jobs/' + 'report-📦').slice(0, 13)`: a surrogate pair cut in two, as a careless truncation does. */
const cut = ('jobs/' + 'report-📦').slice(0, 13);

describe('names that are not well-formed Unicode', () => {
  test('the cut name really ends in a lone surrogate, which UTF-8 cannot carry', () => {
    expect(cut.charCodeAt(cut.length - 1)).toBe(0xd83d);
    expect(Buffer.from(cut).toString()).not.toBe(cut); // written to etcd as U+FFFD
  });

  test('every primitive refuses it with a TypeError that names the problem, before any key is written', async () => {
    const s = await fx.session();
    const make = [
      () => new Mutex(s, cut),
      () => new ReadWriteLock(s, cut),
      () => new Semaphore(s, cut, { permits: 1 }),
      () => new Election(s, cut),
    ];
    for (const construct of make) {
      expect(construct).toThrow(TypeError);
      expect(construct).toThrow(/well-formed Unicode.*lone surrogate U\+D83D at index 12/);
    }
    expect(await keysUnder(fx.admin, 'jobs/')).toEqual([]);
  });

  test('a well-formed emoji name works and excludes across sessions', async () => {
    const name = uniqueName('report-📦');
    const [a, b] = [new Mutex(await fx.session(), name), new Mutex(await fx.session(), name)];
    const held = await a.lock();
    expect(held.key).toBe(`${name}/${held.session.leaseHex}`);
    expect(await b.tryLock()).toBeNull();
    await held.release();
    const next = await b.tryLock();
    expect(next).not.toBeNull();
    await next!.release();
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('campaign values and identities are checked the same way', async () => {
    const election = new Election(await fx.session(), uniqueName('values'));
    await expect(election.campaign(cut)).rejects.toThrow(/`value` of Election.campaign to be well-formed Unicode/);
  });
});

describe('foreign keys under our prefixes', () => {
  test('a foreign key that is not UTF-8 is a contender like any other, and its delete wakes the waiter at once', async () => {
    const name = uniqueName('bytes');
    const lease = await fx.admin.lease(30, { autoKeepAlive: true }).grant();
    // `name/\xff`: another program's key. As text it reads back as `name/\uFFFD`, whose UTF-8 is other bytes.
    const foreign = Buffer.concat([Buffer.from(`${name}/`), Buffer.from([0xff])]);
    await fx.admin.kv.put({ key: foreign, value: Buffer.alloc(0), lease });
    // TTL 30 s: a quiet watch is re-checked only every 10 s, so only a watch on the right bytes wakes the waiter quickly.
    const mutex = new Mutex(await fx.session(30), name);
    const waiting = mutex.lock();
    expect(await stillPending(waiting, 1000)).toBe(true);
    const started = performance.now();
    await fx.admin.kv.deleteRange({ key: foreign });
    const held = await waiting;
    expect(performance.now() - started).toBeLessThan(3000); // well before the 10 s re-check
    await held.release();
  });

  test('observe() tells apart two foreign keys that decode to the same text', async () => {
    const name = uniqueName('observe-bytes');
    const lease = await fx.admin.lease(30, { autoKeepAlive: true }).grant();
    const k1 = Buffer.concat([Buffer.from(`${name}/`), Buffer.from([0xfe])]);
    const k2 = Buffer.concat([Buffer.from(`${name}/`), Buffer.from([0xff])]);
    await fx.admin.kv.put({ key: k1, value: Buffer.from('first'), lease });
    await fx.admin.kv.put({ key: k2, value: Buffer.from('second'), lease });
    const election = new Election(await fx.session(), name);
    const controller = new AbortController();
    const seen: LeaderState[] = [];
    const following = (async () => {
      for await (const state of election.observe({ signal: controller.signal })) seen.push(state);
    })();
    await expect.poll(() => seen.at(-1)?.value, { timeout: 5000 }).toBe('first');
    await fx.admin.kv.deleteRange({ key: k1 });
    await expect.poll(() => seen.at(-1)?.value, { timeout: 5000 }).toBe('second');
    expect((await election.leader()).value).toBe('second');
    controller.abort();
    await following;
    await fx.admin.kv.deleteRange({ key: k2 });
  });

  test('a contender key without a lease is refused with ForeignKeyError naming it, not waited on for ever', async () => {
    const name = uniqueName('leaseless');
    await fx.admin.put(`${name}/operator-hold`).value('');
    const s = await fx.session();
    const error = await new Mutex(s, name).lock({ signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForeignKeyError);
    expect((error as ForeignKeyError).key).toBe(`${name}/operator-hold`);
    expect((error as Error).message).toMatch(/without a lease/);
    // Our own queue key is gone again; the foreign one is untouched.
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([`${name}/operator-hold`]);
    await fx.admin.delete().key(`${name}/operator-hold`);
  });

  test.each([
    ['an out-of-range record', JSON.stringify({ permits: 3, weight: -100 }), /weight -100 is not an integer from 1 to permits 3/],
    ['garbage', 'not json at all', /not a permit record/],
    ['a weight above its permits', JSON.stringify({ permits: 3, weight: 4 }), /weight 4/],
    ['permits that are not a safe integer', JSON.stringify({ permits: 2 ** 60, weight: 1 }), /permits/],
  ])('a semaphore holder record that is %s is refused, never counted as free capacity', async (_what, value, message) => {
    const name = uniqueName('sem-foreign');
    const lease = await fx.admin.lease(30, { autoKeepAlive: true }).grant();
    await fx.admin.put(`${name}/holders/x`).value(value).lease(lease);
    const sems = await Promise.all(Array.from({ length: 4 }, async () => new Semaphore(await fx.session(), name, { permits: 3 })));
    const outcomes = await Promise.allSettled(sems.map(async (sem) => sem.acquire({ signal: AbortSignal.timeout(10_000) })));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const reason = (outcome as PromiseRejectedResult).reason as Error;
      expect(isForeignKeyError(reason), String(reason)).toBe(true);
      expect(reason.message).toContain(`${name}/holders/x`);
      expect(reason.message).toMatch(message);
    }
    expect(await keysUnder(fx.admin, `${name}/holders/`)).toEqual([`${name}/holders/x`]);
    expect(await keysUnder(fx.admin, `${name}/waiters/`)).toEqual([]);
    await fx.admin.delete().key(`${name}/holders/x`);
  });

  test('a semaphore holder key without a lease is refused, naming it', async () => {
    const name = uniqueName('sem-leaseless');
    await fx.admin.put(`${name}/holders/x`).value(JSON.stringify({ permits: 2, weight: 1 }));
    const sem = new Semaphore(await fx.session(), name, { permits: 2 });
    await expect(sem.acquire({ signal: AbortSignal.timeout(10_000) })).rejects.toThrow(
      new RegExp(`${name}/holders/x: a holder key without a lease`),
    );
    await fx.admin.delete().key(`${name}/holders/x`);
  });

  test('a valid record with other permits is PermitsMismatchError naming the key', async () => {
    const name = uniqueName('sem-mismatch');
    const other = new Semaphore(await fx.session(), name, { permits: 5 });
    const held = await other.acquire();
    const error = await new Semaphore(await fx.session(), name, { permits: 3 }).acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermitsMismatchError);
    expect((error as PermitsMismatchError).key).toBe(held.key);
    expect((error as Error).message).toContain(held.key);
    await held.release();
  });
});

describe('oversized input', () => {
  test('a 500 KB name is refused up front with its byte length, and the client stays usable', async () => {
    const s = await fx.session();
    const huge = 'n'.repeat(500_000);
    for (const construct of [() => new Mutex(s, huge), () => new Election(s, huge), () => new ReadWriteLock(s, huge)]) {
      expect(construct).toThrow(RangeError);
      expect(construct).toThrow(/at most 4096 bytes of UTF-8, got 500000 bytes/);
    }
    expect(() => new Mutex(s, 'é'.repeat(2049))).toThrow(/got 4098 bytes/); // bytes, not characters
    await (await new Mutex(s, 'é'.repeat(2048)).lock()).release();
  });

  test('an election value over 32 KiB is refused up front', async () => {
    const election = new Election(await fx.session(), uniqueName('big-value'));
    await expect(election.campaign('v'.repeat(40_000))).rejects.toThrow(RangeError);
    const leadership = await election.campaign('small');
    await expect(leadership.proclaim('v'.repeat(40_000))).rejects.toThrow(/at most 32768 bytes/);
    await leadership.resign();
  });

  test('"message larger than max" is final, "too many requests" is transient', () => {
    expect(isTransientError(new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: Received message larger than max (4800123 vs 4194304)'))).toBe(false);
    expect(isTransientError(new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: etcdserver: too many requests'))).toBe(true);
    expect(isTransientError(new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: etcdserver: mvcc: database space exceeded'))).toBe(false);
  });

  test('a response too large for gRPC fails once and for all, and other sessions on the client are not locked out', async () => {
    const name = uniqueName('huge-values');
    const lease = await fx.admin.lease(30, { autoKeepAlive: true }).grant();
    // Four foreign contenders of 1.2 MB each: reading them all is over gRPC's 4 MiB receive limit.
    for (let i = 0; i < 4; i++) await fx.admin.put(`${name}/foreign-${i}`).value('x'.repeat(1_200_000)).lease(lease);
    const client = fx.etcd.client();
    const observer = await Session.create(client, { ttl: 5 });
    const started = performance.now();
    const iterate = async (): Promise<void> => {
      for await (const state of new Election(observer, name).observe()) void state;
    };
    const error = await iterate().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EtcdRequestError);
    expect((error as EtcdRequestError).code).toBe('RESOURCE_EXHAUSTED');
    expect((error as Error).message).toMatch(/etcd at 127\.0\.0\.1:\d+ refused the request: 8 RESOURCE_EXHAUSTED/);
    expect(performance.now() - started).toBeLessThan(3000); // not retried
    // etcd3's breaker would refuse every call on this client for 5 s after three failures in a row.
    const other = await Session.create(client, { ttl: 5 });
    await (await new Mutex(other, uniqueName('still-usable')).lock({ signal: AbortSignal.timeout(4000) })).release(); // under the breaker's 5 s
    await Promise.all([observer.close(), other.close()]);
    for (let i = 0; i < 4; i++) await fx.admin.delete().key(`${name}/foreign-${i}`);
  });
});

describe('options that are wrong', () => {
  test.each([
    [{ ttl: '10' }, TypeError, 'Expected `ttl` to be an integer, got the string "10"'],
    [{ tll: 10 }, TypeError, 'Unknown option `tll` of Session.create (known: ttl, leaseId, keepAliveInterval, safetyMargin, requestTimeout, retryPolicy, transport, signal); did you mean `ttl`?'],
    [{ signal: 'x' }, TypeError, 'Expected `signal` of Session.create to be an AbortSignal, got the string "x"'],
    [{ retryPolicy: 'x' }, TypeError, 'Expected `retryPolicy` to be a cockatiel policy (an object with `execute`), got the string "x"'],
    [{ ttl: 1e12 }, RangeError, 'Expected `ttl` to be an integer from 1 to 9000000000, got `1000000000000`'],
    [{ requestTimeout: Number.POSITIVE_INFINITY }, RangeError, 'Expected `requestTimeout` to be a finite number of milliseconds > 0, got `Infinity`'],
    [{ leaseId: 7 }, TypeError, 'Expected `leaseId` to be a positive decimal string or bigint below 2^63'],
    [{ ttl: 5, leaseId: '1' }, TypeError, 'Options `ttl` and `leaseId` of Session.create exclude each other'],
    [null, TypeError, 'Expected the options of Session.create to be an object, got `null`'],
  ])('Session.create(client, %o) → %s naming it', async (options, type, message) => {
    const client = fx.etcd.client();
    const attempt = Session.create(client, options as never);
    await expect(attempt).rejects.toThrow(type);
    await expect(Session.create(client, options as never)).rejects.toThrow(message);
  });

  test('lock(null), a misspelled lock option and a non-Session are clear TypeErrors', async () => {
    const s = await fx.session();
    const mutex = new Mutex(s, uniqueName('opts'));
    await expect(mutex.lock(null as never)).rejects.toThrow('Expected the options of Mutex.lock to be an object, got `null`');
    await expect(mutex.lock({ sigal: AbortSignal.timeout(1) } as never)).rejects.toThrow(/Unknown option `sigal` of Mutex.lock.*did you mean `signal`\?/);
    expect(() => new ReadWriteLock({} as Session, 'x')).toThrow('Expected `session` of ReadWriteLock to be a leasehold Session or SessionSource, got an object');
    expect(() => new Semaphore(undefined as unknown as Session, 'x', { permits: 1 })).toThrow(/`session` of Semaphore/);
    expect(() => new Semaphore(s, 'x', { permits: 2 ** 53 })).toThrow('Expected `permits` to be an integer, got `9007199254740992`');
    expect(() => new Semaphore(s, 'x', { permits: 2, weight: 1 } as never)).toThrow(/Unknown option `weight` of Semaphore/);
  });

  test('withLock(42) is a TypeError at once, without waiting for the lock', async () => {
    const name = uniqueName('with-42');
    const held = await new Mutex(await fx.session(), name).lock();
    const attempt = new Mutex(await fx.session(), name).withLock(42 as never);
    const outcome = await Promise.race([attempt.then(() => 'resolved', (e: unknown) => e), delay(5000).then(() => 'still waiting')]);
    expect(outcome).toBeInstanceOf(TypeError);
    expect((outcome as Error).message).toBe('Expected `fn` of Mutex.withLock to be a function, got `42`');
    await held.release();
  });

  test('lease ids are shown in hex in every error, as in keys and `etcdctl lease list`', async () => {
    const s = await fx.session();
    await fx.admin.leaseClient.leaseRevoke({ ID: s.leaseId });
    const error = await new Mutex(s, uniqueName('hex')).lock().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LeaseLostError);
    // One name, one base: `leaseId` is etcd's decimal string everywhere (Session, handles, errors);
    // `leaseHex` is the hex form that messages and keys show.
    expect((error as LeaseLostError).leaseId).toBe(s.leaseId);
    expect((error as LeaseLostError).leaseHex).toBe(s.leaseHex);
    expect((error as Error).message).toContain(s.leaseHex);
    expect((error as Error).message).not.toContain(s.leaseId);
    const missing = await Session.create(fx.etcd.client(), { leaseId: 123456789n }).catch((e: unknown) => e);
    expect((missing as Error).message).toContain((123456789n).toString(16));
  });
});
