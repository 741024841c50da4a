// DoubleBarrier against a real etcd: rounds, late arrivals, participants that die inside, aborts and
// lost leases; and the three ways the protocol before issue 19 broke a round, each lined up exactly
// (participants behind proxies of their own, so that a test can hold one's answers).
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { DoubleBarrier, LeaseLostError } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { keysUnder, stillPending, uniqueName } from '../helpers.js';
import { participant } from './double-barrier-system.js';

const fx = etcdForFile(5);

describe('DoubleBarrier', () => {
  test('enter() returns once `count` have entered, leave() once all have left; no key is left', async () => {
    const name = uniqueName('phase');
    const parts = await Promise.all(Array.from({ length: 3 }, async () => new DoubleBarrier(await fx.session(), name, { count: 3 })));
    const first = [parts[0]!.enter(), parts[1]!.enter()];
    for (const e of first) expect(await stillPending(e, 300)).toBe(true);
    await Promise.all([...first, parts[2]!.enter()]);
    expect(await keysUnder(fx.admin, `${name}/ready`)).toEqual([`${name}/ready`]);
    const leaving = [parts[0]!.leave(), parts[1]!.leave()];
    for (const l of leaving) expect(await stillPending(l, 300)).toBe(true);
    await Promise.all([...leaving, parts[2]!.leave()]);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('more arrivals than `count` at once: the first `count` form the round, the rest the next one', async () => {
    const name = uniqueName('phase-many');
    const parts = await Promise.all(Array.from({ length: 4 }, async () => new DoubleBarrier(await fx.session(), name, { count: 2 })));
    const entered: number[] = [];
    const enters = parts.map(async (p, i) => {
      await p.enter({ signal: AbortSignal.timeout(20_000) });
      entered.push(i);
    });
    await expect.poll(() => entered.length, { timeout: 5000 }).toBe(2);
    await delay(300);
    expect(entered).toHaveLength(2); // the other two wait for the next round
    await Promise.all(entered.map(async (i) => parts[i]!.leave()));
    await Promise.all(enters);
    expect(entered).toHaveLength(4);
    await Promise.all(entered.slice(2).map(async (i) => parts[i]!.leave()));
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('a late enter never joins a round that is leaving (etcd issue 14603): it waits for the next one', async () => {
    const name = uniqueName('phase-late');
    const [a, b, late, partner] = await Promise.all(Array.from({ length: 4 }, async () => new DoubleBarrier(await fx.session(), name, { count: 2 })));
    const aEntering = a!.enter();
    await expect.poll(async () => (await keysUnder(fx.admin, `${name}/waiters/`)).length).toBe(1); // a is the oldest
    await Promise.all([aEntering, b!.enter()]);
    const aLeaving = a!.leave(); // the oldest waits for b to go
    const lateEnter = late!.enter();
    expect(await stillPending(lateEnter, 300)).toBe(true);
    expect(await keysUnder(fx.admin, `${name}/waiters/`)).toHaveLength(2); // the late one wrote no key
    await b!.leave();
    await aLeaving;
    await Promise.all([lateEnter, partner!.enter()]);
    await Promise.all([late!.leave(), partner!.leave()]);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('a participant that dies inside leaves with its lease: the others finish within the TTL', async () => {
    const name = uniqueName('phase-dies');
    const ttl = 2;
    const doomed = await fx.session(ttl);
    const parts = [new DoubleBarrier(doomed, name, { count: 3 }), ...(await Promise.all([0, 1].map(async () => new DoubleBarrier(await fx.session(), name, { count: 3 }))))];
    const first = parts[0]!.enter();
    await expect.poll(async () => (await keysUnder(fx.admin, `${name}/waiters/`)).length).toBe(1);
    await Promise.all([first, parts[1]!.enter(), parts[2]!.enter()]);
    // The oldest participant dies: its key stays until its lease expires (revoked here, as a kill would let it expire).
    await fx.admin.leaseClient.leaseRevoke({ ID: doomed.leaseId });
    const started = performance.now();
    await Promise.all([parts[1]!.leave(), parts[2]!.leave()]);
    expect(performance.now() - started).toBeLessThan((ttl + 2) * 1000);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('an aborted enter deletes its key; a lost lease rejects enter with LeaseLostError', async () => {
    const name = uniqueName('phase-abort');
    const p = new DoubleBarrier(await fx.session(), name, { count: 2 });
    const reason = new Error('no more waiting');
    const controller = new AbortController();
    const entering = p.enter({ signal: controller.signal });
    await expect.poll(async () => (await keysUnder(fx.admin, `${name}/waiters/`)).length).toBe(1);
    controller.abort(reason);
    await expect(entering).rejects.toBe(reason);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);

    const session = await fx.session(2);
    const q = new DoubleBarrier(session, name, { count: 2 });
    const waiting = q.enter();
    await expect.poll(async () => (await keysUnder(fx.admin, `${name}/waiters/`)).length).toBe(1);
    await fx.admin.leaseClient.leaseRevoke({ ID: session.leaseId });
    await expect(waiting).rejects.toBeInstanceOf(LeaseLostError);
  });

  test('bad input is refused, naming it', async () => {
    const s = await fx.session();
    expect(() => new DoubleBarrier(s, 'x', { count: 0 })).toThrow('Expected `count` to be an integer >= 1, got `0`');
    expect(() => new DoubleBarrier(s, 'x', {} as never)).toThrow('Expected `count` to be an integer, got `undefined`');
    expect(() => new DoubleBarrier(s, 'x/', { count: 1 })).toThrow(TypeError);
    const p = new DoubleBarrier(s, uniqueName('bad'), { count: 1 });
    await expect(p.leave()).rejects.toThrow('leave() without enter()');
    await p.enter(); // count 1: at once
    await expect(p.enter()).rejects.toThrow('enter() while inside');
    await p.leave();
  });
});

/** The waiter keys under `name`, oldest first. */
const waiters = async (name: string): Promise<string[]> => keysUnder(fx.admin, `${name}/waiters/`);

/** Polls until `name` has `n` waiter keys. */
async function untilWaiters(name: string, n: number): Promise<void> {
  await expect.poll(async () => (await waiters(name)).length, { timeout: 5000 }).toBe(n);
}

// Issue 19 §1: three ways today's protocol broke a round, each lined up exactly.
describe('DoubleBarrier rounds', () => {
  test('a round stays closed when the participant that opened it dies inside: a newcomer waits for the next round', async () => {
    const name = uniqueName('round-closed');
    const [a, b] = await Promise.all([0, 1].map(async () => new DoubleBarrier(await fx.session(), name, { count: 3 })));
    const lastSession = await fx.session();
    const last = new DoubleBarrier(lastSession, name, { count: 3 });
    const entering = [a!.enter(), b!.enter()];
    await untilWaiters(name, 2);
    await Promise.all([...entering, last.enter()]); // the last arrival completes (opens) the round
    // It dies inside (a crash, or a leave() that timed out and then close()): its lease goes.
    await fx.admin.leaseClient.leaseRevoke({ ID: lastSession.leaseId });
    await untilWaiters(name, 2);
    const newcomer = new DoubleBarrier(await fx.session(), name, { count: 3 });
    const late = newcomer.enter({ signal: AbortSignal.timeout(20_000) });
    // The round of a, b and the dead one is in progress: the newcomer must not count a and b as its own.
    expect(await stillPending(late, 1000)).toBe(true);
    expect(await keysUnder(fx.admin, `${name}/ready`)).toEqual([`${name}/ready`]);
    await Promise.all([a!.leave(), b!.leave()]);
    // A new round, of the newcomer and two more.
    expect(await stillPending(late, 300)).toBe(true);
    const more = await Promise.all([0, 1].map(async () => new DoubleBarrier(await fx.session(), name, { count: 3 })));
    await Promise.all([late, ...more.map(async (p) => p.enter())]);
    await Promise.all([newcomer.leave(), ...more.map(async (p) => p.leave())]);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('a round never opens with count − 1: an abort between the last arrival’s read and its write keeps the round open', async () => {
    const name = uniqueName('round-short');
    const a = new DoubleBarrier(await fx.session(), name, { count: 3 });
    const b = new DoubleBarrier(await fx.session(), name, { count: 3 });
    await using c = await participant(fx.etcd, name, 3);
    const aborting = new AbortController();
    const aEnter = a.enter({ signal: aborting.signal });
    await untilWaiters(name, 1);
    const bEnter = b.enter({ signal: AbortSignal.timeout(20_000) });
    await untilWaiters(name, 2);
    // c joins and reads a, b and itself — but that answer is held until a has given up.
    c.proxy.blackhole('toClient');
    const cEnter = c.barrier.enter({ signal: AbortSignal.timeout(20_000) });
    await untilWaiters(name, 3);
    aborting.abort(new Error('a gives up'));
    await expect(aEnter).rejects.toThrow('a gives up');
    await untilWaiters(name, 2);
    c.proxy.heal();
    // Two of three: nobody may get in, and no round may be recorded.
    expect(await stillPending(Promise.race([bEnter, cEnter]), 1500)).toBe(true);
    expect(await keysUnder(fx.admin, `${name}/ready`)).toEqual([]);
    const d = new DoubleBarrier(await fx.session(), name, { count: 3 });
    await Promise.all([bEnter, cEnter, d.enter()]);
    await Promise.all([b.leave(), c.barrier.leave(), d.leave()]);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('no live participant is stranded when the one that was to complete the round dies before it does', async () => {
    const name = uniqueName('round-stranded');
    const a = new DoubleBarrier(await fx.session(), name, { count: 2 });
    const c = new DoubleBarrier(await fx.session(), name, { count: 2 });
    const b = await participant(fx.etcd, name, 2);
    const aEnter = a.enter({ signal: AbortSignal.timeout(20_000) });
    await untilWaiters(name, 1);
    // b joins second (it would complete the round) but hears nothing back; c joins third.
    const events: string[] = [];
    const watcher = await fx.admin.watch().prefix(`${name}/waiters/`).create();
    watcher.on('put', (kv) => events.push(`put ${kv.key.toString()}`));
    watcher.on('delete', (kv) => events.push(`delete ${kv.key.toString()}`));
    b.proxy.blackhole('toClient');
    const bEnter = b.barrier.enter({ signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
    await untilWaiters(name, 2);
    const cEnter = c.enter({ signal: AbortSignal.timeout(20_000) });
    // c read a, b and itself, and has taken its key back (it was beyond count).
    await expect.poll(() => events.filter((e) => e.startsWith('delete')).length, { timeout: 5000 }).toBe(1);
    // b dies before it has written anything more.
    await fx.admin.leaseClient.leaseRevoke({ ID: b.session.leaseId });
    // a (and then c) must not wait for ever for a write that will never come.
    await aEnter;
    await a.leave({ signal: AbortSignal.timeout(10_000) });
    await Promise.all([a.enter({ signal: AbortSignal.timeout(10_000) }), cEnter]);
    await Promise.all([a.leave(), c.leave()]);
    await watcher.cancel();
    b.proxy.heal();
    expect(await bEnter).toBeInstanceOf(Error);
    await b.dispose();
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });
});
