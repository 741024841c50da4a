// The checker must be able to fail: each rule is shown catching a hand-made history that breaks it.
import { describe, expect, test } from 'vitest';
import { check, keyVersions, type CheckInput } from './checker.js';
import type { HistoryEvent } from './history.js';
import type { LogEvent } from './protocol.js';

const L = 'lock/';
const COUNTER = 'counter';
const ms = (n: number) => String(BigInt(n) * 1_000_000n);

const put = (rev: number, key: string, lease: string, createRevision = rev, value = ''): HistoryEvent => ({
  rev: BigInt(rev),
  type: 'put',
  key,
  createRevision: BigInt(createRevision),
  lease,
  value,
});
const del = (rev: number, key: string, createRevision: number, lease: string): HistoryEvent => ({
  rev: BigInt(rev),
  type: 'delete',
  key,
  createRevision: BigInt(createRevision),
  lease,
  value: '',
});
const effect = (rev: number, n: number, c: string, lease: string, token: number, g = true): HistoryEvent =>
  put(rev, COUNTER, '0', 1, JSON.stringify({ n, id: `${c}:${token}:${n}`, c, lease, key: `${L}${lease}`, token: String(token), g }));

const line = (c: string, t: number, ev: LogEvent['ev'], op: string, extra: Partial<LogEvent> = {}): LogEvent => ({
  c,
  t: ms(t),
  ev,
  op,
  ...extra,
});

/** Client `c` with lease `lease` holds token `token` from `from` to `to` ms, with one effect. */
function cycle(c: string, lease: string, token: number, from: number, to: number, n: number, deadline = from + 1800, effectRev = 2 * n + 2): LogEvent[] {
  const key = `${L}${lease}`;
  const id = `${c}:${token}:${n}`;
  return [
    line(c, from - 1, 'invoke', 'acquire', { lease }),
    line(c, from, 'ok', 'acquire', { lease, key, token: String(token), deadline: ms(deadline) }),
    line(c, from + 1, 'invoke', 'effect', { id, lease, key, token: String(token) }),
    line(c, from + 2, 'ok', 'effect', { id, rev: String(effectRev) }),
    line(c, to, 'invoke', 'release', { lease, key, token: String(token) }),
    line(c, to + 1, 'ok', 'release', { key, token: String(token) }),
  ];
}

/** a holds (rev 2–4), b queued at 3 takes over when a's key goes at 5. */
function cleanRun(): CheckInput & { logs: LogEvent[] } {
  return {
    history: [
      put(2, `${L}a`, 'a'),
      put(3, `${L}b`, 'b'),
      effect(4, 1, 'a', 'a', 2),
      del(5, `${L}a`, 2, 'a'),
      effect(6, 2, 'b', 'b', 3),
      del(7, `${L}b`, 3, 'b'),
    ],
    logs: [...cycle('a', 'a', 2, 100, 200, 1), ...cycle('b', 'b', 3, 210, 300, 2)],
    lockPrefix: L,
    counterKey: COUNTER,
  };
}

