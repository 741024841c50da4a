// Semaphore against a real etcd: the limit (checked by an independent watcher and in-process counters),
// FIFO order, weights, mismatched permits, abort cleanup, tryAcquire, O(1) wake-ups, lease loss, example.
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { IWatchResponse } from 'etcd3';
import { describe, expect, test } from 'vitest';
import { isLeaseLostError, isPermitsMismatchError, PermitsMismatchError } from '../../src/errors.js';
import { PermitHandle, permitDefaults, Semaphore } from '../../src/semaphore.js';
import { Session } from '../../src/session.js';
import { eventually, runTs } from '../helpers.js';
import { sumMetric } from '../../src/testing/index.js';
import { etcdForFile } from '../fixture.js';

const fx = etcdForFile(10);

/** Polls `check` until it holds, for up to 15 s by default (generous: other tests share the machine). */
const until = (check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> => eventually(check, timeoutMs);

const keys = (prefix: string): Promise<string[]> => fx.admin.getAll().prefix(prefix).keys();
const waiting = async (name: string): Promise<number> => (await keys(`${name}/waiters/`)).length;

/**
 * Replays every event under `name/holders/` from now on and keeps, at each revision, the set of holders
 * and the sum of their weights: the limit as etcd itself saw it, not as the participants report it.
 */
async function observeHolders(name: string, permits: number) {
  const start = BigInt((await fx.admin.kv.range({ key: Buffer.from(name) })).header.revision) + 1n;
  const holders = new Map<string, number>();
  const state = { max: 0, admissions: 0, foreignPermits: [] as unknown[] };
  const watcher = await fx.admin.watch().prefix(`${name}/holders/`).startRevision(start.toString()).create();
  watcher.on('data', (res: IWatchResponse) => {
    // Apply all events of one revision, then check: the sum at every revision.
    const byRevision = new Map<string, typeof res.events>();
    for (const event of res.events) {
      const list = byRevision.get(event.kv.mod_revision) ?? [];
      list.push(event);
      byRevision.set(event.kv.mod_revision, list);
    }
    for (const events of byRevision.values()) {
      for (const event of events) {
        const key = event.kv.key.toString();
        if (event.type === 'Delete') holders.delete(key);
        else {
          const record = JSON.parse(event.kv.value.toString()) as { permits: number; weight: number };
          if (record.permits !== permits) state.foreignPermits.push(record.permits);
          holders.set(key, record.weight);
          state.admissions++;
        }
      }
      const sum = [...holders.values()].reduce((a, b) => a + b, 0);
      state.max = Math.max(state.max, sum);
    }
  });
  return {
    state,
    holders,
    async close() {
      await watcher.cancel();
    },
  };
}

describe('Semaphore limit', () => {
  test('G3: never more than `permits` held — 12 contenders × 8 cycles, weights 1–2, by etcd watch and by counters', async () => {
    const name = 'sem-limit';
    const permits = 3;
    const watch = await observeHolders(name, permits);
    let held = 0;
    let maxHeld = 0;
    const tokens: bigint[] = [];
    const contenders = await Promise.all(Array.from({ length: 12 }, () => fx.session()));
    await Promise.all(
      contenders.map(async (s, i) => {
        const sem = new Semaphore(s, name, { permits });
        for (let cycle = 0; cycle < 8; cycle++) {
          const weight = 1 + ((i + cycle) % 2);
          const permit = await sem.acquire({ weight });
          held += weight;
          maxHeld = Math.max(maxHeld, held);
          expect(held).toBeLessThanOrEqual(permits);
          tokens.push(permit.token);
          await delay(Math.random() * 15);
          held -= weight;
          await permit.release();
        }
      }),
    );
    await until(() => watch.state.admissions === 96 && watch.holders.size === 0);
    await watch.close();
    expect(watch.state.max).toBeLessThanOrEqual(permits);
    expect(watch.state.max).toBeGreaterThanOrEqual(2); // permits really were shared, so the check meant something
    expect(maxHeld).toBeLessThanOrEqual(permits);
    expect(watch.state.foreignPermits).toEqual([]);
    expect(new Set(tokens).size).toBe(96);
    expect(await keys(`${name}/`)).toEqual([]);
  });

  test('one Session can hold several permits at once, up to the limit', async () => {
    const sem = new Semaphore(await fx.session(), 'sem-one-session', { permits: 3 });
    const permits = await Promise.all([sem.acquire(), sem.acquire(), sem.acquire({ weight: 1 })]);
    expect(new Set(permits.map((p) => p.key)).size).toBe(3);
    expect(permits.every((p) => p.held && p instanceof PermitHandle && p.weight === 1)).toBe(true);
    expect(await sem.tryAcquire()).toBeNull();
    await permits[0]!.release();
    const again = await sem.tryAcquire();
    expect(again?.held).toBe(true);
    await Promise.all([again!.release(), ...permits.map((p) => p.release())]);
    expect(await keys('sem-one-session/')).toEqual([]);
  });
});

describe('Semaphore order and weights', () => {
  test('FIFO: waiters are admitted in the order they queued (admission tokens grow in queue order)', async () => {
    const name = 'sem-fifo';
    const sem = (s: Session) => new Semaphore(s, name, { permits: 2 });
    const first = await sem(await fx.session()).acquire();
    const second = await sem(await fx.session()).acquire();
    const admitted: { index: number; token: bigint }[] = [];
    const runs: Promise<void>[] = [];
    for (let index = 0; index < 8; index++) {
      const s = await fx.session();
      runs.push(
        sem(s)
          .acquire()
          .then(async (permit) => {
            admitted.push({ index, token: permit.token });
            await delay(5);
            await permit.release();
          }),
      );
      await until(async () => (await waiting(name)) === index + 1);
    }
    expect(admitted).toEqual([]);
    await first.release();
    await second.release();
    await Promise.all(runs);
    expect(admitted.toSorted((a, b) => (a.token < b.token ? -1 : 1)).map((a) => a.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  test('weights: a heavy head is not overtaken by lighter waiters behind it, even with permits free', async () => {
    const name = 'sem-weights';
    const make = async () => new Semaphore(await fx.session(), name, { permits: 3 });
    const a = await (await make()).acquire({ weight: 2 });
    expect(a.weight).toBe(2);
    const events: string[] = [];
    const b = (await make()).acquire({ weight: 2 }).then((p) => (events.push('b'), p));
    await until(async () => (await waiting(name)) === 1);
    const c = (await make()).acquire({ weight: 1 }).then((p) => (events.push('c'), p));
    await until(async () => (await waiting(name)) === 2);
    // One permit is free and C needs one, but B is ahead: neither C nor a tryAcquire may take it.
    await delay(300);
    expect(events).toEqual([]);
    expect(await (await make()).tryAcquire({ weight: 1 })).toBeNull();

    await a.release();
    const pb = await b;
    const pc = await c;
    expect(events).toEqual(['b', 'c']);
    expect(pb.token < pc.token).toBe(true);
    // 2 + 1 = 3 held: a waiter of weight 3 waits for both.
    const d = (await make()).acquire({ weight: 3 }).then((p) => (events.push('d'), p));
    await until(async () => (await waiting(name)) === 1);
    await pb.release();
    await delay(200);
    expect(events).toEqual(['b', 'c']);
    await pc.release();
    const pd = await d;
    expect(pd.weight).toBe(3);
    await pd.release();
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('Semaphore permits mismatch', () => {
  test('a participant with other permits gets PermitsMismatchError, not an extra admission, and leaves no key', async () => {
    const name = 'sem-mismatch';
    const three = await new Semaphore(await fx.session(), name, { permits: 3 }).acquire({ weight: 3 });
    const five = new Semaphore(await fx.session(), name, { permits: 5 });

    const error = await five.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermitsMismatchError);
    expect(isPermitsMismatchError(error)).toBe(true);
    expect(error).toMatchObject({ expected: 5, actual: 3 });
    expect((error as Error).message).toMatch(/permits 5.*permits 3/);
    await expect(five.tryAcquire()).rejects.toBeInstanceOf(PermitsMismatchError);
    expect(await keys(`${name}/waiters/`)).toEqual([]);
    expect(await keys(`${name}/holders/`)).toEqual([three.key]);

    // The other way round: a holder with permits 5 makes a permits-3 head fail, whatever its weight.
    await three.release();
    const fivePermit = await five.acquire({ weight: 1 });
    await expect(new Semaphore(await fx.session(), name, { permits: 3 }).acquire()).rejects.toMatchObject({
      name: 'PermitsMismatchError',
      expected: 3,
      actual: 5,
    });
    await fivePermit.release();
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('Semaphore input validation', () => {
  test.each([
    [{ permits: 0 }, RangeError, /`permits` to be an integer >= 1, got `0`/],
    [{ permits: -2 }, RangeError, /`permits` to be an integer >= 1, got `-2`/],
    [{ permits: 1.5 }, TypeError, /`permits` to be an integer, got `1.5`/],
    [{ permits: '3' }, TypeError, /`permits` to be an integer, got the string "3"/],
    [{}, TypeError, /`permits` to be an integer, got `undefined`/],
  ])('new Semaphore(…, %o) throws', async (options, type, message) => {
    const s = await fx.session();
    expect(() => new Semaphore(s, 'sem-bad', options as { permits: number })).toThrow(type);
    expect(() => new Semaphore(s, 'sem-bad', options as { permits: number })).toThrow(message);
  });

  test('a bad name or missing options throws TypeError naming it', async () => {
    const s = await fx.session();
    expect(() => new Semaphore(s, '', { permits: 1 })).toThrow(/non-empty string, got the string ""/);
    expect(() => new Semaphore(s, 'jobs/', { permits: 1 })).toThrow(/not to end with "\/", got the string "jobs\/"/);
    expect(() => new Semaphore(s, 'jobs', undefined as unknown as { permits: number })).toThrow(TypeError);
  });

  test.each([
    [0, RangeError, /`weight` to be an integer >= 1, got `0`/],
    [-1, RangeError, /`weight` to be an integer >= 1, got `-1`/],
    [1.5, TypeError, /`weight` to be an integer, got `1.5`/],
    [Number.NaN, TypeError, /`weight` to be an integer, got `NaN`/],
    [4, RangeError, /`weight` to be at most `permits` \(3\), got `4`/],
  ])('weight %s is rejected by acquire and tryAcquire, before touching etcd', async (weight, type, message) => {
    const sem = new Semaphore(await fx.session(), 'sem-bad-weight', { permits: 3 });
    await expect(sem.acquire({ weight })).rejects.toThrow(type);
    await expect(sem.acquire({ weight })).rejects.toThrow(message);
    await expect(sem.tryAcquire({ weight })).rejects.toThrow(message);
    expect(await keys('sem-bad-weight/')).toEqual([]);
  });

  test('a signal that is not an AbortSignal is a TypeError', async () => {
    const sem = new Semaphore(await fx.session(), 'sem-bad-signal', { permits: 1 });
    await expect(sem.acquire({ signal: 'soon' as unknown as AbortSignal })).rejects.toThrow(
      /`signal` of Semaphore.acquire to be an AbortSignal, got the string "soon"/,
    );
  });
});

describe('Semaphore abort and tryAcquire', () => {
  test('aborting a waiter (in the queue or at its head) rejects with signal.reason and leaves no key', async () => {
    const name = 'sem-abort';
    const make = async () => new Semaphore(await fx.session(), name, { permits: 1 });
    const holder = await (await make()).acquire();
    const headAbort = new AbortController();
    const middleAbort = new AbortController();
    const head = (await make()).acquire({ signal: headAbort.signal });
    await until(async () => (await waiting(name)) === 1);
    const middle = (await make()).acquire({ signal: middleAbort.signal });
    await until(async () => (await waiting(name)) === 2);
    const tail = (await make()).acquire();
    await until(async () => (await waiting(name)) === 3);

    const middleReason = new Error('middle gave up');
    middleAbort.abort(middleReason);
    await expect(middle).rejects.toBe(middleReason);
    expect(await waiting(name)).toBe(2);

    const headReason = new Error('head gave up'); // the head is watching the holders, not a waiter
    headAbort.abort(headReason);
    await expect(head).rejects.toBe(headReason);
    expect(await waiting(name)).toBe(1);

    await holder.release();
    const permit = await tail; // the queue closed up behind the aborted ones
    expect(permit.held).toBe(true);
    await permit.release();
    expect(await keys(`${name}/`)).toEqual([]);

    const already = AbortSignal.abort(new Error('never started'));
    await expect((await make()).acquire({ signal: already })).rejects.toBe(already.reason);
  });

  test('G3: aborts racing the admission (4 contenders × 30 tries, 0–30 ms timeouts) never exceed the permits nor leave a key behind', async () => {
    const name = 'sem-abort-race';
    const permits = 2;
    const watch = await observeHolders(name, permits);
    const sems = await Promise.all([0, 1, 2, 3].map(async () => new Semaphore(await fx.session(), name, { permits })));
    let got = 0;
    let held = 0;
    let maxHeld = 0;
    const errors: string[] = [];
    await Promise.all(
      sems.map(async (sem) => {
        for (let i = 0; i < 30; i++) {
          try {
            // Some give up before the admission, some during it, some after it (the undo path); every
            // tenth try waits up to 5 s, so some permits are granted however slow the machine is.
            const timeout = i % 10 === 9 ? 5000 : Math.floor(Math.random() * 30);
            const permit = await sem.acquire({ signal: AbortSignal.timeout(timeout) });
            got++;
            maxHeld = Math.max(maxHeld, ++held);
            await delay(5 + Math.random() * 10); // long enough for the others to try to overlap
            held--;
            await permit.release();
          } catch (error) {
            errors.push((error as Error).name);
          }
        }
      }),
    );
    await until(async () => (await keys(`${name}/`)).length === 0, 10_000);
    await until(() => watch.holders.size === 0);
    await watch.close();
    // Every try ended in a permit or in its own timeout; none in another error.
    expect(got + errors.length).toBe(120);
    expect(got).toBeGreaterThan(0);
    expect(new Set(errors)).toEqual(new Set(errors.length > 0 ? ['TimeoutError'] : []));
    // The limit, as etcd saw it (holder keys, including admissions undone after a late abort) and as
    // the holders saw it.
    expect(watch.state.max).toBeLessThanOrEqual(permits);
    expect(maxHeld).toBeLessThanOrEqual(permits);
    expect(watch.state.admissions).toBeGreaterThanOrEqual(got);
    expect(watch.state.foreignPermits).toEqual([]);
  });

  test('tryAcquire: a handle when free, null when full or when someone is queued, and no key left on null', async () => {
    const name = 'sem-try';
    const a = new Semaphore(await fx.session(), name, { permits: 2 });
    const b = new Semaphore(await fx.session(), name, { permits: 2 });
    const p1 = await a.tryAcquire();
    expect(p1).toBeInstanceOf(PermitHandle);
    expect(p1!.key).toMatch(new RegExp(`^${name}/holders/${p1!.session.leaseHex}-[0-9a-z]+$`));
    const p2 = await b.tryAcquire();
    expect(p2?.held).toBe(true);
    expect(p2!.token > p1!.token).toBe(true);
    expect(await a.tryAcquire()).toBeNull();
    expect(await keys(`${name}/waiters/`)).toEqual([]);

    await p1!.release();
    expect(await b.tryAcquire({ weight: 2 })).toBeNull(); // 1 of 2 held
    const p3 = await a.tryAcquire({ weight: 1 });
    expect(p3?.weight).toBe(1);
    await Promise.all([p2!.release(), p3!.release(), p1!.release()]);
    expect(await keys(`${name}/`)).toEqual([]);
  });

  test('released permits abort their signal and fail guarded commits', async () => {
    const sem = new Semaphore(await fx.session(), 'sem-handle', { permits: 1 });
    const permit = await sem.acquire();
    await permit.commit(fx.admin.put('sem-handle-effect').value('1'));
    await permit.release();
    await permit.release(); // idempotent
    expect(permit.signal.aborted).toBe(true);
    expect(permit.held).toBe(false);
    await expect(permit.commit(fx.admin.put('sem-handle-effect').value('2'))).rejects.toMatchObject({ name: 'NotHeldError' });
    expect(await fx.admin.get('sem-handle-effect').string()).toBe('1');
  });
});

describe('Semaphore wake-ups and lease loss', () => {
  test('a release wakes O(1) clients: etcd sends ≤ 3 watch events per handoff with 12 waiters queued', async () => {
    const name = 'sem-herd';
    const make = async () => new Semaphore(await fx.session(), name, { permits: 1 });
    const holder = await (await make()).acquire();
    const waiters = 12;
    const done: Promise<unknown>[] = [];
    for (let i = 0; i < waiters; i++) {
      const sem = await make();
      // Each holds a little, so the next head is watching the holders when it leaves.
      done.push(sem.acquire().then(async (permit) => (await delay(20), permit.release())));
      await until(async () => (await waiting(name)) === i + 1);
    }
    await delay(200); // every waiter is watching by now
    const before = sumMetric(await fx.etcd.metrics(), 'etcd_debugging_mvcc_events_total');
    await holder.release();
    await Promise.all(done);
    await delay(200);
    const events = sumMetric(await fx.etcd.metrics(), 'etcd_debugging_mvcc_events_total') - before;
    // Each of the 12 handoffs costs one event to the head (a holder left) and one to the next waiter (the
    // head's waiter key left). A herd would cost one event per waiter per release: 12 + 11 + … = 78.
    expect(events).toBeGreaterThanOrEqual(waiters);
    expect(events).toBeLessThanOrEqual(3 * waiters);
    expect(await keys(`${name}/`)).toEqual([]);
  });

  test('negative control: the metric does count a herd (12 watchers of one key, one delete = 12 events)', async () => {
    await fx.admin.put('sem-herd-control').value('x');
    const watchers = await Promise.all(
      Array.from({ length: 12 }, () => fx.admin.watch().key('sem-herd-control').create()),
    );
    let delivered = 0;
    for (const w of watchers) w.on('delete', () => delivered++);
    const before = sumMetric(await fx.etcd.metrics(), 'etcd_debugging_mvcc_events_total');
    await fx.admin.delete().key('sem-herd-control');
    await until(() => delivered === 12);
    await delay(200);
    const events = sumMetric(await fx.etcd.metrics(), 'etcd_debugging_mvcc_events_total') - before;
    await Promise.all(watchers.map((w) => w.cancel()));
    // One delete, twelve watchers: the metric counts one event per watcher it reached — the herd the
    // test above would see, were a release to wake every waiter.
    expect(events).toBeGreaterThanOrEqual(12);
    expect(events).toBeLessThanOrEqual(13);
  });

  test('a waiter whose lease is revoked mid-wait gets LeaseLostError, never a permit; the next one gets in', async () => {
    const name = 'sem-lease';
    const watch = await observeHolders(name, 1);
    const make = async (ttl?: number) => new Semaphore(await fx.session(ttl), name, { permits: 1 });
    const holder = await (await make()).acquire();
    const doomed = await make(3);
    const doomedWait = doomed.acquire();
    await until(async () => (await waiting(name)) === 1);
    const next = (await make()).acquire();
    await until(async () => (await waiting(name)) === 2);

    await fx.admin.leaseClient.leaseRevoke({ ID: (doomed.session as Session).leaseId });
    const error = await doomedWait.catch((e: unknown) => e);
    expect(isLeaseLostError(error)).toBe(true);
    await holder.release();
    const permit = await next;
    expect(permit.held).toBe(true);
    await permit.release();
    await until(() => watch.holders.size === 0);
    await watch.close();
    expect(watch.state.max).toBe(1);
    expect(watch.state.admissions).toBe(2);
  });
});

describe('Semaphore: a queue key deleted by someone else', () => {
  test('the head (watching the holders) notices at once and rejects with NotHeldError, admitting nothing', async () => {
    const name = 'sem-deleted';
    const make = async () => new Semaphore(await fx.session(), name, { permits: 1 });
    const holder = await (await make()).acquire();
    const head = (await make()).acquire();
    await until(async () => (await waiting(name)) === 1);
    const [waiterKey] = await keys(`${name}/waiters/`);
    await fx.admin.delete().key(waiterKey!);
    await expect(head).rejects.toMatchObject({ name: 'NotHeldError' });
    expect(await keys(`${name}/holders/`)).toEqual([holder.key]);
    await holder.release();
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('Semaphore.withPermit and the permits getters', () => {
  test('withPermit runs fn with a held permit, returns its value, and releases it — also when fn throws', async () => {
    const name = 'sem-with-permit';
    const sem = new Semaphore(await fx.session(), name, { permits: 2 });
    const other = new Semaphore(await fx.session(), name, { permits: 2 });
    let inside: PermitHandle | undefined;
    const value = await sem.withPermit(
      async (permit) => {
        inside = permit;
        expect(permit.held).toBe(true);
        expect(permit.weight).toBe(2);
        expect(await keys(`${name}/holders/`)).toEqual([permit.key]);
        expect(await other.tryAcquire()).toBeNull(); // both permits are taken
        return 'done';
      },
      { weight: 2 },
    );
    expect(value).toBe('done');
    expect(inside!.held).toBe(false);
    expect(inside!.signal.aborted).toBe(true);
    expect(await keys(`${name}/`)).toEqual([]);

    const boom = new Error('work failed');
    let thrownFrom: PermitHandle | undefined;
    await expect(
      sem.withPermit(async (permit) => {
        thrownFrom = permit;
        await delay(10);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(thrownFrom!.held).toBe(false);
    expect(await keys(`${name}/`)).toEqual([]);
    // The permits really are free again: someone else takes both.
    const both = await other.tryAcquire({ weight: 2 });
    expect(both?.held).toBe(true);
    await both!.release();
    // An aborted signal is passed through: no permit, fn never runs.
    const reason = new Error('no time');
    let ran = false;
    await expect(sem.withPermit(() => (ran = true), { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(ran).toBe(false);
  });

  test('permits: the Semaphore and each PermitHandle report the configured total, as recorded in etcd', async () => {
    const name = 'sem-permits-getters';
    const sem = new Semaphore(await fx.session(), name, { permits: 5 });
    expect(sem.permits).toBe(5);
    expect(sem.name).toBe(name);
    const light = await sem.acquire();
    expect(light.weight).toBe(permitDefaults.weight);
    expect(JSON.parse((await fx.admin.get(light.key).string())!)).toEqual({ permits: 5, weight: 1 });
    await light.release();
    const permit = await sem.acquire({ weight: 3 });
    expect(permit.permits).toBe(5);
    expect(permit.weight).toBe(3);
    const record = JSON.parse((await fx.admin.get(permit.key).string())!) as unknown;
    expect(record).toEqual({ permits: 5, weight: 3 });
    // A participant configured otherwise reads the recorded total in its error.
    await expect(new Semaphore(await fx.session(), name, { permits: 4 }).acquire()).rejects.toMatchObject({ expected: 4, actual: 5 });
    await permit.release();
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('examples/semaphore.ts', () => {
  test('runs against ETCD_ENDPOINTS as a user would run it, importing leasehold', async () => {
    const file = fileURLToPath(new URL('../../examples/semaphore.ts', import.meta.url));
    const { code, output } = await runTs(file, { ETCD_ENDPOINTS: fx.etcd.endpoints.join(',') }, 50_000);
    expect(output).toMatch(/at most 2 transcodes ran at once/);
    expect(code).toBe(0);
  });
});
