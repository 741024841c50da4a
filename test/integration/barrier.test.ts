// Barrier against a real etcd: holding, waiting and releasing (DoubleBarrier: double-barrier.test.ts).
import { describe, expect, test } from 'vitest';
import { Barrier, LockHandle } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { keysUnder, stillPending, uniqueName } from '../helpers.js';

const fx = etcdForFile(5);

describe('Barrier', () => {
  test('wait() blocks while the barrier is held and returns when it is released; hold() is exclusive', async () => {
    const name = uniqueName('barrier');
    // TTL 30 s: a quiet watch is re-checked only every 10 s, so only the watch's delete event wakes the waiters in time.
    const a = new Barrier(await fx.session(30), name);
    const b = new Barrier(await fx.session(30), name);
    await a.wait(); // not held: at once
    const held = await a.hold();
    expect(held).toBeInstanceOf(LockHandle);
    expect(held!.key).toBe(name);
    expect(await b.hold()).toBeNull();
    expect(await a.hold()).toBeNull(); // the same session too
    const waits = [a.wait(), b.wait(), b.wait()];
    for (const w of waits) expect(await stillPending(w, 200)).toBe(true);
    const released = performance.now();
    expect(await held!.release()).toBe('deleted');
    await Promise.all(waits);
    expect(performance.now() - released).toBeLessThan(3000);
    expect(await keysUnder(fx.admin, name)).toEqual([]);
  });

  test('release() lowers a barrier someone else raised, even one without a lease (as Go’s recipe writes it)', async () => {
    const name = uniqueName('barrier-go');
    await fx.admin.put(name).value(''); // Go's Barrier.Hold: no lease
    const barrier = new Barrier(await fx.session(), name);
    const waiting = barrier.wait();
    expect(await stillPending(waiting, 300)).toBe(true);
    expect(await barrier.release()).toBe(true);
    await waiting;
    expect(await barrier.release()).toBe(false);
  });

  test('the barrier is exactly its key: `name0` does not hold up `name` (etcd PR 16156)', async () => {
    const name = uniqueName('barrier-exact');
    await fx.admin.put(`${name}0`).value('');
    await new Barrier(await fx.session(), name).wait({ signal: AbortSignal.timeout(10_000) }); // held up by `name0`, it would wait for ever
    await fx.admin.delete().key(`${name}0`);
  });

  test('a release while the revision moves on is never missed (etcd PR 16223)', async () => {
    const name = uniqueName('barrier-race');
    const holder = new Barrier(await fx.session(), name);
    const held = await holder.hold();
    const waiters = await Promise.all(Array.from({ length: 5 }, async () => new Barrier(await fx.session(), name)));
    await fx.admin.put(`${name}-unrelated`).value('x'); // move the revision forward
    const waits = waiters.map(async (w) => w.wait({ signal: AbortSignal.timeout(5000) }));
    await held!.release();
    await Promise.all(waits);
    await fx.admin.delete().key(`${name}-unrelated`);
  });

  test('a holder whose session ends lowers the barrier; an aborted wait rejects with its reason', async () => {
    const name = uniqueName('barrier-lease');
    const session = await fx.session();
    await new Barrier(session, name).hold();
    const waiter = new Barrier(await fx.session(), name);
    const reason = new Error('gave up');
    const controller = new AbortController();
    const aborted = waiter.wait({ signal: controller.signal });
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    const waiting = waiter.wait();
    await session.close();
    await waiting;
  });
});
