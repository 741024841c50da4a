// The checker's newer rules, each shown failing on a hand-made history and passing without the fault:
// liveness (L) of wake-ups after the delete that put a waiter first, deadlines judged against the
// round trip a delaying proxy forces, and windows that count a semaphore acquisition's weight.
import { describe, expect, test } from 'vitest';
import { check, type CheckInput } from './checker.js';
import { cleanRun, COUNTER, cycle, del, L, line, messages, ms, opened, put, rules } from './checker-fixture.js';
import { faultWindows, wakes } from './liveness.js';
import type { LogEvent } from './protocol.js';

const fault = (t: number, op: string, extra: Partial<LogEvent> = {}) => line('parent', t, 'fault', op, extra);

/** cleanRun with the recorder's receipt of a's delete (revision 5) at `deletedAt` ms, and without a's `ok release` line. */
function timed(deletedAt: number, bAcquires = 210): CheckInput & { logs: LogEvent[] } {
  const input = cleanRun();
  input.history = input.history.map((e) => (e.rev === 5n ? { ...e, at: BigInt(ms(deletedAt)) } : e));
  input.logs = [
    opened('a', 'a', 10),
    opened('b', 'b', 20),
    ...cycle('a', 'a', 2, 100, 200, 1).filter((l) => !(l.op === 'release' && l.ev === 'ok')),
    ...cycle('b', 'b', 3, bAcquires, bAcquires + 90, 2),
  ];
  return input;
}

describe('fault windows', () => {
  test('an opener lasts until the next closer of the same subject, or the end; other faults are instants', () => {
    const faults = [
      fault(10, 'pause', { target: 'a' }),
      fault(20, 'member-pause', { member: 'm1' }),
      fault(30, 'resume', { target: 'b' }),
      fault(40, 'kill', { target: 'c' }),
      fault(50, 'resume', { target: 'a' }),
      fault(60, 'member-resume', { member: 'm1' }),
      fault(70, 'starve'),
      fault(80, 'fed'),
      fault(90, 'blackhole', { target: 'p' }),
    ];
    const windows = faultWindows(faults, BigInt(ms(1000)));
    expect(windows.map((w) => [w.op, w.subject, Number(w.from) / 1e6, Number(w.to) / 1e6])).toEqual([
      ['pause', 'a', 10, 50],
      ['member-pause', 'm1', 20, 60],
      ['kill', 'c', 40, 40],
      ['starve', undefined, 70, 80],
      ['blackhole', 'p', 90, 1000],
    ]);
  });

  test('a closer before its opener closes nothing; a subject that is no string is none', () => {
    const faults = [fault(5, 'resume', { target: 'a' }), fault(10, 'pause', { target: 'a' }), fault(50, 'resume', { target: 'a' }), fault(60, 'pause', { target: 7 as never })];
    const windows = faultWindows(faults, BigInt(ms(1000)));
    expect(windows.map((w) => [w.op, w.subject, Number(w.from) / 1e6, Number(w.to) / 1e6])).toEqual([
      ['pause', 'a', 10, 50],
      ['pause', undefined, 60, 1000],
    ]);
  });
});

