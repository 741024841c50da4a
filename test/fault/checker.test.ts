// The checker must be able to fail: each rule is shown catching a hand-made history that breaks it, and
// passing the same history without the fault. (Its mutation score is in docs/guarantees.md.)
import { describe, expect, test } from 'vitest';
import { check, describe as describeCheck, holderVersions, keyVersions, type CheckResult, type ProcessExit } from './checker.js';
import { cleanRun, COUNTER, cycle, del, effect, L, line, messages, ms, opened, put, rules } from './checker-fixture.js';
import type { LogEvent } from './protocol.js';

describe('the history checker', () => {
  test('passes a clean handoff, with exact windows and counts', () => {
    const result = check(cleanRun());
    expect(result.violations).toEqual([]);
    expect(result.acquisitions.map((a) => [a.client, a.lease, a.key, a.token, a.start, a.end, a.endReason])).toEqual([
      ['a', 'a', `${L}a`, 2n, BigInt(ms(100)), BigInt(ms(200)), 'release'],
      ['b', 'b', `${L}b`, 3n, BigInt(ms(210)), BigInt(ms(300)), 'release'],
    ]);
    expect(result.acquisitions.map((a) => a.version?.createRevision)).toEqual([2n, 3n]);
    expect(result).toMatchObject({
      counter: 2,
      applied: 2,
      acknowledged: 2,
      ambiguousApplied: 0,
      fencedRejections: 0,
      maxConcurrent: 1,
      leaked: [],
      earlyRevocations: [],
      losses: [],
    });
  });

  test('ranks keys: a key is held from the deletion of the last one ahead of it', () => {
    const versions = keyVersions(cleanRun().history, (k) => k.startsWith(L), 1);
    expect(versions.map((v) => [v.key, v.lease, v.createRevision, v.heldFrom, v.deleteRevision])).toEqual([
      [`${L}a`, 'a', 2n, 2n, 5n],
      [`${L}b`, 'b', 3n, 5n, 7n],
    ]);
    const two = keyVersions(cleanRun().history, (k) => k.startsWith(L), 2);
    expect(two.map((v) => v.heldFrom)).toEqual([2n, 3n]);
    // Three keys, permits 2: c ranks second once a goes (at 5), although b is still there.
    const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), put(4, `${L}c`, 'c'), del(5, `${L}a`, 2, 'a'), del(9, `${L}b`, 3, 'b'), del(6, `${L}c`, 4, 'c')];
    expect(keyVersions(history, (k) => k.startsWith(L), 2).map((v) => v.heldFrom)).toEqual([2n, 3n, 5n]);
    // The history may arrive in any order: it is sorted by revision.
    expect(keyVersions([...history].reverse(), (k) => k.startsWith(L), 2).map((v) => [v.key, v.heldFrom])).toEqual([
      [`${L}a`, 2n],
      [`${L}b`, 3n],
      [`${L}c`, 5n],
    ]);
  });

  test('ranks keys: a key behind one that lives forever never ranks; nor one deleted before its turn; non-contenders are ignored', () => {
    const forever = keyVersions([put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(4, `${L}b`, 3, 'b')], (k) => k.startsWith(L), 1);
    expect(forever.map((v) => [v.key, v.heldFrom, v.deleteRevision])).toEqual([
      [`${L}a`, 2n, undefined],
      [`${L}b`, undefined, 4n],
    ]);
    // b deleted at 5, exactly when a goes: it never ranked.
    const tie = keyVersions([put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(5, `${L}a`, 2, 'a'), del(5, `${L}b`, 3, 'b')], (k) => k.startsWith(L), 1);
    expect(tie.map((v) => v.heldFrom)).toEqual([2n, undefined]);
    // An update of a live key (same create revision) is not a new version; a delete of an unknown key is ignored.
    const updated = keyVersions([put(2, `${L}a`, 'a'), put(3, `${L}a`, 'a', 2), del(4, `${L}x`, 1, 'x'), put(5, 'other', 'o')], (k) => k.startsWith(L), 1);
    expect(updated.map((v) => [v.key, v.createRevision, v.deleteRevision])).toEqual([[`${L}a`, 2n, undefined]]);
  });

  test('ranks keys: a key created anew without a recorded delete ends the old version there', () => {
    const versions = keyVersions([put(2, `${L}a`, 'a'), put(5, `${L}a`, 'a2', 5), del(6, `${L}a`, 5, 'a2')], (k) => k.startsWith(L), 1);
    expect(versions.map((v) => [v.lease, v.createRevision, v.deleteRevision, v.heldFrom])).toEqual([
      ['a', 2n, 5n, 2n],
      ['a2', 5n, 6n, 5n],
    ]);
  });

  test('holder versions (semaphore) are held from their creation, and only direct children count', () => {
    const H = `${L}holders/`;
    const versions = holderVersions([put(2, `${H}a`, 'a'), put(3, `${H}b/x`, 'b'), put(4, `${H}c`, 'c'), del(5, `${H}a`, 2, 'a')], H);
    expect(versions.map((v) => [v.key, v.heldFrom, v.deleteRevision])).toEqual([
      [`${H}a`, 2n, 5n],
      [`${H}c`, 4n, undefined],
    ]);
  });

  test('R3: overlapping validity windows', () => {
    const input = cleanRun();
    // b reports holding while a still does (a releases at 200, b starts at 150).
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 200, 1), ...cycle('b', 'b', 3, 150, 300, 2)];
    const result = check(input);
    expect(result.violations.filter((v) => v.rule === 'R3')).toEqual([
      { rule: 'R3', client: 'b', message: 'b token 3 started holding while 1 others held: a token 2 (until release, 50.0 ms later)' },
    ]);
    expect(result.maxConcurrent).toBe(2);
  });

  test('R3: windows that touch do not overlap (an end and a start at the same instant)', () => {
    const input = cleanRun();
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 210, 1), ...cycle('b', 'b', 3, 210, 300, 2)];
    const result = check(input);
    expect(result.violations).toEqual([]);
    expect(result.maxConcurrent).toBe(1);
  });

  test('R3: a window ends at the session deadline, not at a late release', () => {
    const input = cleanRun();
    // a's deadline passes at 150 (it was paused), b starts at 210: no overlap although a "releases" at 250.
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 250, 1, 150), ...cycle('b', 'b', 3, 210, 300, 2)];
    const ok = check(input);
    expect(ok.violations).toEqual([]);
    expect(ok.acquisitions[0]).toMatchObject({ endReason: 'deadline', end: BigInt(ms(150)) });
    // A deadline moved later (a keep-alive succeeded) keeps a's window open: overlap.
    input.logs.push(line('a', 140, 'info', 'deadline', { lease: 'a', deadline: ms(1000) }));
    const moved = check(input);
    expect(rules(moved)).toEqual(['R3']);
    expect(moved.acquisitions[0]).toMatchObject({ endReason: 'release', end: BigInt(ms(250)) });
    // A move logged just after the window ended (a kill at 160; within the 50 ms poll slack) still
    // counts; one later does not.
    input.logs.pop();
    input.logs.push(line('parent', 160, 'fault', 'kill', { target: 'a' }), line('a', 190, 'info', 'deadline', { lease: 'a', deadline: ms(1000) }));
    expect(check(input).acquisitions[0]).toMatchObject({ endReason: 'kill', end: BigInt(ms(160)) });
    expect(check({ ...input, deadlineSlackNs: 10_000_000n }).acquisitions[0]).toMatchObject({ endReason: 'deadline', end: BigInt(ms(150)) });
    // A move of another lease of the same client does not extend this window.
    input.logs.splice(-2, 2);
    input.logs.push(opened('a', 'a2', 130), line('a', 140, 'info', 'deadline', { lease: 'a2', deadline: ms(1000) }));
    expect(check(input).acquisitions[0]).toMatchObject({ endReason: 'deadline', end: BigInt(ms(150)) });
  });

  test('R3: a window ends when the parent kills the process, at a loss, a close or an exit', () => {
    const input = cleanRun();
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 400, 1).slice(0, 4), ...cycle('b', 'b', 3, 210, 300, 2)];
    expect(rules(check(input))).toEqual(['R3']);
    const ends: [LogEvent, string][] = [
      [line('parent', 205, 'fault', 'kill', { target: 'a' }), 'kill'],
      [line('a', 205, 'lost', 'session', { lease: 'a', deadline: ms(1900) }), 'lost'],
      [line('a', 205, 'invoke', 'close', { lease: 'a' }), 'close'],
      [line('a', 205, 'info', 'exit'), 'exit'],
    ];
    for (const [end, reason] of ends) {
      const result = check({ ...input, logs: [...input.logs, end] });
      expect(result.violations, reason).toEqual([]);
      expect(result.acquisitions[0], reason).toMatchObject({ endReason: reason, end: BigInt(ms(205)) });
    }
    // A kill of another client, a release of another token, a loss or a close of another lease end nothing.
    const others = [
      line('parent', 205, 'fault', 'kill', { target: 'b2' }),
      line('a', 205, 'invoke', 'release', { lease: 'a', token: '99' }),
      opened('a', 'z', 150),
      line('a', 205, 'lost', 'session', { lease: 'z', deadline: ms(1900) }),
      line('a', 206, 'invoke', 'close', { lease: 'z' }),
    ];
    expect(rules(check({ ...input, logs: [...input.logs, ...others] }))).toEqual(['R3']);
  });

  test('R3: an overlap caused by etcd revoking a lease before its (justified) deadline is marked as a server fault', () => {
    const input = cleanRun();
    // a holds until 1000 by its deadline, but etcd revoked its lease (key deleted at 5) and a learns at 300.
    input.logs = [
      opened('a', 'a', 10),
      opened('b', 'b', 20),
      ...cycle('a', 'a', 2, 100, 500, 1, 1000).slice(0, 4),
      line('a', 300, 'lost', 'session', { lease: 'a', deadline: ms(1000), cause: 'Error: etcd answered the keep-alive with TTL 0' }),
      ...cycle('b', 'b', 3, 210, 300, 2),
    ];
    const result = check(input);
    expect(result.earlyRevocations).toEqual([
      { client: 'a', lease: 'a', t: BigInt(ms(300)), aheadMs: 700, cause: 'Error: etcd answered the keep-alive with TTL 0' },
    ]);
    expect(result.acquisitions[0]?.revokedEarly).toBe(result.earlyRevocations[0]);
    expect(result.violations).toEqual([
      {
        rule: 'R3',
        client: 'b',
        message: 'b token 3 started holding while 1 others held: a token 2 (until lost, 90.0 ms later)',
        server: 'etcd revoked lease a of a 700 ms before its validity deadline (Error: etcd answered the keep-alive with TTL 0)',
      },
    ]);
    // The same overlap without a revocation reported by etcd is the library's fault.
    const noLoss = check({ ...input, logs: input.logs.filter((l) => l.ev !== 'lost') });
    expect(noLoss.violations.filter((v) => v.rule === 'R3' && !v.server)).toHaveLength(1);
    // A loss without a cause (the deadline ran out) or after the deadline is no early revocation either.
    const noCause = input.logs.map((l) => (l.ev === 'lost' ? { ...l, cause: undefined } : l));
    expect(check({ ...input, logs: noCause }).earlyRevocations).toEqual([]);
    const atDeadline = input.logs.map((l) => (l.ev === 'lost' ? { ...l, t: ms(1000) } : l));
    expect(check({ ...input, logs: atDeadline }).earlyRevocations).toEqual([]);
  });

  test('R3 and tokens: a holder granted first whose report arrives after its successor\'s, displaced by an early revocation, is a server fault', () => {
    // Seen in scenario 7 (etcd 3.4.23, a leader thawed after 4 s): a's key ranked first (rev 2), a's
    // linearizable read said so, then the thawed leader revoked a's lease (its key deleted at 5) and b,
    // first from 5, reported its grant 1 ms before a's report arrived. a let go at 130 (its fenced write
    // was refused) and learned of the loss at 150, 1660 ms before its deadline.
    const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(5, `${L}a`, 2, 'a'), effect(6, 1, 'b', 'b', 3), del(7, `${L}b`, 3, 'b')];
    const logs = [
      opened('a', 'a', 10),
      opened('b', 'b', 20),
      line('b', 100, 'ok', 'acquire', { lease: 'b', key: `${L}b`, token: '3', deadline: ms(1820) }),
      line('b', 102, 'invoke', 'effect', { id: 'b:3:1', lease: 'b', key: `${L}b`, token: '3' }),
      line('b', 104, 'ok', 'effect', { id: 'b:3:1', rev: '6' }),
      line('a', 101, 'ok', 'acquire', { lease: 'a', key: `${L}a`, token: '2', deadline: ms(1810) }),
      line('a', 130, 'invoke', 'release', { lease: 'a', key: `${L}a`, token: '2' }),
      line('a', 131, 'ok', 'release', { key: `${L}a`, token: '2' }),
      line('b', 140, 'invoke', 'release', { lease: 'b', key: `${L}b`, token: '3' }),
      line('b', 141, 'ok', 'release', { key: `${L}b`, token: '3' }),
      line('a', 150, 'lost', 'session', { lease: 'a', deadline: ms(1810), cause: 'NOT_FOUND' }),
    ];
    const server = 'etcd revoked lease a of a 1660 ms before its validity deadline (NOT_FOUND)';
    const result = check({ history, logs, lockPrefix: L, counterKey: COUNTER });
    const held = result.acquisitions.find((a) => a.client === 'a');
    expect(held?.endReason).toBe('release'); // not at the loss: its window ended when it let go
    expect(held?.revokedEarly).toBeUndefined();
    expect(result.violations).toEqual([
      { rule: 'R3', client: 'a', message: 'a token 2 started holding while 1 others held: b token 3 (until release, 39.0 ms later)', server },
      { rule: 'tokens', client: 'a', message: 'a got token 2 after b got 3', server },
    ]);
    // Without the early revocation it is the library's fault.
    const noLoss = check({ history, logs: logs.filter((l) => l.ev !== 'lost'), lockPrefix: L, counterKey: COUNTER });
    expect(noLoss.violations.map((v) => [v.rule, v.server])).toEqual([['R3', undefined], ['tokens', undefined]]);
    // A lease that wrote again after its key was deleted was not revoked by that delete.
    const alive = check({ history: [...history, put(8, 'elsewhere', 'a')], logs, lockPrefix: L, counterKey: COUNTER });
    expect(alive.violations.map((v) => [v.rule, v.server])).toEqual([['R3', undefined], ['tokens', undefined]]);
    // Permits 2: a and b hold, a's key goes at 5 (revoked early) and c, within the permits from 5, joins
    // while a still thinks it holds. b ranked before the delete, so the delete does not account for every
    // holder after a: the rule stays strict (every successor must have ranked only from the delete on).
    const three = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), put(4, `${L}c`, 'c'), del(5, `${L}a`, 2, 'a'), del(6, `${L}b`, 3, 'b'), del(7, `${L}c`, 4, 'c')];
    const hold = (c: string, token: number, from: number, to: number) => [
      opened(c, c, 10),
      line(c, from, 'ok', 'acquire', { lease: c, key: `${L}${c}`, token: String(token), deadline: ms(1810) }),
      line(c, to, 'invoke', 'release', { lease: c, key: `${L}${c}`, token: String(token) }),
    ];
    const semLogs = [...hold('a', 2, 100, 300), line('a', 350, 'lost', 'session', { lease: 'a', deadline: ms(1810), cause: 'NOT_FOUND' }), ...hold('b', 3, 110, 400), ...hold('c', 4, 200, 500)];
    const strict = check({ history: three, logs: semLogs, lockPrefix: L, counterKey: COUNTER, permits: 2 });
    expect(strict.violations.map((v) => [v.rule, v.server])).toEqual([['R3', undefined]]);
  });

  test('R3: a "revocation" while a deadline (E) cannot justify was ahead is the library\'s fault (a deadline of sent + 2 × TTL)', () => {
    const input = cleanRun();
    // a's deadline is 3800 ms ahead of the instant it was reported at 100: no keep-alive can justify
    // more than TTL − margin = 1800 ms. etcd expires the lease on time (at ~2100); a learns at 2300.
    input.history = [put(2, `${L}a`, 'a'), effect(4, 1, 'a', 'a', 2), del(5, `${L}a`, 2, 'a'), put(6, `${L}b`, 'b'), del(7, `${L}b`, 6, 'b')];
    input.logs = [
      opened('a', 'a', 10),
      opened('b', 'b', 2000),
      ...cycle('a', 'a', 2, 100, 5000, 1, 3900, 4).slice(0, 4),
      line('a', 2300, 'lost', 'session', { lease: 'a', deadline: ms(3900), cause: 'Error: etcd answered the keep-alive with TTL 0' }),
      line('b', 2200, 'ok', 'acquire', { lease: 'b', key: `${L}b`, token: '6', deadline: ms(3900) }),
      line('b', 2250, 'invoke', 'release', { lease: 'b', key: `${L}b`, token: '6' }),
    ];
    const result = check(input);
    expect(result.earlyRevocations).toEqual([]);
    expect(result.violations.map((v) => [v.rule, v.client, v.server])).toEqual([
      ['deadline', 'a', undefined],
      ['R3', 'b', undefined],
    ]);
    expect(messages(result, 'deadline')[0]).toBe(
      "a's session a reported a validity deadline 3800.0 ms after the instant it was observed, more than TTL − safetyMargin (1800 ms): no keep-alive sent before then can justify it",
    );
  });

  test('deadline (E): a deadline more than TTL − margin (+ 2 ms) ahead of its first observation is flagged, once per lease', () => {
    const base = { history: [], lockPrefix: L, counterKey: COUNTER };
    const atBound = [opened('a', 'a', 10), line('a', 100, 'info', 'deadline', { lease: 'a', deadline: String(BigInt(ms(1900)) + 2_000_000n) })];
    expect(check({ ...base, logs: atBound }).violations).toEqual([]);
    const beyond = [opened('a', 'a', 10), line('a', 100, 'info', 'deadline', { lease: 'a', deadline: String(BigInt(ms(1900)) + 2_000_001n) })];
    expect(rules(check({ ...base, logs: beyond }))).toEqual(['deadline']);
    expect(rules(check({ ...base, logs: beyond, deadlineToleranceNs: 3_000_000n }))).toEqual([]);
    // The session line itself is an observation; so is any line that carries a deadline.
    expect(rules(check({ ...base, logs: [opened('a', 'a', 10, 1900)] }))).toEqual(['deadline']);
    const inLoss = [opened('a', 'a', 10), line('a', 100, 'lost', 'session', { lease: 'a', deadline: ms(2000) })];
    expect(rules(check({ ...base, logs: inLoss }))).toContain('deadline');
    // Once per lease, however often it is repeated; each lease on its own.
    const repeated = [
      opened('a', 'a', 10, 3000),
      line('a', 20, 'info', 'deadline', { lease: 'a', deadline: ms(4000) }),
      opened('a', 'b', 30, 3000),
    ];
    expect(check({ ...base, logs: repeated }).violations.map((v) => [v.rule, v.client])).toEqual([
      ['deadline', 'a'],
      ['deadline', 'a'],
    ]);
    // Only the first observation of a value is judged: the same deadline seen later is no move.
    const later = [opened('a', 'a', 10), line('a', 1500, 'info', 'deadline', { lease: 'a', deadline: ms(1810) })];
    expect(check({ ...base, logs: later }).violations).toEqual([]);
    // The margin is the session's own: with margin 0 the same lead is fine.
    const noMargin = [{ ...opened('a', 'a', 10), margin: 0 }, line('a', 100, 'info', 'deadline', { lease: 'a', deadline: ms(2100) })];
    expect(check({ ...base, logs: noMargin }).violations).toEqual([]);
    // A fractional TTL − margin (ms) is honoured to the nanosecond.
    const fractional = (extraNs: bigint) => [
      { ...opened('a', 'a', 10, 1000), margin: 999.5 },
      line('a', 100, 'info', 'deadline', { lease: 'a', deadline: String(BigInt(ms(1100)) + extraNs) }),
    ];
    expect(check({ ...base, logs: fractional(500_000n), deadlineToleranceNs: 0n }).violations).toEqual([]);
    expect(check({ ...base, logs: fractional(500_001n), deadlineToleranceNs: 0n }).violations.map((v) => v.rule)).toEqual(['deadline']);
  });

  test('loss: a running client must report its loss by its last keep-alive evidence + TTL − margin (+ slack)', () => {
    const base = { history: [], lockPrefix: L, counterKey: COUNTER };
    // The deadline last moved (to 2900) at 1000: the last keep-alive was sent by 1000, so the lease is
    // certainly valid only until 2800 — whatever the deadline says.
    const logs = (lostAt: number, deadline = 2900) => [
      opened('a', 'a', 10),
      line('a', 500, 'info', 'deadline', { lease: 'a', deadline: ms(2200) }),
      line('a', 1000, 'info', 'deadline', { lease: 'a', deadline: ms(2700) }),
      line('a', 1200, 'ok', 'acquire', { lease: 'a', key: `${L}a`, token: '2', deadline: ms(2700) }),
      line('a', lostAt, 'lost', 'session', { lease: 'a', deadline: ms(deadline) }),
    ];
    const onTime = check({ ...base, logs: logs(2900, 2700), checkLeaks: false });
    expect(onTime.losses).toStrictEqual([
      { client: 'a', lease: 'a', t: BigInt(ms(2900)), evidence: BigInt(ms(1000)), due: BigInt(ms(2800)), lateMs: 100, paused: false },
    ]);
    expect(rules(onTime)).not.toContain('loss');
    expect(rules(check({ ...base, logs: logs(3800, 2700) }))).not.toContain('loss');
    const late = check({ ...base, logs: logs(3801, 2700) });
    expect(messages(late, 'loss')).toEqual(['a reported its session a lost 1001.0 ms after 1800.0 ms past its last keep-alive evidence (TTL − safetyMargin), more than 1000.0 ms late']);
    expect(rules(check({ ...base, logs: logs(3801, 2700), lossSlackNs: 2_000_000_000n }))).not.toContain('loss');
    // A deadline first seen in the loss line itself is its own evidence.
    expect(check({ ...base, logs: logs(2900, 4000) }).losses[0]).toMatchObject({ evidence: BigInt(ms(2900)), due: BigInt(ms(4700)) });
    // A client paused in between cannot run its timers: no verdict, but the loss is listed.
    const paused = [...logs(5000, 2700), line('parent', 1500, 'fault', 'pause', { target: 'a' }), line('parent', 4900, 'fault', 'resume', { target: 'a' })];
    const pausedResult = check({ ...base, logs: paused });
    expect(rules(pausedResult)).not.toContain('loss');
    expect(pausedResult.losses[0]).toMatchObject({ paused: true, lateMs: 2200 });
    // A pause of someone else, or one that ended before the evidence, changes nothing.
    for (const [target, from, to] of [['b', 1500, 4900], ['a', 100, 900]] as const) {
      const other = [...logs(5000, 2700), line('parent', from, 'fault', 'pause', { target }), line('parent', to, 'fault', 'resume', { target })];
      expect(rules(check({ ...base, logs: other })), `${target} ${from}`).toContain('loss');
    }
    // A pause never resumed lasts to the end; one that began after the loss does not count.
    expect(rules(check({ ...base, logs: [...logs(5000, 2700), line('parent', 1500, 'fault', 'pause', { target: 'a' })] }))).not.toContain('loss');
    expect(rules(check({ ...base, logs: [...logs(5000, 2700), line('parent', 5001, 'fault', 'pause', { target: 'a' })] }))).toContain('loss');
    // The cause, when etcd gave one, is kept.
    const withCause = logs(2000, 2700).map((l) => (l.ev === 'lost' ? { ...l, cause: 'TTL 0' } : l));
    expect(check({ ...base, logs: withCause }).losses[0]?.cause).toBe('TTL 0');
  });

  test('loss: without any deadline move the session line is the evidence', () => {
    const result = check({ history: [], lockPrefix: L, counterKey: COUNTER, logs: [opened('a', 'a', 10), line('a', 1500, 'lost', 'session', { lease: 'a' })] });
    expect(result.losses[0]).toMatchObject({ evidence: BigInt(ms(10)), due: BigInt(ms(1810)), lateMs: -310 });
    expect(result.violations).toEqual([]);
  });

  test('protocol: an acquisition logged without a deadline is flagged, and its window is unbounded', () => {
    // Two holders at once, neither with a deadline: no zero-length windows that hide the overlap.
    const input = cleanRun();
    input.logs = [
      opened('a', 'a', 10),
      opened('b', 'b', 20),
      ...cycle('a', 'a', 2, 100, 200, 1).slice(0, 4).map((l) => (l.op === 'acquire' ? { ...l, deadline: undefined } : l)),
      ...cycle('b', 'b', 3, 210, 300, 2).slice(0, 4).map((l) => (l.op === 'acquire' ? { ...l, deadline: undefined } : l)),
    ];
    const result = check(input);
    expect(result.violations.map((v) => [v.rule, v.client])).toEqual([
      ['protocol', 'a'],
      ['protocol', 'b'],
      ['R3', 'b'],
    ]);
    expect(messages(result, 'protocol')[0]).toBe('a logged its acquisition of lock/a (token 2) without a deadline: its window has no bound');
    expect(result.acquisitions.map((a) => [a.endReason, a.end])).toEqual([
      ['unbounded', BigInt(ms(212)) + 1n],
      ['unbounded', BigInt(ms(212)) + 1n],
    ]);
    // A deadline logged later still bounds it.
    input.logs.push(line('a', 150, 'info', 'deadline', { lease: 'a', deadline: ms(205) }));
    expect(check(input).acquisitions[0]).toMatchObject({ endReason: 'deadline', end: BigInt(ms(205)) });
  });

  test('protocol: lines of a lease without its session line, a bad session line, an acquisition or loss missing fields', () => {
    const base = { history: [], lockPrefix: L, counterKey: COUNTER, checkLeaks: false };
    const noSession = check({ ...base, logs: [line('a', 10, 'invoke', 'acquire', { lease: 'a' }), line('a', 11, 'invoke', 'acquire', { lease: 'a' })] });
    expect(noSession.violations).toEqual([{ rule: 'protocol', client: 'a', message: 'a logged lease a before or without its ok session line' }]);
    const before = check({ ...base, logs: [line('a', 5, 'invoke', 'acquire', { lease: 'a' }), opened('a', 'a', 10)] });
    expect(rules(before)).toEqual(['protocol']);
    for (const field of ['lease', 'deadline', 'ttl', 'margin'] as const) {
      const bad = check({ ...base, logs: [{ ...opened('a', 'a', 10), [field]: undefined }] });
      expect(messages(bad, 'protocol')[0], field).toBe('a logged an ok session line without its lease, deadline, ttl or margin');
    }
    expect(rules(check({ ...base, logs: [{ ...opened('a', 'a', 10), ttl: '2' as unknown as number }] }))).toContain('protocol');
    // The first session line of a lease counts; a repeated one is harmless.
    expect(check({ ...base, logs: [opened('a', 'a', 10), opened('a', 'a', 20)] }).violations).toEqual([]);
    // Another client's session line does not open my lease.
    expect(rules(check({ ...base, logs: [opened('b', 'a', 10), line('a', 11, 'invoke', 'acquire', { lease: 'a' })] }))).toEqual(['protocol']);
    for (const field of ['lease', 'key', 'token'] as const) {
      const acquire = line('a', 100, 'ok', 'acquire', { lease: 'a', key: `${L}a`, token: '2', deadline: ms(200), [field]: undefined });
      const result = check({ ...base, logs: [opened('a', 'a', 10), acquire] });
      expect(messages(result, 'protocol'), field).toEqual([expect.stringMatching(/^a logged an acquisition without its lease, key or token: \{/)]);
      expect(result.acquisitions).toEqual([]);
    }
    expect(check({ ...base, logs: [opened('a', 'a', 10), line('a', 100, 'lost', 'session')] }).violations).toEqual([
      { rule: 'protocol', client: 'a', message: 'a logged a loss without its lease' },
    ]);
    // The parent's lines need no session.
    expect(check({ ...base, logs: [line('parent', 5, 'fault', 'kill', { target: 'a', lease: 'x' })] }).violations).toEqual([]);
  });

  test('exit: a client that had to be reaped, or ended with a non-zero code or a signal it was not sent, fails the run', () => {
    const input = cleanRun();
    const exit = (over: Partial<ProcessExit>): ProcessExit => ({ client: 'a', code: 0, signal: null, killed: false, reaped: false, ...over });
    expect(check({ ...input, exits: [exit({}), exit({ client: 'b', code: null, signal: 'SIGKILL', killed: true })] }).violations).toEqual([]);
    expect(check({ ...input, exits: [exit({ code: null, signal: 'SIGKILL', reaped: true })] }).violations).toEqual([
      { rule: 'exit', client: 'a', message: 'a did not exit by itself at the end of the scenario and was SIGKILLed' },
    ]);
    expect(messages(check({ ...input, exits: [exit({ code: 1 })] }), 'exit')).toEqual(['a exited with code 1']);
    expect(messages(check({ ...input, exits: [exit({ code: null, signal: 'SIGSEGV' })] }), 'exit')).toEqual(['a exited with signal SIGSEGV']);
    // Reaped although killed before: still reaped.
    expect(rules(check({ ...input, exits: [exit({ code: null, killed: true, reaped: true })] }))).toEqual(['exit']);
  });

  test('R1: a waiter told it holds a key that expired before it ranked first (etcd issue 11456)', () => {
    const input = cleanRun();
    // b's key is deleted (lease expiry) at 4, before a releases at 5; b still reports acquiring at 210.
    input.history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(4, `${L}b`, 3, 'b'), del(5, `${L}a`, 2, 'a')];
    input.logs = [
      opened('a', 'a', 10),
      opened('b', 'b', 20),
      ...cycle('a', 'a', 2, 100, 200, 1).filter((l) => l.op !== 'effect'),
      line('b', 210, 'ok', 'acquire', { lease: 'b', key: `${L}b`, token: '3', deadline: ms(2000) }),
    ];
    const result = check({ ...input, checkLeaks: false });
    expect(result.violations).toEqual([
      { rule: 'R1', client: 'b', message: 'b reported holding lock/b@3, which never ranked within 1 (deleted at 4)' },
    ]);
  });

  test('R1: an acquisition reported after the lease was reported lost, or of a key never created', () => {
    const input = cleanRun();
    input.logs.push(line('b', 205, 'lost', 'session', { lease: 'b' }));
    input.logs.push(opened('c', 'c', 10), line('c', 400, 'ok', 'acquire', { lease: 'c', key: `${L}c`, token: '9', deadline: ms(500) }));
    const found = messages(check(input), 'R1');
    expect(found).toEqual([
      'b reported acquiring lock/b (token 3) after its lease b was reported lost',
      'c reported holding lock/c with token 9, but no such key was ever created',
    ]);
    // Lost exactly at the instant of the acquisition counts too; lost after does not.
    input.logs = input.logs.map((l) => (l.ev === 'lost' ? { ...l, t: ms(210) } : l));
    expect(messages(check(input), 'R1')[0]).toMatch(/after its lease b was reported lost/);
    input.logs = input.logs.map((l) => (l.ev === 'lost' ? { ...l, t: ms(211) } : l));
    expect(messages(check(input), 'R1')).toHaveLength(1);
  });

  test('R1: a key bound to another lease, or ranked first only after the client\'s next response', () => {
    const input = cleanRun();
    input.history = input.history.map((e) => (e.key === `${L}b` ? { ...e, lease: 'x' } : e));
    expect(messages(check(input), 'R1')).toEqual(["lock/b@3 is bound to lease x, not to b's lease b"]);
    // b reports holding and then sees revision 4 (its effect), but its key ranks first only from 5.
    const early = cleanRun();
    early.history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), effect(4, 1, 'b', 'b', 3), del(5, `${L}a`, 2, 'a'), del(7, `${L}b`, 3, 'b')];
    early.logs = [opened('b', 'b', 20), ...cycle('b', 'b', 3, 210, 300, 1, 2000, 4)];
    const result = check(early);
    expect(messages(result, 'R1')).toEqual(['b reported holding lock/b@3 before revision 4, but it ranked within 1 only from 5']);
    // At exactly its ranking revision it is fine.
    early.logs = [opened('b', 'b', 20), ...cycle('b', 'b', 3, 210, 300, 1, 2000, 5)];
    expect(messages(check(early), 'R1')).toEqual([]);
  });

  test('R2: an effect written while its key was not first, or after it was deleted', () => {
    const input = cleanRun();
    // b writes at 4 while a holds (b's key exists but ranks second): the createRevision guard alone
    // would let this through, the checker does not.
    input.history = [
      put(2, `${L}a`, 'a'),
      put(3, `${L}b`, 'b'),
      effect(4, 1, 'b', 'b', 3),
      del(5, `${L}a`, 2, 'a'),
      del(6, `${L}b`, 3, 'b'),
      effect(7, 2, 'b', 'b', 3, false),
      effect(8, 3, 'x', 'x', 9),
    ];
    input.logs = [];
    expect(messages(check(input), 'R2')).toEqual([
      'guarded effect b:3:1 of b was written at revision 4 although its key ranked within 1 only from 5',
      'unguarded effect b:3:2 of b was written at revision 7 although its key was deleted at 6',
      'guarded effect x:9:3 of x was written at revision 8 although its key was never created',
    ]);
    // A key that never ranked first.
    const never = cleanRun();
    never.history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(4, `${L}b`, 3, 'b'), effect(5, 1, 'b', 'b', 3), del(6, `${L}a`, 2, 'a')];
    never.logs = [];
    expect(messages(check(never), 'R2')).toEqual(['guarded effect b:3:1 of b was written at revision 5 although its key never ranked first']);
  });

  test('R2: fenced writes out of token order; an applied effect started before its acquisition was reported', () => {
    const input = cleanRun();
    input.history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(4, `${L}a`, 2, 'a'), effect(5, 1, 'b', 'b', 3), effect(6, 2, 'a', 'a', 2), del(7, `${L}b`, 3, 'b')];
    input.logs = [];
    expect(messages(check(input), 'R2')).toContain('effect a:2:2 with token 2 accepted after a write with token 3');
    // With permits 2 token order across holders is not required.
    expect(messages(check({ ...input, permits: 2 }), 'R2').filter((m) => m.includes('accepted after'))).toEqual([]);
    const started = cleanRun();
    started.logs = started.logs.map((l) => (l.c === 'b' && l.op === 'effect' && l.ev === 'invoke' ? { ...l, t: ms(205) } : l));
    expect(messages(check(started), 'R2')).toEqual(['b started effect b:3:2 before it reported holding token 3']);
  });

  test('counter: a lost update, a write out of token order, an effect acknowledged but never applied', () => {
    const input = cleanRun();
    input.history = [
      put(2, `${L}a`, 'a'),
      effect(3, 1, 'a', 'a', 2),
      del(4, `${L}a`, 2, 'a'),
      put(5, `${L}b`, 'b'),
      effect(6, 1, 'b', 'b', 5),
      del(7, `${L}b`, 5, 'b'),
    ];
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 200, 1), ...cycle('b', 'b', 5, 210, 300, 1), line('b', 305, 'ok', 'effect', { id: 'b:5:9' })];
    const result = check(input);
    expect(messages(result, 'counter')).toEqual([
      'lost update: b wrote 1 at revision 6 over 1 (effect b:5:1, guarded)',
      'the counter is 1 but 2 effects applied',
    ]);
    expect(messages(result, 'ack')).toEqual(['b was told effect b:5:9 applied, but it is not in the history']);
    expect(result.acknowledged).toBe(3);
  });

  test('counter: deleted, applied twice; ack: reported failed but applied; ambiguous and fenced outcomes are counted', () => {
    const input = cleanRun();
    input.history = [...input.history, { ...effect(8, 3, 'b', 'b', 3), value: JSON.stringify({ n: 3, id: 'b:3:2', c: 'b', lease: 'b', key: `${L}b`, token: '3', g: true }) }, del(9, COUNTER, 1, '0')];
    const result = check({ ...input, checkLeaks: false });
    expect(messages(result, 'counter')).toEqual(['effect b:3:2 applied twice', 'the counter was deleted at revision 9', 'the counter is 0 but 2 effects applied']);
    const outcomes = cleanRun();
    outcomes.logs = outcomes.logs.filter((l) => !(l.op === 'effect' && l.ev === 'ok'));
    outcomes.logs.push(
      line('a', 103, 'fail', 'effect', { id: 'a:2:1', err: 'timeout', ambiguous: true }),
      line('b', 213, 'fail', 'effect', { id: 'b:3:2', err: 'no', fenced: true }),
      line('b', 214, 'fail', 'effect', { id: 'b:3:7', err: 'guard', fenced: true }),
      line('b', 215, 'fail', 'effect', { id: 'b:3:8', err: 'timeout', ambiguous: true }),
    );
    const judged = check(outcomes);
    expect(judged.violations).toEqual([{ rule: 'ack', client: 'b', message: 'b was told effect b:3:2 failed (no), but it applied at revision 6' }]);
    expect(judged).toMatchObject({ acknowledged: 0, ambiguousApplied: 1, fencedRejections: 1 });
  });

  test('history: missing revisions, recorder errors and leftover keys are reported', () => {
    const input = cleanRun();
    input.history = input.history.slice(0, -1);
    input.gaps = [7n];
    const result = check({ ...input, historyErrors: ['watch cancelled: compacted'] });
    expect(result.violations).toStrictEqual([
      { rule: 'history', message: 'watch cancelled: compacted' },
      { rule: 'history', message: 'revisions missing from the history: 7' },
      { rule: 'leak', message: 'contender keys left at the end: lock/b@3' },
    ]);
    expect(result.leaked).toEqual(['lock/b@3']);
    expect(check({ ...input, checkLeaks: false }).violations.map((v) => v.rule)).toEqual(['history']);
    const many = check({ ...cleanRun(), gaps: Array.from({ length: 11 }, (_, i) => BigInt(i + 10)) });
    expect(messages(many, 'history')).toEqual(['revisions missing from the history: 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, …']);
    expect(check({ ...cleanRun(), gaps: [] }).violations).toEqual([]);
    const ten = check({ ...cleanRun(), gaps: Array.from({ length: 10 }, (_, i) => BigInt(i + 10)) });
    expect(messages(ten, 'history')).toEqual(['revisions missing from the history: 10, 11, 12, 13, 14, 15, 16, 17, 18, 19']);
  });

  test('tokens: a later holder with a smaller token, or one token reported twice', () => {
    const input = cleanRun();
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 3, 100, 200, 1), ...cycle('b', 'b', 2, 210, 300, 2)];
    expect(messages(check(input), 'tokens')).toEqual(['b got token 2 after a got 3']);
    const twice = cleanRun();
    twice.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 200, 1), line('b', 210, 'ok', 'acquire', { lease: 'b', key: `${L}a`, token: '2', deadline: ms(300) })];
    expect(messages(check({ ...twice, permits: 2 }), 'tokens')).toEqual(['token 2 reported by both a and b']);
    // The same token on another key (a semaphore's holders share no keys) is no duplicate.
    const otherKey = cleanRun();
    otherKey.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 200, 1), line('b', 210, 'ok', 'acquire', { lease: 'b', key: `${L}b`, token: '2', deadline: ms(300) })];
    expect(messages(check({ ...otherKey, permits: 2 }), 'tokens')).toEqual([]);
    // Equal tokens in a row are not increasing.
    expect(messages(check(twice), 'tokens')).toEqual(['token 2 reported by both a and b', 'b got token 2 after a got 2']);
  });

  test('permits: two overlapping holders are fine for a semaphore of 2, three are not', () => {
    const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), put(4, `${L}c`, 'c'), del(5, `${L}a`, 2, 'a'), del(6, `${L}b`, 3, 'b'), del(7, `${L}c`, 4, 'c')];
    const acquire = (c: string, token: number, from: number, to: number) => [
      opened(c, c, 10),
      line(c, from, 'ok', 'acquire', { lease: c, key: `${L}${c}`, token: String(token), deadline: ms(from + 1800) }),
      line(c, to, 'invoke', 'release', { lease: c, key: `${L}${c}`, token: String(token) }),
    ];
    const base = { history, lockPrefix: L, counterKey: COUNTER, permits: 2 };
    const two = check({ ...base, logs: [...acquire('a', 2, 100, 300), ...acquire('b', 3, 110, 400), ...acquire('c', 4, 310, 500)] });
    expect(two.violations).toEqual([]);
    expect(two.maxConcurrent).toBe(2);
    const three = check({ ...base, logs: [...acquire('a', 2, 100, 300), ...acquire('b', 3, 110, 400), ...acquire('c', 4, 200, 500)] });
    expect(three.violations.map((v) => [v.rule, v.client])).toEqual([['R3', 'c']]);
    expect(three.maxConcurrent).toBe(3);
  });

  test('permits: an overlap is a server fault only when every holder beyond the permits lost its lease early', () => {
    const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), put(4, `${L}c`, 'c'), del(5, `${L}a`, 2, 'a'), del(6, `${L}b`, 3, 'b'), del(7, `${L}c`, 4, 'c')];
    const holder = (c: string, token: number, from: number, to: number, revoked: boolean) => [
      opened(c, c, 10),
      line(c, from, 'ok', 'acquire', { lease: c, key: `${L}${c}`, token: String(token), deadline: ms(from + 1800) }),
      revoked
        ? line(c, to, 'lost', 'session', { lease: c, deadline: ms(from + 1800), cause: 'TTL 0' })
        : line(c, to, 'invoke', 'release', { lease: c, key: `${L}${c}`, token: String(token) }),
    ];
    const base = { history, lockPrefix: L, counterKey: COUNTER, permits: 2 };
    // c joins a and b: one of the two must go for c to fit; a's lease was revoked early: server fault.
    const oneRevoked = check({ ...base, logs: [...holder('a', 2, 100, 300, true), ...holder('b', 3, 110, 400, false), ...holder('c', 4, 200, 500, false)] });
    expect(oneRevoked.violations.map((v) => [v.rule, v.server])).toEqual([['R3', 'etcd revoked lease a of a 1600 ms before its validity deadline (TTL 0)']]);
    const none = check({ ...base, logs: [...holder('a', 2, 100, 300, false), ...holder('b', 3, 110, 400, false), ...holder('c', 4, 200, 500, false)] });
    expect(none.violations.map((v) => [v.rule, v.server])).toEqual([['R3', undefined]]);
    // With permits 1 and both earlier holders open, one early revocation does not explain two too many.
    const two = check({ ...base, permits: 1, history: history.slice(0, 3), checkLeaks: false, logs: [...holder('a', 2, 100, 300, true), ...holder('b', 3, 110, 400, false), ...holder('c', 4, 200, 500, false)] });
    expect(two.violations.filter((v) => v.rule === 'R3' && v.client === 'c').map((v) => v.server)).toEqual([undefined]);
  });

  test('holders mode (semaphore): more live holder keys than permits at one revision is flagged', () => {
    const H = `${L}holders/`;
    const rec = (w = 1) => JSON.stringify({ permits: 2, weight: w });
    const base = { lockPrefix: L, counterKey: COUNTER, permits: 2, holderPrefix: H, logs: [] };
    const ok = [put(2, `${H}a`, 'a', 2, rec()), put(3, `${H}b`, 'b', 3, rec()), del(4, `${H}a`, 2, 'a'), put(5, `${H}c`, 'c', 5, rec()), del(6, `${H}b`, 3, 'b'), del(7, `${H}c`, 5, 'c')];
    expect(check({ ...base, history: ok }).violations).toEqual([]);
    const over = [put(2, `${H}a`, 'a', 2, rec()), put(3, `${H}b`, 'b', 3, rec()), put(4, `${H}c`, 'c', 4, rec()), del(5, `${H}a`, 2, 'a'), del(6, `${H}b`, 3, 'b'), del(7, `${H}c`, 4, 'c')];
    expect(check({ ...base, history: over }).violations).toEqual([
      { rule: 'R3', message: `at revision 4 the holder keys hold 3 permits of 2: ${H}a, ${H}b, ${H}c` },
    ]);
    const heavy = [put(2, `${H}a`, 'a', 2, rec(2)), put(3, `${H}b`, 'b', 3, rec()), del(4, `${H}a`, 2, 'a'), del(5, `${H}b`, 3, 'b')];
    expect(check({ ...base, history: heavy }).violations.map((v) => v.rule)).toEqual(['R3']);
    // A value that is no permit record weighs 1; so does a record without a weight.
    const plain = [put(2, `${H}a`, 'a', 2, 'not json'), put(3, `${H}b`, 'b', 3, '{}'), put(4, `${H}c`, 'c', 4, '{}'), del(5, `${H}a`, 2, 'a'), del(6, `${H}b`, 3, 'b'), del(7, `${H}c`, 4, 'c')];
    expect(messages(check({ ...base, history: plain }), 'R3')).toEqual([expect.stringContaining('at revision 4 the holder keys hold 3 permits of 2')]);
    // Nested keys under the holders' prefix are not holders.
    const nested = [put(2, `${H}a`, 'a', 2, rec(2)), put(3, `${H}x/y`, 'x', 3, rec()), del(4, `${H}a`, 2, 'a'), del(5, `${H}x/y`, 3, 'x')];
    expect(check({ ...base, history: nested }).violations).toEqual([]);
    // At most five such revisions are reported.
    const flood = [put(2, `${H}a`, 'a', 2, rec(3)), ...Array.from({ length: 8 }, (_, i) => put(3 + i, `${H}a`, 'a', 2, rec(3))), del(11, `${H}a`, 2, 'a')];
    expect(check({ ...base, history: flood }).violations).toHaveLength(5);
    // A waiter key left behind is a leak too.
    expect(check({ ...base, history: [...ok, put(8, `${L}waiters/d`, 'd')] }).violations.map((v) => v.rule)).toEqual(['leak']);
  });

  test('describe: a one-line summary and the first 20 violations', () => {
    const clean = check(cleanRun());
    expect(describeCheck(clean)).toBe(
      'acquisitions 2, early revocations by etcd 0, losses 0, effects applied 2 (acknowledged 2, ambiguous-applied 0), counter 2, fenced rejections 0, max concurrent 1, wake-ups 1 (slowest 9 ms, b)',
    );
    const many: CheckResult = {
      ...clean,
      violations: [
        { rule: 'R3', message: 'first', server: 'etcd did it' },
        ...Array.from({ length: 21 }, (_, i) => ({ rule: 'R1' as const, message: `v${i}` })),
      ],
    };
    const text = describeCheck(many).split('\n');
    expect(text).toHaveLength(22);
    expect(text[1]).toBe('  R3: first [server fault: etcd did it]');
    expect(text[2]).toBe('  R1: v0');
    expect(text[21]).toBe('  … 2 more');
    expect(describeCheck({ ...clean, violations: many.violations.slice(0, 20) }).split('\n')).toHaveLength(21);
  });
});

