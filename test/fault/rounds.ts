/**
 * The DoubleBarrier round checker: from etcd's recorded history of a barrier's keys (and, when given,
 * what the participants reported), it proves — or refutes — the invariants of docs/barrier.md:
 *
 *   I1  exactly `count`: every round record (a put that creates `name/ready`) names exactly `count`
 *       waiter keys, each of which existed, with that create revision, when the record was written;
 *   I2  membership is fixed when the round opens: the record is never rewritten and is bound to no
 *       lease (a record on a lease dies with its writer, and the round's keys become anyone's);
 *   I3  one round at a time: the record is deleted only once none of its members' keys exists, and no
 *       waiter key is a member of two rounds;
 *   I4  in means named: a participant that reported `enter` ok in round R has a key (bound to its
 *       lease) that R's record names;
 *   I5  out means all out: a participant that reported `leave` ok (with the revision of a read made
 *       after it) did so when no member key of its round existed any more;
 *   I6  every member is accounted for: each member's owner reported entering that round, or was
 *       killed, crashed, or gave its `enter` up.
 *
 * A record with an empty value is Go's, or the code's before issue 19 was fixed: its members are the
 * first `count` waiter keys that existed, created before it, when it was written, as that code counted
 * them — so the checker judges the old protocol by the same invariants, and a round it opened one
 * short fails I1.
 * The checker itself is tested in rounds.test.ts against hand-made histories.
 */
import type { HistoryEvent } from './history.js';
import type { LogEvent } from './protocol.js';

/** One round, as etcd's history shows it. */
export interface RoundRecord {
  /** The record's create revision: the round's id. */
  id: bigint;
  /** The members' create revisions, oldest first. */
  members: bigint[];
  /** Each member's key and lease (hex), in the same order; `?` for a member that did not exist. */
  keys: { key: string; lease: string }[];
  /** The revision that deleted the record, if any. */
  deletedAt?: bigint;
  /** The revision by which every member key was gone, if it came. */
  emptyAt?: bigint;
}

/** What a participant reported (the fault client's log lines, or the property test's bookkeeping). */
export interface RoundReport {
  /** Who reported it (a client id), for messages. */
  client: string;
  /** Its session's lease, lower-case hex. */
  lease: string;
  op: 'enter' | 'leave';
  /** The round it was in: `ready`'s create revision, read right after `enter` resolved. */
  round: bigint | undefined;
  /** The revision of a read made right after the call resolved. */
  rev: bigint;
}

export interface RoundsInput {
  history: readonly HistoryEvent[];
  /** The barrier's name (its keys are `${name}/waiters/…` and `${name}/ready`). */
  name: string;
  count: number;
  /** Participants' reports; I4–I6 are checked only when given. */
  reports?: readonly RoundReport[];
  /** Leases whose owner was killed, crashed, or gave an `enter` up: their members need no report. */
  excused?: ReadonlySet<string>;
}

export interface RoundsResult {
  rounds: RoundRecord[];
  violations: string[];
}

interface Live {
  createRevision: bigint;
  lease: string;
}

/** Checks I1–I6 (see the file comment). */
export function checkRounds(input: RoundsInput): RoundsResult {
  const waiters = `${input.name}/waiters/`;
  const ready = `${input.name}/ready`;
  const violations: string[] = [];
  const rounds: RoundRecord[] = [];
  const live = new Map<string, Live>(); // waiter key → what it is now
  const memberOf = new Map<bigint, bigint>(); // member create revision → round id
  const byRevision = groupByRevision(input.history);
  let open: RoundRecord | undefined;
  for (const [rev, events] of byRevision) {
    for (const e of events) {
      if (e.key.startsWith(waiters) && !e.key.slice(waiters.length).includes('/')) {
        if (e.type === 'put') live.set(e.key, { createRevision: e.createRevision, lease: e.lease });
        else live.delete(e.key);
      }
    }
    const empty = (round: RoundRecord): boolean => ![...live.values()].some((kv) => round.members.includes(kv.createRevision));
    if (open && open.emptyAt === undefined && empty(open)) open.emptyAt = rev;
    for (const e of events) {
      if (e.key !== ready) continue;
      if (e.type === 'delete') {
        if (open) open.deletedAt = rev;
        const left = open ? [...live.values()].filter((kv) => open!.members.includes(kv.createRevision)) : [];
        if (open && !empty(open)) {
          violations.push(`I3: round ${open.id} closed at revision ${rev} while ${left.length} of its members were still inside (created ${left.map((kv) => kv.createRevision).join(', ')})`);
        }
        open = undefined;
        continue;
      }
      if (e.createRevision !== rev) {
        violations.push(`I2: round ${e.createRevision}'s record rewritten at revision ${rev}`);
        continue;
      }
      if (e.lease !== '0') violations.push(`I2: round ${rev}'s record is bound to lease ${e.lease}: it dies with its writer`);
      open = openRound(rev, e.value, live, input.count, violations);
      rounds.push(open);
      for (const m of open.members) {
        const earlier = memberOf.get(m);
        if (earlier !== undefined) violations.push(`I3: the waiter key created at ${m} is a member of round ${earlier} and of round ${rev}`);
        memberOf.set(m, rev);
      }
    }
  }
  if (input.reports) checkReports(input, rounds, violations);
  return { rounds, violations };
}

