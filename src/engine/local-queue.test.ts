import { describe, expect, test } from 'vitest';
import { LocalQueue } from './local-queue.js';

describe('LocalQueue', () => {
  test('turns are taken in order, one at a time, per key', async () => {
    const q = new LocalQueue();
    const order: string[] = [];
    const first = await q.enter('k');
    const second = q.enter('k').then((leave) => (order.push('second'), leave));
    const third = q.enter('k').then((leave) => (order.push('third'), leave));
    const other = await q.enter('other'); // another key is independent
    other();
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    expect(q.busy('k')).toBe(true);
    first();
    (await second)();
    (await third)();
    expect(order).toEqual(['second', 'third']);
    expect(q.busy('k')).toBe(false);
  });

  test('an aborted place rejects with the reason and does not break the line behind it', async () => {
    const q = new LocalQueue();
    const first = await q.enter('k');
    const controller = new AbortController();
    const aborted = q.enter('k', controller.signal);
    const third = q.enter('k');
    const reason = new Error('gone');
    controller.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    first();
    (await third)();
    expect(q.busy('k')).toBe(false);
  });

  test('tryEnter never waits', async () => {
    const q = new LocalQueue();
    const leave = q.tryEnter('k');
    expect(leave).not.toBeNull();
    expect(q.tryEnter('k')).toBeNull();
    leave!();
    leave!(); // idempotent
    expect(q.tryEnter('k')).not.toBeNull();
  });
});
