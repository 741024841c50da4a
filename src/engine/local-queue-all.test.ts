import { describe, expect, test } from 'vitest';
import { LocalQueue } from './local-queue.js';

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

describe('LocalQueue.enterAll', () => {
  test('overlapping sets in opposite orders never wait for each other in a circle', async () => {
    const q = new LocalQueue();
    // Each holds its turns for a moment before passing them on; opposite orders, asked at once.
    const run = async (keys: string[], log: string[], id: string): Promise<void> => {
      const leave = await q.enterAll(keys);
      log.push(id);
      await tick();
      leave();
    };
    const log: string[] = [];
    await Promise.all([run(['a', 'b'], log, 'ab'), run(['b', 'a'], log, 'ba'), run(['b', 'c', 'a'], log, 'bca')]);
    expect(log).toEqual(['ab', 'ba', 'bca']);
    expect(q.busy('a') || q.busy('b') || q.busy('c')).toBe(false);
  });

  test('a set waits while any of its keys is taken, and holds the others meanwhile', async () => {
    const q = new LocalQueue();
    const b = await q.enter('b');
    let got = false;
    const all = q.enterAll(['a', 'b']).then((leave) => ((got = true), leave));
    await tick();
    expect(got).toBe(false);
    expect(q.busy('a')).toBe(true);
    b();
    (await all)();
    expect(got).toBe(true);
    expect(q.busy('a') || q.busy('b')).toBe(false);
  });

  test('an abort while waiting passes on the turns already taken and rejects with the reason', async () => {
    const q = new LocalQueue();
    const b = await q.enter('b');
    const controller = new AbortController();
    const all = q.enterAll(['a', 'b'], controller.signal);
    await tick();
    const reason = new Error('gone');
    controller.abort(reason);
    await expect(all).rejects.toBe(reason);
    expect(q.busy('a')).toBe(false);
    const a = q.tryEnter('a');
    expect(a).not.toBeNull();
    a!();
    b();
  });

  test('tryEnterAll takes every turn or none', () => {
    const q = new LocalQueue();
    const b = q.tryEnter('b')!;
    expect(q.tryEnterAll(['a', 'b'])).toBeNull();
    expect(q.busy('a')).toBe(false);
    b();
    const all = q.tryEnterAll(['a', 'b'])!;
    expect(q.busy('a') && q.busy('b')).toBe(true);
    all();
    expect(q.busy('a') || q.busy('b')).toBe(false);
  });
});