describe('the history checker', () => {
  test('passes a clean handoff', () => {
    const result = check(cleanRun());
    expect(result.violations).toEqual([]);
    expect(result.acquisitions.map((a) => [a.client, a.endReason])).toEqual([
      ['a', 'release'],
      ['b', 'release'],
    ]);
    expect(result.counter).toBe(2);
    expect(result.acknowledged).toBe(2);
    expect(result.maxConcurrent).toBe(1);
  });

  test('ranks keys: a key is held from the deletion of the last one ahead of it', () => {
    const versions = keyVersions(cleanRun().history, (k) => k.startsWith(L), 1);
    expect(versions.map((v) => [v.key, v.heldFrom, v.deleteRevision])).toEqual([
      [`${L}a`, 2n, 5n],
      [`${L}b`, 5n, 7n],
    ]);
    const two = keyVersions(cleanRun().history, (k) => k.startsWith(L), 2);
    expect(two.map((v) => v.heldFrom)).toEqual([2n, 3n]);
  });

  test('R3: overlapping validity windows', () => {
    const input = cleanRun();
    // b reports holding while a still does (a releases at 200, b starts at 150).
    input.logs = [...cycle('a', 'a', 2, 100, 200, 1), ...cycle('b', 'b', 3, 150, 300, 2)];
    const result = check(input);
    expect(result.violations.map((v) => v.rule)).toContain('R3');
    expect(result.maxConcurrent).toBe(2);
  });

  test('R3: a window ends at the session deadline, not at a late release', () => {
    const input = cleanRun();
    // a's deadline passes at 150 (it was paused), b starts at 210: no overlap although a "releases" at 250.
    input.logs = [...cycle('a', 'a', 2, 100, 250, 1, 150), ...cycle('b', 'b', 3, 210, 300, 2)];
    const ok = check(input);
    expect(ok.violations).toEqual([]);
    expect(ok.acquisitions[0]?.endReason).toBe('deadline');
    // A deadline moved later (a keep-alive succeeded) keeps a's window open: overlap.
    input.logs.push(line('a', 140, 'info', 'deadline', { lease: 'a', deadline: ms(1000) }));
    expect(check(input).violations.map((v) => v.rule)).toContain('R3');
  });

  test('R3: a window ends when the parent kills the process', () => {
    const input = cleanRun();
    input.logs = [...cycle('a', 'a', 2, 100, 400, 1).slice(0, 4), ...cycle('b', 'b', 3, 210, 300, 2)];
    expect(check(input).violations.map((v) => v.rule)).toContain('R3');
    input.logs.push(line('parent', 205, 'fault', 'kill', { target: 'a' }));
    const result = check(input);
    expect(result.violations).toEqual([]);
    expect(result.acquisitions[0]?.endReason).toBe('kill');
  });

  test('R3: an overlap caused by etcd revoking a lease before its deadline is marked as a server fault', () => {
    const input = cleanRun();
    // a holds until 400 by its deadline, but etcd revoked its lease (key deleted at 5) and a learns at 300.
    input.logs = [
      ...cycle('a', 'a', 2, 100, 500, 1, 1000).slice(0, 4),
      line('a', 300, 'lost', 'session', { lease: 'a', deadline: ms(1000), cause: 'Error: etcd answered the keep-alive with TTL 0' }),
      ...cycle('b', 'b', 3, 210, 300, 2),
    ];
    const result = check(input);
    expect(result.earlyRevocations).toHaveLength(1);
    expect(result.violations).toHaveLength(1);
    expect(result.violations[0]?.rule).toBe('R3');
    expect(result.violations[0]?.server).toMatch(/etcd revoked lease a of a 700 ms before/);
    // The same overlap without a revocation reported by etcd is the library's fault.
    input.logs = input.logs.filter((l) => l.ev !== 'lost');
    expect(check(input).violations.filter((v) => v.rule === 'R3' && !v.server)).toHaveLength(1);
  });

  test('R1: a waiter told it holds a key that expired before it ranked first (etcd issue 11456)', () => {
    const input = cleanRun();
    // b's key is deleted (lease expiry) at 4, before a releases at 5; b still reports acquiring at 210.
    input.history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), del(4, `${L}b`, 3, 'b'), del(5, `${L}a`, 2, 'a')];
    input.logs = [...cycle('a', 'a', 2, 100, 200, 1).filter((l) => l.op !== 'effect'), line('b', 210, 'ok', 'acquire', { lease: 'b', key: `${L}b`, token: '3', deadline: ms(2000) })];
    const result = check({ ...input, checkLeaks: false });
    expect(result.violations.map((v) => v.rule)).toEqual(['R1']);
    expect(result.violations[0]?.message).toMatch(/never ranked/);
  });

  test('R1: an acquisition reported after the lease was reported lost, or of a key never created', () => {
    const input = cleanRun();
    input.logs.push(line('b', 205, 'lost', 'session', { lease: 'b' }));
    input.logs.push(line('c', 400, 'ok', 'acquire', { lease: 'c', key: `${L}c`, token: '9' }));
    const messages = check(input).violations.filter((v) => v.rule === 'R1').map((v) => v.message);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatch(/after its lease b was reported lost/);
    expect(messages[1]).toMatch(/no such key was ever created/);
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
    ];
    input.logs = [];
    const rules = check(input).violations.map((v) => `${v.rule} ${v.message}`);
    expect(rules.some((r) => r.startsWith('R2') && r.includes('ranked within 1 only from 5'))).toBe(true);
    expect(rules.some((r) => r.startsWith('R2') && r.includes('unguarded') && r.includes('deleted at 6'))).toBe(true);
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
    input.logs = [...cycle('a', 'a', 2, 100, 200, 1), ...cycle('b', 'b', 5, 210, 300, 1), line('b', 305, 'ok', 'effect', { id: 'b:5:9' })];
    const rules = check(input).violations.map((v) => v.rule);
    expect(rules).toContain('counter');
    expect(rules).toContain('ack');
  });

  test('history: missing revisions and leftover keys are reported', () => {
    const input = cleanRun();
    input.history = input.history.slice(0, -1);
    input.gaps = [7n];
    const rules = check(input).violations.map((v) => v.rule);
    expect(rules).toContain('history');
    expect(rules).toContain('leak');
  });

  test('tokens: a later holder with a smaller token', () => {
    const input = cleanRun();
    input.logs = [...cycle('a', 'a', 3, 100, 200, 1), ...cycle('b', 'b', 2, 210, 300, 2)];
    expect(check(input).violations.map((v) => v.rule)).toContain('tokens');
  });

  test('permits: two overlapping holders are fine for a semaphore of 2, three are not', () => {
    const history = [put(2, `${L}a`, 'a'), put(3, `${L}b`, 'b'), put(4, `${L}c`, 'c'), del(5, `${L}a`, 2, 'a'), del(6, `${L}b`, 3, 'b'), del(7, `${L}c`, 4, 'c')];
    const acquire = (c: string, token: number, from: number, to: number) => [
      line(c, from, 'ok', 'acquire', { lease: c, key: `${L}${c}`, token: String(token), deadline: ms(5000) }),
      line(c, to, 'invoke', 'release', { lease: c, key: `${L}${c}`, token: String(token) }),
    ];
    const base = { history, lockPrefix: L, counterKey: COUNTER, permits: 2 };
    expect(check({ ...base, logs: [...acquire('a', 2, 100, 300), ...acquire('b', 3, 110, 400), ...acquire('c', 4, 310, 500)] }).violations).toEqual([]);
    const three = check({ ...base, logs: [...acquire('a', 2, 100, 300), ...acquire('b', 3, 110, 400), ...acquire('c', 4, 200, 500)] });
    expect(three.violations.map((v) => v.rule)).toContain('R3');
  });

  test('holders mode (semaphore): more live holder keys than permits at one revision is flagged', () => {
    const H = `${L}holders/`;
    const rec = (w = 1) => JSON.stringify({ permits: 2, weight: w });
    const base = { lockPrefix: L, counterKey: COUNTER, permits: 2, holderPrefix: H, logs: [] };
    const ok = [put(2, `${H}a`, 'a', 2, rec()), put(3, `${H}b`, 'b', 3, rec()), del(4, `${H}a`, 2, 'a'), put(5, `${H}c`, 'c', 5, rec()), del(6, `${H}b`, 3, 'b'), del(7, `${H}c`, 5, 'c')];
    expect(check({ ...base, history: ok }).violations).toEqual([]);
    const over = [put(2, `${H}a`, 'a', 2, rec()), put(3, `${H}b`, 'b', 3, rec()), put(4, `${H}c`, 'c', 4, rec()), del(5, `${H}a`, 2, 'a'), del(6, `${H}b`, 3, 'b'), del(7, `${H}c`, 4, 'c')];
    expect(check({ ...base, history: over }).violations.map((v) => v.message)).toEqual([expect.stringMatching(/revision 4 the holder keys hold 3 permits of 2/)]);
    const heavy = [put(2, `${H}a`, 'a', 2, rec(2)), put(3, `${H}b`, 'b', 3, rec()), del(4, `${H}a`, 2, 'a'), del(5, `${H}b`, 3, 'b')];
    expect(check({ ...base, history: heavy }).violations.map((v) => v.rule)).toEqual(['R3']);
    // A waiter key left behind is a leak too.
    expect(check({ ...base, history: [...ok, put(8, `${L}waiters/d`, 'd')] }).violations.map((v) => v.rule)).toEqual(['leak']);
  });
});