/** The round a record written at `rev` opens, checked against I1. */
function openRound(rev: bigint, value: string, live: ReadonlyMap<string, Live>, count: number, violations: string[]): RoundRecord {
  let members: bigint[];
  if (value === '') {
    // As the code before the fix counted them: the first `count` waiter keys created before it.
    members = [...live.values()].map((kv) => kv.createRevision).filter((r) => r < rev).sort(ascending).slice(0, count);
  } else {
    try {
      const record = JSON.parse(value) as { count?: unknown; members?: unknown };
      members = Array.isArray(record.members) ? record.members.map((m) => BigInt(String(m))) : [];
      if (record.count !== count) violations.push(`I1: round ${rev} records count ${String(record.count)}, not ${count}`);
    } catch {
      violations.push(`I1: round ${rev}'s record is not JSON: ${JSON.stringify(value)}`);
      members = [];
    }
  }
  members.sort(ascending);
  const keys = members.map((m) => {
    const found = [...live.entries()].find(([, kv]) => kv.createRevision === m);
    return found ? { key: found[0], lease: found[1].lease } : { key: '?', lease: '?' };
  });
  const missing = members.filter((_m, i) => keys[i]!.key === '?');
  if (members.length !== count) violations.push(`I1: round ${rev} opened with ${members.length} members, not ${count}`);
  if (missing.length > 0) violations.push(`I1: round ${rev} names waiter keys that did not exist when it opened (created ${missing.join(', ')})`);
  return { id: rev, members, keys };
}

/** I4–I6 against the participants' reports. */
function checkReports(input: RoundsInput, rounds: readonly RoundRecord[], violations: string[]): void {
  const byId = new Map(rounds.map((r) => [r.id, r]));
  const entered = new Set<string>(); // `${round}:${lease}`
  for (const report of input.reports ?? []) {
    const round = report.round === undefined ? undefined : byId.get(report.round);
    if (!round) {
      violations.push(`I4: ${report.client} reported ${report.op} in round ${String(report.round)}, which the history does not show`);
      continue;
    }
    if (report.op === 'enter') {
      if (!round.keys.some((k) => k.lease === report.lease)) {
        violations.push(`I4: ${report.client} (lease ${report.lease}) entered round ${round.id}, which does not name any key of its lease`);
      }
      entered.add(`${round.id}:${report.lease}`);
    } else if (round.emptyAt === undefined || report.rev < round.emptyAt) {
      violations.push(`I5: ${report.client} left round ${round.id} at revision ${report.rev}, before all of it had left (${round.emptyAt === undefined ? 'never' : `at ${round.emptyAt}`})`);
    }
  }
  for (const round of rounds) {
    for (const k of round.keys) {
      if (k.lease === '?' || entered.has(`${round.id}:${k.lease}`) || input.excused?.has(k.lease)) continue;
      violations.push(`I6: round ${round.id} counted ${k.key} (lease ${k.lease}), whose owner neither entered it nor died or gave up`);
    }
  }
}

const ascending = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

function groupByRevision(history: readonly HistoryEvent[]): Map<bigint, HistoryEvent[]> {
  const out = new Map<bigint, HistoryEvent[]>();
  for (const e of [...history].sort((a, b) => ascending(a.rev, b.rev))) {
    const list = out.get(e.rev);
    if (list) list.push(e);
    else out.set(e.rev, [e]);
  }
  return out;
}

/**
 * The fault clients' barrier-mode log lines as reports: every `enter` ok (with the round it read) and
 * `leave` ok (in the round of that client's last `enter`); and the leases excused from I6 — those of
 * clients the parent killed, and those with an `enter` that failed (given up, or a lost session).
 */
export function reportsFromLogs(lines: readonly LogEvent[]): { reports: RoundReport[]; excused: Set<string> } {
  const reports: RoundReport[] = [];
  const excused = new Set<string>();
  const inRound = new Map<string, bigint | undefined>();
  const leases = new Map<string, Set<string>>();
  const killed = new Set<string>();
  for (const l of [...lines].sort((a, b) => ascending(BigInt(a.t), BigInt(b.t)))) {
    if (l.c === 'parent' && l.op === 'kill') killed.add(String(l['target']));
    if (l.lease === undefined) continue;
    leases.set(l.c, (leases.get(l.c) ?? new Set()).add(l.lease));
    if (l.op === 'enter' && l.ev === 'fail') excused.add(l.lease);
    if ((l.op !== 'enter' && l.op !== 'leave') || l.ev !== 'ok') continue;
    const round = l.op === 'enter' ? (typeof l['round'] === 'string' ? BigInt(l['round']) : undefined) : inRound.get(l.c);
    if (l.op === 'enter') inRound.set(l.c, round);
    reports.push({ client: l.c, lease: l.lease, op: l.op, round, rev: BigInt(l.rev ?? '0') });
  }
  for (const c of killed) for (const lease of leases.get(c) ?? []) excused.add(lease);
  return { reports, excused };
}