describe('the history checker, at its edges', () => {
  const base = { lockPrefix: L, counterKey: COUNTER };

  test('inputs in any order: the history and the logs are sorted first', () => {
    const input = cleanRun();
    const shuffled = check({ ...input, history: [...input.history].reverse(), logs: [...input.logs].reverse() });
    expect(shuffled.violations).toEqual([]);
    expect(shuffled.acquisitions.map((a) => [a.client, a.endReason])).toEqual([
      ['a', 'release'],
      ['b', 'release'],
    ]);
    expect(shuffled.counter).toBe(2);
  });

  test('acquisitions are ordered by when they began, not by client', () => {
    // a's first line comes first, but b (key created first, token 2) acquires first.
    const result = check({
      ...base,
      history: [put(2, `${L}b`, 'b'), put(3, `${L}a`, 'a'), effect(4, 1, 'b', 'b', 2), del(5, `${L}b`, 2, 'b'), effect(6, 2, 'a', 'a', 3), del(7, `${L}a`, 3, 'a')],
      logs: [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('b', 'b', 2, 100, 200, 1, 1900, 4), ...cycle('a', 'a', 3, 210, 300, 2, 2010, 6)],
    });
    expect(result.violations).toEqual([]);
    expect(result.acquisitions.map((a) => a.client)).toEqual(['b', 'a']);
  });

  test('a key exactly equal to the prefix is no contender; a key created before the history ranks by its create revision', () => {
    expect(check({ ...base, history: [put(2, 'lock/', 'x'), del(3, 'lock/', 2, 'x')], logs: [] }).versions).toEqual([]);
    // b is created at 5; a, created at 1 (before the recorded history), is first updated at 6: a ranked
    // first all along, and b only once a went.
    const versions = keyVersions([put(5, `${L}b`, 'b'), put(6, `${L}a`, 'a', 1), del(7, `${L}a`, 1, 'a'), del(8, `${L}b`, 5, 'b')], (k) => k.startsWith(L), 1);
    expect(versions.map((v) => [v.key, v.heldFrom])).toEqual([
      [`${L}b`, 7n],
      [`${L}a`, 1n],
    ]);
  });

  test('a key waits for deletions in the order they happened, not the order of the keys ahead', () => {
    // a (2) and b (3) ahead of c (4); b leaves first (5, never having ranked), a last (6): c ranks
    // first only from 6.
    const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), put(4, `${L}c`, 'c'), del(5, `${L}b`, 3, 'b'), del(6, `${L}a`, 2, 'a'), del(9, `${L}c`, 4, 'c')];
    expect(keyVersions(history, (k) => k.startsWith(L), 1).map((v) => v.heldFrom)).toEqual([2n, undefined, 6n]);
    // With permits 2, c needs one of the two gone: the first deletion, 5.
    expect(keyVersions(history, (k) => k.startsWith(L), 2).map((v) => v.heldFrom)).toEqual([2n, 3n, 5n]);
    // A key deleted before c was even created does not hold c up.
    const stale = [put(2, `${L}a`, 'a'), del(3, `${L}a`, 2, 'a'), put(4, `${L}c`, 'c'), del(9, `${L}c`, 4, 'c')];
    expect(keyVersions(stale, (k) => k.startsWith(L), 1).map((v) => v.heldFrom)).toEqual([2n, 4n]);
  });

  test('R2: a write in the revision that creates its key counts as held; one in the revision that deletes it does not', () => {
    const same = check({ ...base, history: [put(2, `${L}a`, 'a'), effect(2, 1, 'a', 'a', 2), del(3, `${L}a`, 2, 'a')], logs: [] });
    expect(same.violations).toEqual([]);
    const atDelete = check({ ...base, history: [put(2, `${L}a`, 'a'), del(3, `${L}a`, 2, 'a'), effect(3, 1, 'a', 'a', 2)], logs: [] });
    expect(messages(atDelete, 'R2')).toEqual(['guarded effect a:2:1 of a was written at revision 3 although its key was deleted at 3']);
    // A lost update by an unguarded write says so.
    const unguarded = check({ ...base, history: [put(2, `${L}a`, 'a'), effect(3, 2, 'a', 'a', 2, false), del(4, `${L}a`, 2, 'a')], logs: [] });
    expect(messages(unguarded, 'counter')[0]).toBe('lost update: a wrote 2 at revision 3 over 0 (effect a:2:2, unguarded)');
  });

  test('R3 windows: a kill before the acquisition, a pause of the holder, or a later smaller deadline end nothing', () => {
    const input = cleanRun();
    // a holds 100 → 400 (no release logged until 400) while b acquires at 210.
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 400, 1), ...cycle('b', 'b', 3, 210, 300, 2)];
    const withLine = (...extra: LogEvent[]) => check({ ...input, logs: [...input.logs, ...extra] });
    expect(rules(withLine())).toEqual(['R3']);
    expect(rules(withLine(line('parent', 50, 'fault', 'kill', { target: 'a' })))).toEqual(['R3']);
    expect(rules(withLine(line('parent', 150, 'fault', 'pause', { target: 'a' })))).toEqual(['R3']);
    expect(rules(withLine(line('a', 150, 'info', 'deadline', { lease: 'a', deadline: ms(120) })))).toEqual(['R3']);
    // A client's own line that looks like a kill is no fault.
    expect(rules(withLine(line('b', 150, 'info', 'kill', { target: 'a' })))).toEqual(['R3']);
    // A release, then a later kill: the window ended at the release.
    const released = withLine(line('parent', 450, 'fault', 'kill', { target: 'a' }));
    expect(released.acquisitions[0]).toMatchObject({ endReason: 'release', end: BigInt(ms(400)) });
  });

  test('R3 windows: a deadline at the very instant of the release ends it as a release; one before the start opens no window', () => {
    const input = cleanRun();
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 200, 1, 200), ...cycle('b', 'b', 3, 210, 300, 2)];
    expect(check(input).acquisitions[0]).toMatchObject({ endReason: 'release', end: BigInt(ms(200)) });
    // Lost on arrival: its deadline is already past when it is reported. No window, so no overlap with b.
    input.logs = [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 300, 1, 90).slice(0, 4), ...cycle('b', 'b', 3, 150, 300, 2)];
    const result = check(input);
    expect(result.acquisitions[0]).toMatchObject({ endReason: 'deadline', start: BigInt(ms(100)), end: BigInt(ms(100)) });
    expect(rules(result)).toEqual([]);
    expect(result.maxConcurrent).toBe(1);
  });

  test('R3: the message names every other holder; an early revocation does not excuse a window that ended by release', () => {
    const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), put(4, `${L}c`, 'c'), del(5, `${L}a`, 2, 'a'), del(6, `${L}b`, 3, 'b'), del(7, `${L}c`, 4, 'c')];
    const hold = (c: string, token: number, from: number, to: number) => [
      opened(c, c, 10),
      line(c, from, 'ok', 'acquire', { lease: c, key: `${L}${c}`, token: String(token), deadline: ms(from + 1800) }),
      line(c, to, 'invoke', 'release', { lease: c, key: `${L}${c}`, token: String(token) }),
    ];
    const three = check({ ...base, history, permits: 2, logs: [...hold('a', 2, 100, 300), ...hold('b', 3, 110, 400), ...hold('c', 4, 200, 500)] });
    expect(messages(three, 'R3')).toEqual([
      'c token 4 started holding while 2 others held: a token 2 (until release, 100.0 ms later); b token 3 (until release, 200.0 ms later)',
    ]);
    // a released at 300 and was revoked early at 350: its window ended by the release, no excuse.
    const revokedLater = check({
      ...base,
      history,
      permits: 2,
      logs: [...hold('a', 2, 100, 300), line('a', 350, 'lost', 'session', { lease: 'a', deadline: ms(1900), cause: 'TTL 0' }), ...hold('b', 3, 110, 400), ...hold('c', 4, 200, 500)],
    });
    expect(revokedLater.earlyRevocations).toHaveLength(1);
    expect(revokedLater.acquisitions[0]?.revokedEarly).toBeUndefined();
    expect(revokedLater.violations.map((v) => [v.rule, v.server])).toEqual([['R3', undefined]]);
    // Both revoked: the message lists both.
    const both = check({
      ...base,
      history,
      permits: 1,
      checkLeaks: false,
      logs: [
        ...hold('a', 2, 100, 600),
        line('a', 250, 'lost', 'session', { lease: 'a', deadline: ms(1900), cause: 'TTL 0' }),
        ...hold('b', 3, 110, 600),
        line('b', 250, 'lost', 'session', { lease: 'b', deadline: ms(1910), cause: 'gone' }),
        ...hold('c', 4, 200, 500),
      ],
    });
    expect(both.violations.filter((v) => v.client === 'c').map((v) => v.server)).toEqual([
      'etcd revoked lease a of a 1650 ms before its validity deadline (TTL 0); etcd revoked lease b of b 1660 ms before its validity deadline (gone)',
    ]);
  });

  test('early revocation: at exactly the (E) bound it is excused; a loss without a deadline or with a cause that is no string is none', () => {
    const input = cleanRun();
    const lost = (deadline: string, extra: Partial<LogEvent> = {}) => [
      opened('a', 'a', 10),
      opened('b', 'b', 20),
      line('a', 99, 'info', 'deadline', { lease: 'a', deadline }),
      ...cycle('a', 'a', 2, 100, 500, 1, 1000).slice(0, 4),
      line('a', 300, 'lost', 'session', { lease: 'a', deadline, cause: 'TTL 0', ...extra }),
      ...cycle('b', 'b', 3, 210, 300, 2),
    ];
    const atBound = String(BigInt(ms(99 + 1800)) + 2_000_000n);
    expect(check({ ...input, logs: lost(atBound) }).earlyRevocations).toHaveLength(1);
    const beyond = String(BigInt(atBound) + 1n);
    expect(check({ ...input, logs: lost(beyond) }).earlyRevocations).toEqual([]);
    const noDeadline = check({ ...input, logs: lost(ms(1000)).map((l) => (l.ev === 'lost' ? { ...l, deadline: undefined } : l)) });
    expect(noDeadline.earlyRevocations).toEqual([]);
    expect(noDeadline.losses).toHaveLength(1);
    const numberCause = check({ ...input, logs: lost(ms(1000), { cause: 42 }) });
    expect(numberCause.earlyRevocations).toEqual([]);
    expect(numberCause.losses[0]).not.toHaveProperty('cause');
  });

  test('loss: observations after the loss are no evidence; a resume ends only the pause before it', () => {
    const logs = (...extra: LogEvent[]) => [
      opened('a', 'a', 10),
      line('a', 1000, 'info', 'deadline', { lease: 'a', deadline: ms(2800) }),
      line('a', 5000, 'lost', 'session', { lease: 'a', deadline: ms(2800) }),
      ...extra,
    ];
    const after = check({ ...base, history: [], logs: logs(line('a', 5100, 'info', 'deadline', { lease: 'a', deadline: ms(6800) })) });
    expect(after.losses[0]).toMatchObject({ evidence: BigInt(ms(1000)) });
    expect(rules(after)).toEqual(['loss']);
    // Paused at 100, resumed at 200, and a stray second resume at 6000: the pause ended at 200.
    const twice = logs(
      line('parent', 100, 'fault', 'pause', { target: 'a' }),
      line('parent', 200, 'fault', 'resume', { target: 'a' }),
      line('parent', 6000, 'fault', 'resume', { target: 'a' }),
    );
    expect(check({ ...base, history: [], logs: twice }).losses[0]?.paused).toBe(false);
    // A resume without a pause is ignored; another fault does not end a pause.
    const stray = logs(line('parent', 100, 'fault', 'resume', { target: 'a' }));
    expect(check({ ...base, history: [], logs: stray }).losses[0]?.paused).toBe(false);
    const other = logs(line('parent', 500, 'fault', 'pause', { target: 'a' }), line('parent', 600, 'fault', 'blackhole', { target: 'a' }));
    expect(check({ ...base, history: [], logs: other }).losses[0]?.paused).toBe(true);
    // The bounds are inclusive: a pause at the very instant of the loss, or a resume at that of the evidence.
    expect(check({ ...base, history: [], logs: logs(line('parent', 5000, 'fault', 'pause', { target: 'a' })) }).losses[0]?.paused).toBe(true);
    const resumedAtEvidence = logs(line('parent', 900, 'fault', 'pause', { target: 'a' }), line('parent', 1000, 'fault', 'resume', { target: 'a' }));
    expect(check({ ...base, history: [], logs: resumedAtEvidence }).losses[0]?.paused).toBe(true);
  });

  test('protocol: a loss of a lease never opened is flagged once; an effect line without its id is flagged', () => {
    const unknown = check({ ...base, history: [], logs: [line('a', 100, 'lost', 'session', { lease: 'z' })] });
    expect(unknown.violations).toStrictEqual([{ rule: 'protocol', client: 'a', message: 'a logged lease z before or without its ok session line' }]);
    expect(unknown.losses).toEqual([]);
    const noId = check({ ...base, history: [], logs: [line('a', 100, 'ok', 'effect', { rev: '3' })] });
    expect(noId.violations).toStrictEqual([{ rule: 'protocol', client: 'a', message: 'a logged an effect without its id' }]);
    expect(noId.acknowledged).toBe(0);
  });

  test('effects: only the fenced failures are counted as fenced; an unapplied effect may have started anywhere', () => {
    const input = cleanRun();
    input.logs.push(
      line('b', 301, 'fail', 'effect', { id: 'b:3:5', err: 'not held (checked before the effect)', skipped: true }),
      line('b', 302, 'fail', 'effect', { id: 'b:3:6', err: 'conflict: the counter changed while held' }),
      line('a', 50, 'invoke', 'effect', { id: 'a:2:9', lease: 'a', token: '2' }),
    );
    const result = check(input);
    expect(result.violations).toEqual([]);
    expect(result.fencedRejections).toBe(0);
  });

  test('leaks are listed with their create revisions, and the tokens check holds across more than two holders', () => {
    const leaked = check({ ...base, history: [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b')], logs: [] });
    expect(messages(leaked, 'leak')).toEqual(['contender keys left at the end: lock/a@2, lock/b@3']);
    // Tokens 2, 5, 4: the third is smaller than the largest so far.
    const order = cleanRun();
    order.logs = [
      opened('a', 'a', 10),
      opened('b', 'b', 20),
      opened('c', 'c', 30),
      ...cycle('a', 'a', 2, 100, 150, 1),
      ...cycle('b', 'b', 5, 160, 200, 2),
      ...cycle('c', 'c', 4, 210, 250, 3),
    ];
    expect(messages(check({ ...order, checkLeaks: false }), 'tokens')).toEqual(['c got token 4 after b got 5']);
  });
});
