// The shared deadline lists: every call expires at its own deadline (not the oldest's, not late by a
// timer period), exactly once, never after it was removed, whatever order calls settle in.
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { Deadlines, type Deadline } from './deadlines.js';

function call(timeoutMs: number, log: string[], name: string): Deadline & { expiredAt?: number; startedAt: number } {
  const c = {
    timeoutMs,
    deadline: 0,
    prev: undefined,
    next: undefined,
    startedAt: performance.now(),
    expiredAt: undefined as number | undefined,
    expired() {
      log.push(name);
      c.expiredAt = performance.now();
    },
  };
  return c;
}

describe('Deadlines', () => {
  test('calls expire in order, each at its own deadline; removed ones never', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    const a = call(1000, log, 'a');
    d.add(a);
    await delay(20);
    const b = call(1000, log, 'b');
    const c = call(1000, log, 'c');
    d.add(b);
    d.add(c);
    d.remove(b); // a middle one settles
    d.remove(b); // idempotent
    await delay(20);
    const e = call(1000, log, 'e');
    d.add(e);
    d.remove(a); // the oldest settles before its deadline: the timer armed for it must not expire c early
    await delay(1600);
    expect(log).toEqual(['c', 'e']);
    for (const x of [c, e]) {
      const waited = x.expiredAt! - x.startedAt;
      expect(waited).toBeGreaterThanOrEqual(999);
      expect(waited).toBeLessThan(1000 + 500); // generous: a loaded machine (the timeouts are long enough that the steps above finish before any deadline)
    }
  });

  test('different timeouts keep lists of their own; a list emptied and refilled works again', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    d.add(call(80, log, 'slow'));
    d.add(call(10, log, 'fast'));
    await delay(40);
    expect(log).toEqual(['fast']);
    await delay(100);
    expect(log).toEqual(['fast', 'slow']);
    const again = call(10, log, 'again');
    d.add(again);
    await delay(60);
    expect(log).toEqual(['fast', 'slow', 'again']);
    d.remove(again); // after expiry: a no-op
  });

  test('a timeout beyond Node\'s timer limit (2^31 ms, a requestTimeout users may give) does not expire at once', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    const long = call(2 ** 31, log, 'long');
    d.add(long);
    d.add(call(10, log, 'short'));
    await delay(60);
    expect(log).toEqual(['short']); // Node fires a timer over 2^31 - 1 ms after 1 ms
    d.remove(long);
  });

  test('a middle call removed: the ones before and after it still expire', async () => {
    const d = new Deadlines();
    const log: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((name) => call(30, log, name));
    for (const x of [a, b, c]) d.add(x!);
    d.remove(b!);
    await delay(100);
    expect(log).toEqual(['a', 'c']);
  });

  describe('on a fake clock', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    test('one timer per timeout, however many calls wait on it; each expires at its own deadline, by the timer armed for it', () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const d = new Deadlines();
      const log: string[] = [];
      for (let i = 0; i < 50; i++) {
        d.add(call(100, log, `a${i}`));
        vi.advanceTimersByTime(1);
      }
      d.add(call(300, log, 'other'));
      expect(vi.getTimerCount()).toBe(2);
      vi.advanceTimersToNextTimer(); // the first call's deadline: it expires now, not a timer later
      expect(log).toEqual(['a0']);
      vi.advanceTimersByTime(48);
      expect(log).toHaveLength(49);
      vi.advanceTimersByTime(1);
      expect(log).toHaveLength(50);
      expect(vi.getTimerCount()).toBe(1);
    });
  });
});