describe('L: wake-ups', () => {
  test('a wake-up within the bound of the delete passes, and is listed with its figures', () => {
    const result = check(timed(203));
    expect(result.violations).toEqual([]);
    expect(result.wakes).toMatchObject([{ client: 'b', key: `${L}b`, token: 3n, deleteRevision: 5n, deletedAt: BigInt(ms(203)), t: BigInt(ms(210)), waitedMs: 7 }]);
    expect(result.wakes[0]!.due).toBe(BigInt(ms(2203)));
    // Exactly at the bound passes; a nanosecond later does not.
    expect(check(timed(203, 2203)).violations).toEqual([]);
    const late = timed(203, 2203);
    late.history = late.history.map((e) => (e.rev === 5n ? { ...e, at: BigInt(ms(203)) - 1n } : e));
    expect(rules(check(late))).toEqual(['L']);
  });

  test('a late wake-up is an L violation with the figures; the bound is an option', () => {
    const result = check(timed(203, 2500));
    expect(result.violations).toEqual([
      {
        rule: 'L',
        client: 'b',
        message: 'b reported holding lock/b@3 2297.0 ms after the delete at revision 5 that put it first; due within 2000 ms (2000 ms)',
      },
    ]);
    expect(check({ ...timed(203, 2500), wakeBoundNs: 3_000_000_000n }).violations).toEqual([]);
  });

  test("the delete's time is the earlier of the recorder's receipt and the deleter's ok release", () => {
    // The recorder saw the delete late (at 3000); a's ok release at 201 says it happened by then.
    const input = timed(3000, 2500);
    input.logs.push(line('a', 201, 'ok', 'release', { key: `${L}a`, token: '2' }));
    expect(check(input).wakes[0]?.deletedAt).toBe(BigInt(ms(201)));
    expect(rules(check(input))).toEqual(['L']);
    // An ok release of another key version says nothing about this delete.
    const other = timed(3000, 2500);
    other.logs.push(line('a', 201, 'ok', 'release', { key: `${L}a`, token: '9' }), line('a', 202, 'ok', 'release', { key: `${L}z`, token: '2' }));
    expect(check(other).wakes[0]?.deletedAt).toBe(BigInt(ms(3000)));
    // Of two ok release lines of the same version, the first counts.
    const twice = timed(3000, 2500);
    twice.logs.push(line('a', 260, 'ok', 'release', { key: `${L}a`, token: '2' }), line('a', 250, 'ok', 'release', { key: `${L}a`, token: '2' }));
    expect(check(twice).wakes[0]?.deletedAt).toBe(BigInt(ms(250)));
    // Without either, nothing is known: no wake-up is judged.
    const unknown = cleanRun();
    unknown.logs = unknown.logs.filter((l) => !(l.op === 'release' && l.ev === 'ok'));
    expect(check(unknown).wakes).toEqual([]);
  });

  test('an acquisition that did not wait is no wake-up, though the recorder stamped its creation', () => {
    const stamped = timed(203);
    stamped.history = stamped.history.map((e) => (e.at === undefined ? { ...e, at: BigInt(ms(Number(e.rev))) } : e));
    const result = check(stamped);
    expect(result.wakes.map((w) => w.client)).toEqual(['b']);
    // permits 2: b ranked within them from its creation.
    expect(check({ ...stamped, permits: 2, checkLeaks: false }).wakes).toEqual([]);
  });

  test('a fault window that overlaps the wait extends the bound to its end (plus the recovery); one that ended before does not', () => {
    const windowed = (from: number, to: number) => {
      const input = timed(203, 2500);
      input.logs.push(fault(from, 'member-pause', { member: 'm1' }), fault(to, 'member-resume', { member: 'm1' }));
      return input;
    };
    const over = check(windowed(100, 1000));
    expect(over.violations).toEqual([]);
    expect(over.wakes[0]?.due).toBe(BigInt(ms(3000)));
    expect(over.wakes[0]?.windows.map((w) => w.op)).toEqual(['member-pause']);
    // A window that ends before the delete, or starts after the due instant, changes nothing.
    expect(rules(check(windowed(10, 202)))).toEqual(['L']);
    expect(rules(check(windowed(2204, 2400)))).toEqual(['L']);
    // ...unless its recovery reaches the delete.
    expect(check({ ...windowed(10, 190), faultRecoveryNs: 400_000_000n }).violations).toEqual([]);
    expect(check({ ...windowed(10, 190), faultRecoveryNs: 400_000_000n }).wakes[0]?.due).toBe(BigInt(ms(2590)));
    expect(rules(check({ ...windowed(10, 190), faultRecoveryNs: 12_999_999n }))).toEqual(['L']);
    // An instantaneous fault during the wait restarts the clock; windows chain.
    const instant = timed(203, 2500);
    instant.logs.push(fault(1000, 'reset', { target: 'b' }));
    expect(check(instant).wakes[0]?.due).toBe(BigInt(ms(3000)));
    const chained = timed(203, 4500);
    chained.logs.push(fault(2000, 'pause', { target: 'x' }), fault(2100, 'resume', { target: 'x' }), fault(4000, 'reset'));
    expect(check(chained).violations).toEqual([]);
    expect(check(chained).wakes[0]?.due).toBe(BigInt(ms(6000)));
    // The message names the windows.
    const lateAnyway = timed(203, 9000);
    lateAnyway.logs.push(fault(1000, 'pause', { target: 'x' }), fault(1100, 'resume', { target: 'x' }));
    expect(messages(check(lateAnyway), 'L')).toEqual([
      'b reported holding lock/b@3 8797.0 ms after the delete at revision 5 that put it first; due within 2897 ms (2000 ms, extended past pause x)',
    ]);
    lateAnyway.logs.push(fault(1200, 'reset', { target: 'b' }));
    expect(messages(check(lateAnyway), 'L')[0]).toMatch(/extended past pause x, reset b\)$/);
  });

  test('the earliest evidence of the delete counts, in whatever order it comes', () => {
    // The recorder saw it at 100, a's ok release says 300: 100.
    const input = timed(100, 250);
    input.logs.push(line('a', 300, 'ok', 'release', { key: `${L}a`, token: '2' }));
    expect(check(input).wakes[0]?.deletedAt).toBe(BigInt(ms(100)));
    // Another event of the same revision without a stamp does not hide the stamp.
    const twoEvents = timed(100, 250);
    twoEvents.history = [...twoEvents.history, { ...put(5, `${L}x`, 'x'), at: undefined }];
    expect(check({ ...twoEvents, checkLeaks: false }).wakes[0]?.deletedAt).toBe(BigInt(ms(100)));
  });

  test('the bound only grows: a later, shorter window does not pull the due instant back', () => {
    const input = timed(203, 3000);
    input.logs.push(fault(1000, 'pause', { target: 'x' }), fault(1100, 'resume', { target: 'x' }), fault(1050, 'reset'));
    const result = check(input);
    expect(result.wakes[0]?.due).toBe(BigInt(ms(3100)));
    expect(result.violations).toEqual([]);
  });

  test('a window that ended exactly at the delete is named; one that ended before it is not; one without a subject by its op', () => {
    const at = (end: number) => {
      const input = timed(203, 9000);
      input.logs.push(fault(100, 'starve'), fault(end, 'fed'));
      return messages(check(input), 'L')[0];
    };
    expect(at(203)).toMatch(/\(2000 ms, extended past starve\)$/);
    expect(at(202)).toMatch(/\(2000 ms\)$/);
  });

  test('wakes() on its own: several waiters, each measured from its own delete', () => {
    const history = [
      put(2, `${L}a`, 'a'),
      put(3, `${L}b`, 'b'),
      put(4, `${L}c`, 'c'),
      { ...del(5, `${L}a`, 2, 'a'), at: BigInt(ms(100)) },
      { ...del(6, `${L}b`, 3, 'b'), at: BigInt(ms(300)) },
      del(7, `${L}c`, 4, 'c'),
    ];
    const base = check({ history, logs: [], lockPrefix: L, counterKey: COUNTER });
    const acq = (client: string, key: string, token: bigint, t: number) => ({
      client,
      lease: client,
      key,
      token,
      weight: 1,
      start: BigInt(ms(t)),
      end: BigInt(ms(t + 10)),
      endReason: 'release' as const,
      version: base.versions.find((v) => v.key === key),
    });
    const result = wakes({
      acquisitions: [acq('b', `${L}b`, 3n, 150), acq('c', `${L}c`, 4n, 2400)],
      history,
      logs: [],
      windows: [],
      boundNs: 2_000_000_000n,
      recoveryNs: 0n,
    });
    expect(result.wakes.map((w) => [w.client, w.deleteRevision, w.waitedMs])).toEqual([
      ['b', 5n, 50],
      ['c', 6n, 2100],
    ]);
    expect(result.late.map((w) => w.client)).toEqual(['c']);
    // Logs in any order: the first ok release of a version is the evidence.
    const released = wakes({
      acquisitions: [acq('b', `${L}b`, 3n, 150)],
      history: history.map((e) => ({ ...e, at: undefined })),
      logs: [line('a', 90, 'ok', 'release', { key: `${L}a`, token: '2' }), line('a', 80, 'ok', 'release', { key: `${L}a`, token: '2' })],
      windows: [],
      boundNs: 2_000_000_000n,
      recoveryNs: 0n,
    });
    expect(released.wakes[0]?.deletedAt).toBe(BigInt(ms(80)));
    // Windows in any order: one that overlaps only once another has extended the bound still counts.
    const windows = faultWindows([fault(2200, 'reset'), fault(2400, 'reset')], BigInt(ms(10_000))).reverse();
    const chained = wakes({ acquisitions: [acq('c', `${L}c`, 4n, 5000)], history, logs: [], windows, boundNs: 2_000_000_000n, recoveryNs: 0n });
    expect(chained.wakes[0]?.due).toBe(BigInt(ms(4400)));
    // An acquisition of a key that was never created is no wake-up.
    expect(wakes({ acquisitions: [{ ...acq('z', `${L}z`, 9n, 100), version: undefined }], history, logs: [], windows: [], boundNs: 1n, recoveryNs: 0n }).wakes).toEqual([]);
  });
});

