// Hand-made histories and logs for the checker's tests: a lock `lock/` with keys named by lease, a
// counter, and client lines on a millisecond clock.
import type { CheckInput, CheckResult } from './checker.js';
import type { HistoryEvent } from './history.js';
import type { LogEvent } from './protocol.js';

export const L = 'lock/';
export const COUNTER = 'counter';
/** Every session in these logs: TTL 2 s, safetyMargin 200 ms — a deadline at most 1800 ms ahead of its observation. */
export const TTL = 2;
export const MARGIN = 200;
export const ms = (n: number) => String(BigInt(n) * 1_000_000n);

export const put = (rev: number, key: string, lease: string, createRevision = rev, value = ''): HistoryEvent => ({
  rev: BigInt(rev),
  type: 'put',
  key,
  createRevision: BigInt(createRevision),
  lease,
  value,
});
export const del = (rev: number, key: string, createRevision: number, lease: string): HistoryEvent => ({
  rev: BigInt(rev),
  type: 'delete',
  key,
  createRevision: BigInt(createRevision),
  lease,
  value: '',
});
export const effect = (rev: number, n: number, c: string, lease: string, token: number, g = true): HistoryEvent =>
  put(rev, COUNTER, '0', 1, JSON.stringify({ n, id: `${c}:${token}:${n}`, c, lease, key: `${L}${lease}`, token: String(token), g }));

export const line = (c: string, t: number, ev: LogEvent['ev'], op: string, extra: Partial<LogEvent> = {}): LogEvent => ({
  c,
  t: ms(t),
  ev,
  op,
  ...extra,
});

/** Client `c` reports its session with lease `lease` open at `t`, its deadline `ahead` ms later. */
export const opened = (c: string, lease: string, t: number, ahead = TTL * 1000 - MARGIN): LogEvent =>
  line(c, t, 'ok', 'session', { lease, deadline: ms(t + ahead), ttl: TTL, margin: MARGIN });

/** Client `c` with lease `lease` holds token `token` from `from` to `to` ms, with one effect. */
export function cycle(c: string, lease: string, token: number, from: number, to: number, n: number, deadline = from + 1800, effectRev = 2 * n + 2): LogEvent[] {
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
export function cleanRun(): CheckInput & { logs: LogEvent[] } {
  return {
    history: [
      put(2, `${L}a`, 'a'),
      put(3, `${L}b`, 'b'),
      effect(4, 1, 'a', 'a', 2),
      del(5, `${L}a`, 2, 'a'),
      effect(6, 2, 'b', 'b', 3),
      del(7, `${L}b`, 3, 'b'),
    ],
    logs: [opened('a', 'a', 10), opened('b', 'b', 20), ...cycle('a', 'a', 2, 100, 200, 1), ...cycle('b', 'b', 3, 210, 300, 2)],
    lockPrefix: L,
    counterKey: COUNTER,
  };
}

export const rules = (result: CheckResult) => result.violations.map((v) => v.rule);
export const messages = (result: CheckResult, rule: string) => result.violations.filter((v) => v.rule === rule).map((v) => v.message);

