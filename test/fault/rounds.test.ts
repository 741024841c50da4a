// The round checker against hand-made histories: a clean round passes, and each invariant, broken on
// purpose, is reported — so scenarios 16/16b and the model test can fail.
import { describe, expect, test } from 'vitest';
import type { HistoryEvent } from './history.js';
import { checkRounds, reportsFromLogs, type RoundReport } from './rounds.js';
import type { LogEvent } from './protocol.js';

const name = 'fault/x/lock';
const waiter = (n: string): string => `${name}/waiters/${n}`;
const ready = `${name}/ready`;

/** A put (creating the key at `rev` unless `created` says otherwise) or a delete. */
function put(rev: number, key: string, lease: string, value = '', created = rev): HistoryEvent {
  return { rev: BigInt(rev), type: 'put', key, createRevision: BigInt(created), lease, value };
}
function del(rev: number, key: string, created: number): HistoryEvent {
  return { rev: BigInt(rev), type: 'delete', key, createRevision: BigInt(created), lease: '0', value: '' };
}
const record = (...members: number[]): string => JSON.stringify({ count: members.length, members: members.map(String) });

/** Three participants a, b, c (leases a, b, c) enter round 4 and leave; the last deletes its key and the record at 7. */
const clean: HistoryEvent[] = [
  put(1, waiter('a'), 'a'),
  put(2, waiter('b'), 'b'),
  put(3, waiter('c'), 'c'),
  put(4, ready, '0', record(1, 2, 3)),
  del(5, waiter('b'), 2),
  del(6, waiter('c'), 3),
  del(7, waiter('a'), 1),
  del(7, ready, 4),
];
const reports: RoundReport[] = ['a', 'b', 'c'].flatMap((c) => [
  { client: c, lease: c, op: 'enter' as const, round: 4n, rev: 4n },
  { client: c, lease: c, op: 'leave' as const, round: 4n, rev: 7n },
]);

describe('checkRounds', () => {
  test('a clean round passes, with its members and when it emptied', () => {
    const { rounds, violations } = checkRounds({ history: clean, name, count: 3, reports });
    expect(violations).toEqual([]);
    expect(rounds).toMatchObject([{ id: 4n, members: [1n, 2n, 3n], deletedAt: 7n, emptyAt: 7n }]);
  });

  test('I1: a round one short, one naming a key that was gone, one recording another count', () => {
    const short = [put(1, waiter('a'), 'a'), put(2, waiter('b'), 'b'), put(3, ready, '0', JSON.stringify({ count: 3, members: ['1', '2'] }))];
    expect(checkRounds({ history: short, name, count: 3 }).violations).toEqual(['I1: round 3 opened with 2 members, not 3']);
    const gone = [put(1, waiter('a'), 'a'), put(2, waiter('b'), 'b'), del(3, waiter('a'), 1), put(4, ready, '0', record(1, 2))];
    expect(checkRounds({ history: gone, name, count: 2 }).violations).toEqual(['I1: round 4 names waiter keys that did not exist when it opened (created 1)']);
    expect(checkRounds({ history: gone.slice(0, 2).concat(put(3, ready, '0', record(1, 2))), name, count: 3 }).violations).toContain('I1: round 3 records count 2, not 3');
  });

  test('I1 for a record without members (the code before the fix): the first `count` keys created before it', () => {
    const old = [put(1, waiter('a'), 'a'), put(2, waiter('b'), 'b'), put(3, ready, 'b')];
    expect(checkRounds({ history: old, name, count: 3 }).violations).toEqual([
      'I2: round 3\'s record is bound to lease b: it dies with its writer',
      'I1: round 3 opened with 2 members, not 3',
    ]);
  });

  test('I2: a record rewritten; I3: closed while a member is inside, and a key in two rounds', () => {
    const rewritten = [...clean.slice(0, 4), put(5, ready, '0', record(1, 2, 3), 4)];
    expect(checkRounds({ history: rewritten, name, count: 3 }).violations).toEqual(['I2: round 4\'s record rewritten at revision 5']);
    const early = [...clean.slice(0, 5), del(6, ready, 4)];
    expect(checkRounds({ history: early, name, count: 3 }).violations).toEqual(['I3: round 4 closed at revision 6 while 2 of its members were still inside (created 1, 3)']);
    const twice = [put(1, waiter('a'), 'a'), put(2, ready, '0', record(1)), del(3, ready, 2), put(4, ready, '0', record(1))];
    // A key can be in two rounds only when the first closed with it inside: both are reported.
    expect(checkRounds({ history: twice, name, count: 1 }).violations).toEqual([
      'I3: round 2 closed at revision 3 while 1 of its members were still inside (created 1)',
      'I3: the waiter key created at 1 is a member of round 2 and of round 4',
    ]);
  });

  test('I4: in a round that does not name it; I5: out before all had left; I6: a member nobody accounts for', () => {
    const stranger: RoundReport = { client: 'd', lease: 'd', op: 'enter', round: 4n, rev: 4n };
    expect(checkRounds({ history: clean, name, count: 3, reports: [...reports, stranger] }).violations).toEqual([
      'I4: d (lease d) entered round 4, which does not name any key of its lease',
    ]);
    const early = reports.map((r) => (r.client === 'b' && r.op === 'leave' ? { ...r, rev: 5n } : r));
    expect(checkRounds({ history: clean, name, count: 3, reports: early }).violations).toEqual([
      'I5: b left round 4 at revision 5, before all of it had left (at 7)',
    ]);
    const silent = reports.filter((r) => r.client !== 'c');
    expect(checkRounds({ history: clean, name, count: 3, reports: silent }).violations).toEqual([
      `I6: round 4 counted ${waiter('c')} (lease c), whose owner neither entered it nor died or gave up`,
    ]);
    expect(checkRounds({ history: clean, name, count: 3, reports: silent, excused: new Set(['c']) }).violations).toEqual([]);
  });

  test('reportsFromLogs: enter and leave oks with their round; killed clients and failed enters excused', () => {
    const line = (c: string, t: number, ev: LogEvent['ev'], op: string, extra: Partial<LogEvent> = {}): LogEvent => ({ c, t: String(t), ev, op, ...extra });
    const { reports: got, excused } = reportsFromLogs([
      line('p0', 1, 'ok', 'session', { lease: 'a' }),
      line('p0', 2, 'ok', 'enter', { lease: 'a', round: '4', rev: '4' }),
      line('p0', 3, 'ok', 'leave', { lease: 'a', rev: '7' }),
      line('p1', 4, 'ok', 'session', { lease: 'b' }),
      line('parent', 5, 'fault', 'kill', { target: 'p1' }),
      line('p2', 6, 'fail', 'enter', { lease: 'c' }),
    ]);
    expect(got).toEqual([
      { client: 'p0', lease: 'a', op: 'enter', round: 4n, rev: 4n },
      { client: 'p0', lease: 'a', op: 'leave', round: 4n, rev: 7n },
    ]);
    expect([...excused].sort()).toEqual(['b', 'c']);
  });
});
