// Limits a demanding user reaches: thousands of handles on one Session, a TTL as long as etcd allows,
// LeaderElector options that can never work, and a LeaderElector callback that returns at once.
import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { IPolicy } from 'cockatiel';
import { describe, expect, test } from 'vitest';
import { LeaderElector, Mutex, Session, type LockHandle } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { keysUnder, uniqueName } from '../helpers.js';

const fx = etcdForFile(5);

/** Collects the process warnings emitted while `fn` runs. */
async function warningsDuring(fn: () => Promise<void>): Promise<Error[]> {
  const seen: Error[] = [];
  const onWarning = (warning: Error): void => void seen.push(warning);
  process.on('warning', onWarning);
  try {
    await fn();
    await delay(50); // warnings are emitted on the next tick
  } finally {
    process.off('warning', onWarning);
  }
  return seen;
}

describe('limits', () => {
  test('10,000 handles on one Session: no MaxListenersExceededWarning, one listener on its signal', async () => {
    const session = await fx.session(30);
    const prefix = uniqueName('many');
    const handles: LockHandle[] = [];
    const warnings = await warningsDuring(async () => {
      for (let batch = 0; batch < 20; batch++) {
        const got = await Promise.all(
          Array.from({ length: 500 }, async (_, i) => new Mutex(session, `${prefix}/${batch * 500 + i}`).tryLock()),
        );
        for (const h of got) if (h) handles.push(h);
      }
    });
    expect(handles).toHaveLength(10_000);
    expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
    expect(getEventListeners(session.signal, 'abort').length).toBeLessThanOrEqual(1);
    expect(handles.every((h) => h.held)).toBe(true);
    // They all follow the session: closing it aborts every one.
    await session.close();
    expect(handles.every((h) => h.signal.aborted)).toBe(true);
    expect(await keysUnder(fx.admin, `${prefix}/`)).toEqual([]);
  }, 120_000);

  test('the longest TTL etcd grants works without timer overflow; a longer one is refused up front', async () => {
    const warnings = await warningsDuring(async () => {
      await using session = await Session.create(fx.etcd.client(), { ttl: 9_000_000_000 });
      expect(session.ttl).toBe(9_000_000_000);
      await delay(500);
      expect(session.alive).toBe(true);
      expect(session.deadline - performance.now()).toBeGreaterThan(8e12);
    });
    expect(warnings.map((w) => w.name)).not.toContain('TimeoutOverflowWarning');
    await expect(Session.create(fx.etcd.client(), { ttl: 9_000_000_001 })).rejects.toThrow(RangeError);
  });
});

describe('LeaderElector options and pacing', () => {
  test.each([
    [{ session: { requestTimeout: -1 } }, RangeError, /`requestTimeout`.*got `-1`/],
    [{ ttl: 3, session: { keepAliveInterval: 5000 } }, RangeError, /`keepAliveInterval` to be less than TTL − safetyMargin \(2700 ms\)/],
    [{ ttl: 1e12 }, RangeError, /`ttl` to be an integer from 1 to 9000000000/],
    [{ session: { ttl: 5 } }, TypeError, /Unknown option `ttl` of the `session` option of LeaderElector/],
    [{ stopTimout: 10 }, TypeError, /Unknown option `stopTimout` of LeaderElector.*did you mean `stopTimeout`\?/],
    [{ session: { retryPolicy: 'x' } }, TypeError, /`retryPolicy` to be a cockatiel policy/],
  ])('new LeaderElector(…, %o) throws at once', (options, type, message) => {
    const client = fx.etcd.client();
    expect(() => new LeaderElector(client, 'x', options as never)).toThrow(type);
    expect(() => new LeaderElector(client, 'x', options as never)).toThrow(message);
  });

  test('a programming error met while running ends run() with it instead of being retried', async () => {
    const bug = new TypeError('a bug in a custom retry policy');
    const policy: IPolicy = { execute: () => Promise.reject(bug) } as unknown as IPolicy;
    const elector = new LeaderElector(fx.etcd.client(), uniqueName('bug'), { session: { retryPolicy: policy } });
    let retries = 0;
    elector.on('retry', () => retries++);
    await expect(elector.run(() => undefined)).rejects.toBe(bug);
    expect(retries).toBe(0);
    await elector.stop(); // already stopped: resolves
  });

  test('a callback that returns at once does not re-campaign in a tight loop', async () => {
    const elector = new LeaderElector(fx.etcd.client(), uniqueName('quick'), { ttl: 5, recampaignDelay: 500 });
    let terms = 0;
    const running = elector.run(() => {
      terms++;
    });
    await delay(2200);
    await elector.stop();
    await running;
    // One term, then one every 500 ms at most: 5 in 2.2 s (it was hundreds before).
    expect(terms).toBeGreaterThanOrEqual(2);
    expect(terms).toBeLessThanOrEqual(5);
  });
});
