/**
 * Liveness from the history: every wake-up comes within a bound of the delete that made it possible.
 *
 * A waiter whose key ranked first (first `permits`) only from a later revision was woken by the delete
 * at that revision (`heldFrom` in {@link KeyVersion}). etcd's history says when that delete happened at
 * the latest: the recorder's receipt of it (`HistoryEvent.at`), or the releasing client's `ok release`
 * line when that came first — both are logged after etcd applied the delete, on the one monotonic
 * clock. The waiter must report holding within `boundNs` of that instant (an **L** violation
 * otherwise), unless a fault window overlaps the wait: then within `boundNs` of the end of the last
 * overlapping window (plus `recoveryNs`, for scenarios whose faults take longer to heal, such as a
 * frozen etcd member). The bound is on the safe side of every clock: a late recorder only shortens the
 * measured wait, so a violation is always real.
 *
 * What this catches that safety checks cannot: a waiter whose watch was lost without its being told (a
 * replaced watch stream), or whose watch was created after the delete it waits for without re-reading
 * (the gap between a read and a watch's creation). It waits for its periodic re-check instead — 1 to
 * 10 s (the keep-alive interval) — and every rule of safety still holds.
 */
import type { Acquisition } from './checker.js';
import type { HistoryEvent } from './history.js';
import type { LogEvent } from './protocol.js';

/** Fault operations that open a window, and the operation that closes each (same target or member). */
export const windowCloser: Readonly<Record<string, string>> = {
  pause: 'resume',
  'member-pause': 'member-resume',
  'member-kill': 'member-restart',
  blackhole: 'heal',
  delay: 'undelay',
  starve: 'fed',
};
const closers = new Set(Object.values(windowCloser));

/** A fault as a span of time on the shared clock: [from, to]; an instantaneous fault has from = to. */
export interface FaultWindow {
  op: string;
  /** The client (`target`) or member (`member`) it concerns, if any. */
  subject: string | undefined;
  from: bigint;
  /** Its closing line; the end of the logs when it never closed. */
  to: bigint;
  line: LogEvent;
}

const subjectOf = (line: LogEvent): string | undefined => {
  const s = line['target'] ?? line['member'];
  return typeof s === 'string' ? s : undefined;
};

/**
 * The parent's fault lines (in time order) as windows: an opener ({@link windowCloser}) lasts until
 * the next closer of the same subject, or `end`; a closer is part of its window; any other fault is
 * an instant.
 */
export function faultWindows(faults: readonly LogEvent[], end: bigint): FaultWindow[] {
  const windows: FaultWindow[] = [];
  faults.forEach((line, i) => {
    if (closers.has(line.op)) return;
    const from = BigInt(line.t);
    const closer = windowCloser[line.op];
    let to = from;
    if (closer !== undefined) {
      const close = faults.slice(i + 1).find((l) => l.op === closer && subjectOf(l) === subjectOf(line));
      to = close ? BigInt(close.t) : end;
    }
    windows.push({ op: line.op, subject: subjectOf(line), from, to, line });
  });
  return windows;
}

/** One wake-up: a waiter reporting its hold after the delete that put it first. */
export interface Wake {
  client: string;
  key: string;
  token: bigint;
  /** The revision of the delete that made the key rank first. */
  deleteRevision: bigint;
  /** When that delete was applied, at the latest (hrtime ns). */
  deletedAt: bigint;
  /** When the client reported holding (hrtime ns). */
  t: bigint;
  /** `t − deletedAt`, in ms. */
  waitedMs: number;
  /** The latest instant the report was due: the bound, extended past overlapping fault windows. */
  due: bigint;
  /** The fault windows that extended it. */
  windows: FaultWindow[];
}

export interface LivenessInput {
  acquisitions: readonly Acquisition[];
  history: readonly HistoryEvent[];
  logs: readonly LogEvent[];
  windows: readonly FaultWindow[];
  boundNs: bigint;
  recoveryNs: bigint;
}

/** Every wake-up in the run, and the ones that came too late; see the file comment. */
export function wakes(input: LivenessInput): { wakes: Wake[]; late: Wake[] } {
  const { boundNs, recoveryNs } = input;
  const at = new Map<bigint, bigint>();
  for (const e of input.history) if (e.at !== undefined) at.set(e.rev, e.at);
  // The deleter's own word: `ok release` of a key version, logged after the delete was applied.
  const released = new Map<string, bigint>();
  for (const l of input.logs) {
    if (l.ev !== 'ok' || l.op !== 'release' || !l.key || !l.token) continue;
    const id = `${l.key}@${l.token}`;
    const t = BigInt(l.t);
    if (!released.has(id) || t < released.get(id)!) released.set(id, t);
  }
  const deletes = new Map<bigint, HistoryEvent[]>();
  for (const e of input.history) if (e.type === 'delete') deletes.set(e.rev, [...(deletes.get(e.rev) ?? []), e]);

  const all: Wake[] = [];
  for (const acq of input.acquisitions) {
    const v = acq.version;
    if (!v || v.heldFrom === undefined || v.heldFrom <= v.createRevision) continue;
    const times = [at.get(v.heldFrom), ...(deletes.get(v.heldFrom) ?? []).map((e) => released.get(`${e.key}@${e.createRevision}`))];
    const known = times.filter((t): t is bigint => t !== undefined);
    if (known.length === 0) continue;
    const deletedAt = known.reduce((a, b) => (b < a ? b : a));
    let due = deletedAt + boundNs;
    const extended: FaultWindow[] = [];
    for (let moved = true; moved; ) {
      moved = false;
      for (const w of input.windows) {
        if (extended.includes(w) || w.from > due || w.to + recoveryNs < deletedAt) continue;
        extended.push(w);
        const end = w.to + recoveryNs + boundNs;
        if (end > due) {
          due = end;
          moved = true;
        }
      }
    }
    all.push({
      client: acq.client,
      key: acq.key,
      token: acq.token,
      deleteRevision: v.heldFrom,
      deletedAt,
      t: acq.start,
      waitedMs: Number(acq.start - deletedAt) / 1e6,
      due,
      windows: extended,
    });
  }
  return { wakes: all, late: all.filter((w) => w.t > w.due) };
}

/** The message of an L violation: the figures. */
export function describeLate(w: Wake, boundNs: bigint): string {
  const faults = w.windows.map((f) => `${f.op}${f.subject === undefined ? '' : ` ${f.subject}`}`).join(', ');
  return (
    `${w.client} reported holding ${w.key}@${w.token} ${w.waitedMs.toFixed(1)} ms after the delete at revision ${w.deleteRevision} ` +
    `that put it first; due within ${(Number(w.due - w.deletedAt) / 1e6).toFixed(0)} ms (${Number(boundNs) / 1e6} ms${faults ? `, extended past ${faults}` : ''})`
  );
}