describe('deadline under a delaying proxy', () => {
  /** a's session; a deadline observed at `t`, `ahead` ms later; a delay of `rtt` ms on a from 1000 to 5000. */
  const run = (t: number, ahead: number, delay: Partial<LogEvent> = { target: 'a', rtt: 400 }) => ({
    history: [],
    lockPrefix: L,
    counterKey: COUNTER,
    logs: [
      opened('a', 'a', 10),
      fault(1000, 'delay', delay),
      line('a', t, 'info', 'deadline', { lease: 'a', deadline: ms(t + ahead) }),
      fault(5000, 'undelay', { target: delay['target'] }),
    ],
  });

  test('inside the window a deadline may lead its observation by TTL − margin − the forced round trip only', () => {
    expect(check(run(2000, 1400)).violations).toEqual([]);
    const result = check(run(2000, 1500));
    expect(messages(result, 'deadline')).toEqual([
      "a's session a reported a validity deadline 1500.0 ms after the instant it was observed, while every round trip took at least 400.0 ms (a delay of the proxy), more than TTL − safetyMargin − that round trip (1400 ms): no keep-alive sent before then can justify it",
    ]);
    // 2 ms of tolerance, as for (E).
    expect(check({ ...run(2000, 1402) }).violations).toEqual([]);
  });

  test('the rule holds from `rtt` after the delay began until it ended, for its target only', () => {
    // Before the first delayed answer could have arrived, and after the end, only (E) applies.
    expect(check(run(1399, 1800)).violations).toEqual([]);
    expect(rules(check(run(1400, 1800)))).toEqual(['deadline']);
    expect(rules(check(run(5000, 1800)))).toEqual(['deadline']);
    expect(check(run(5001, 1800)).violations).toEqual([]);
    // Another client's delay, or a delay line without its round trip, changes nothing.
    expect(check(run(2000, 1800, { target: 'b', rtt: 400 })).violations).toEqual([]);
    expect(check(run(2000, 1800, { target: 'a' })).violations).toEqual([]);
    // Of two overlapping delays the larger round trip counts.
    const both = run(2000, 1500);
    both.logs.push(fault(1100, 'delay', { target: 'a', rtt: 100 }));
    expect(rules(check(both))).toEqual(['deadline']);
  });
});

