// LocalQueue: who owns a key after each release; idempotent releases never free a turn someone else holds.
import { describe, expect, test } from 'vitest';
import { LocalQueue } from './local-queue.js';

const settled = async (p: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setTimeout(r, 5));
  return done;
};

describe('LocalQueue turns', () => {
  test('the key stays busy while anyone holds or waits; a repeated release frees nothing it does not own', async () => {
    const q = new LocalQueue();
    expect(q.busy('k')).toBe(false);
    const a = await q.enter('k');
    const b = q.enter('k');
    expect(await settled(b)).toBe(false);
    a();
    const bLeave = await b;
    expect(q.busy('k')).toBe(true); // b holds now
    a(); // a again: b keeps its turn
    expect(q.busy('k')).toBe(true);
    const c = q.enter('k');
    expect(await settled(c)).toBe(false);
    bLeave();
    const cLeave = await c;
    bLeave(); // b again: c keeps its turn
    expect(q.busy('k')).toBe(true);
    expect(q.tryEnter('k')).toBeNull();
    cLeave();
    expect(q.busy('k')).toBe(false);
    cLeave();
    expect(q.busy('k')).toBe(false);
    const d = await q.enter('k'); // free at once
    d();
  });

  test('tryEnter holds the key like enter does: the next enter waits for it, and its second release is a no-op', async () => {
    const q = new LocalQueue();
    const first = q.tryEnter('k')!;
    const next = q.enter('k');
    expect(await settled(next)).toBe(false);
    first();
    const nextLeave = await next;
    first(); // must not free next's turn
    expect(q.busy('k')).toBe(true);
    expect(q.tryEnter('k')).toBeNull();
    nextLeave();
    expect(q.busy('k')).toBe(false);
    const again = q.tryEnter('k');
    expect(again).not.toBeNull();
    again!();
    again!();
    expect(q.busy('k')).toBe(false);
  });

  test('an already aborted signal rejects before queueing; an abort while waiting still passes the turn on in order', async () => {
    const q = new LocalQueue();
    const reason = new Error('no');
    await expect(q.enter('k', AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(q.busy('k')).toBe(false);
    const a = await q.enter('k');
    const controller = new AbortController();
    const b = q.enter('k', controller.signal);
    const c = q.enter('k');
    controller.abort(reason);
    await expect(b).rejects.toBe(reason);
    expect(await settled(c)).toBe(false);
    a();
    (await c)();
    expect(q.busy('k')).toBe(false);
  });
});
