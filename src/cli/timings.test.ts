import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { timings as sessionTimings } from '../engine/session-options.js';
import { UsageError } from './exit-codes.js';
import { defaultKillGrace, maxDefaultKillGrace, runTimings } from './timings.js';

describe('defaultKillGrace', () => {
  test('a third of the TTL, at most 10 s', () => {
    expect(maxDefaultKillGrace).toBe(10_000);
    expect(defaultKillGrace(1)).toBe(333);
    expect(defaultKillGrace(2)).toBe(666);
    expect(defaultKillGrace(10)).toBe(3333);
    expect(defaultKillGrace(29)).toBe(9666);
    expect(defaultKillGrace(30)).toBe(10_000);
    expect(defaultKillGrace(31)).toBe(10_000);
    expect(defaultKillGrace(3600)).toBe(10_000);
  });
});

describe('runTimings', () => {
  test('the defaults for --ttl 10: kill-grace 3333 ms, lease given up 4333 ms early, keep-alive every 1889 ms', () => {
    expect(runTimings(10, undefined)).toEqual({ killGrace: 3333, safetyMargin: 4333, keepAliveInterval: 1889 });
    expect(runTimings(4, 0)).toEqual({ killGrace: 0, safetyMargin: 400, keepAliveInterval: 1200 });
    expect(runTimings(60, 30_000)).toEqual({ killGrace: 30_000, safetyMargin: 36_000, keepAliveInterval: 8000 });
  });

  test('a kill-grace up to half the TTL fits; more is refused, naming both and the limit', () => {
    expect(runTimings(10, 5000).killGrace).toBe(5000);
    expect(() => runTimings(10, 5001)).toThrow(
      new UsageError('--kill-grace 5001ms does not fit in --ttl 10: the command must be gone before its lease can expire, so --kill-grace may be at most half the TTL (5s); raise --ttl or shorten --kill-grace'),
    );
    expect(runTimings(3, 1500).killGrace).toBe(1500);
    expect(() => runTimings(3, 1501)).toThrow('--kill-grace 1501ms does not fit in --ttl 3');
    expect(() => runTimings(3, 1501)).toThrow('at most half the TTL (1500ms)');
    expect(() => runTimings(10, 10_000)).toThrow('--kill-grace 10s does not fit in --ttl 10');
  });

  test('for every TTL and fitting kill-grace: the Session accepts the timings, and SIGKILL goes out a tenth of the TTL before the lease can expire', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (ttl, grace) => {
        const ttlMs = ttl * 1000;
        if (grace > ttlMs / 2) {
          expect(() => runTimings(ttl, grace)).toThrow(UsageError);
          return;
        }
        const t = runTimings(ttl, grace);
        expect(t.killGrace).toBe(grace);
        expect(() => sessionTimings(ttl, t)).not.toThrow();
        expect(t.keepAliveInterval).toBeGreaterThan(0);
        // Validity ends at sendTime + TTL − safetyMargin; SIGKILL kill-grace later:
        expect(ttlMs - t.safetyMargin + t.killGrace).toBe(ttlMs - ttl * 100);
        // Three keep-alives fit in the validity.
        expect(3 * t.keepAliveInterval).toBeLessThanOrEqual(ttlMs - t.safetyMargin);
        expect(3 * t.keepAliveInterval).toBeGreaterThan(ttlMs - t.safetyMargin - 3);
      }),
    );
  });
});