describe('weights: a window counts the permits it holds', () => {
  const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(5, `${L}a`, 2, 'a'), del(6, `${L}b`, 3, 'b')];
  const holder = (c: string, token: number, from: number, to: number, weight?: number, revoked = false) => [
    opened(c, c, 10),
    line(c, from, 'ok', 'acquire', { lease: c, key: `${L}${c}`, token: String(token), deadline: ms(from + 1800), ...(weight === undefined ? {} : { weight }) }),
    revoked
      ? line(c, to, 'lost', 'session', { lease: c, deadline: ms(from + 1800), cause: 'TTL 0' })
      : line(c, to, 'invoke', 'release', { lease: c, key: `${L}${c}`, token: String(token) }),
  ];
  const base = { history, lockPrefix: L, counterKey: COUNTER, permits: 3 };

  test('two holders weighing 2 each overlap beyond 3 permits; 1 and 2 do not', () => {
    const fits = check({ ...base, logs: [...holder('a', 2, 100, 300, 1), ...holder('b', 3, 110, 400, 2)] });
    expect(fits.violations).toEqual([]);
    expect(fits.maxConcurrent).toBe(3);
    expect(fits.acquisitions.map((a) => a.weight)).toEqual([1, 2]);
    const over = check({ ...base, logs: [...holder('a', 2, 100, 300, 2), ...holder('b', 3, 110, 400, 2)] });
    expect(over.violations).toEqual([
      { rule: 'R3', client: 'b', message: 'b token 3 weight 2 started holding while 1 others held: a token 2 weight 2 (until release, 190.0 ms later)' },
    ]);
    expect(over.maxConcurrent).toBe(4);
    // Without a weight on the line, a window weighs 1.
    expect(check({ ...base, logs: [...holder('a', 2, 100, 300), ...holder('b', 3, 110, 400, 2)] }).maxConcurrent).toBe(3);
  });

  test('a server fault needs the early revocation of as many of the first holders as it takes to fit', () => {
    // a (weight 2, revoked early) and b (weight 2): removing a brings the weight to 2 <= 3.
    const one = check({ ...base, logs: [...holder('a', 2, 100, 300, 2, true), ...holder('b', 3, 110, 400, 2)] });
    expect(one.violations.map((v) => [v.rule, v.server])).toEqual([['R3', 'etcd revoked lease a of a 1600 ms before its validity deadline (TTL 0)']]);
    // With permits 1, a weighs 1 and b 2: removing a is not enough (2 > 1).
    const two = check({ ...base, permits: 1, logs: [...holder('a', 2, 100, 300, 1, true), ...holder('b', 3, 110, 400, 2)] });
    expect(two.violations.filter((v) => v.rule === 'R3').map((v) => v.server)).toEqual([undefined]);
  });
});
