/**
 * The history checker: from etcd's recorded history of a scenario's prefix and the JSON-line logs of its
 * clients (and of the parent's faults), all on one monotonic clock, it proves — or refutes —
 *
 *   R1  every reported acquisition is backed by the server: the client's own key, bound to its lease,
 *       existed and ranked among the first `permits` contenders at some revision no later than the first
 *       response the client received after reporting it (and never on a lease already reported lost);
 *   R2  every accepted effect was written while its holder's key ranked among the first `permits`, read
 *       from the revision of the write (fencing), and no effect was applied after its holder's window;
 *   R3  at no instant did the validity windows open hold more than `permits` (each counts its weight:
 *       a semaphore acquisition's `weight`, else 1), where a window opens when `lock()` resolved and
 *       closes at the first of release, lost, close, kill, or the session's validity deadline; tokens
 *       strictly increase in the order of acquisition (FIFO);
 *   deadline  no session ever reported a validity deadline that no keep-alive could justify (below);
 *   loss      a running client reported its session lost by the deadline its evidence allows (below);
 *   L   every waiter reported holding within a bound of the delete that put its key first, or of the
 *       end of the fault windows that overlap its wait (test/fault/liveness.ts);
 *   plus: the history is complete (contiguous revisions); the logs follow the protocol (every lease
 *       has its `ok session` line with `ttl` and `margin`, every acquisition its lease, key, token and
 *       deadline); the counter equals the number of applied effects (no lost update), every
 *       acknowledged effect applied, no effect reported failed applied, fenced writes are accepted in
 *       token order; and no contender key is left at the end.
 *
 * The evidence for deadlines. A correct Session's validity deadline is `s + TTL − margin`, where `s` is
 * the send time of the last keep-alive etcd acknowledged (or of the lease grant). The client cannot see
 * `s` — the public API gives it only `session.deadline`, `session.ttl` and the `safetyMargin` it passed
 * — but it logs every value the deadline takes, each stamped with the instant `t` it was observed (a
 * 10 ms poll, plus every line that carries the deadline). The keep-alive that moved the deadline to `D`
 * was sent before its answer arrived, and the answer arrived before `D` was observed: `s ≤ t`. Hence,
 * for every observation `(t, D)` of a correct client:
 *
 *     D ≤ t + TTL − margin                                                            (E)
 *
 * A deadline observed further ahead than that (beyond a 2 ms tolerance for converting the client's
 * `performance.now()` deadline to the hrtime clock) cannot come from any keep-alive sent before it was
 * observed: it is a library violation (`deadline`). The bound is one-sided — a deadline that
 * overstates `s` by less than the keep-alive's round trip plus the poll period, i.e. by less than
 * `t − s`, passes. A scenario makes the round trip long on purpose to close that gap: while the TCP
 * proxy delays a client's traffic (a `delay` fault line with the round trip `rtt` it adds), every
 * answer arrives at least `rtt` after its request was sent, so every observation `t` from `rtt` after
 * the delay began until it ended must satisfy `D ≤ t − rtt + TTL − margin`. A deadline counted from
 * the answer's arrival instead of the send breaks it by about `rtt`.
 *
 * (E) also decides the two judgements that used to trust the library's own figure:
 *
 * - An *early revocation* — etcd says the lease is gone (a `lost` line with a `cause`) while the
 *   reported deadline `D` is still ahead — is the server's fault only when `D` satisfies (E) at the
 *   instant it was first observed: then `D ≤ s + TTL − margin` for some keep-alive etcd acknowledged
 *   at `s`, and etcd dropped the lease before `s + TTL`. A `D` beyond (E) is not evidence of anything
 *   but the library's bug, and the overlap it causes stays a library violation.
 * - *Lost on time*: the last acknowledged keep-alive was sent no later than `e`, the instant the
 *   session's largest deadline was first observed (its last move; the `ok session` line when it never
 *   moved). A correct session is lost by `e + TTL − margin` at the latest, whatever deadline it
 *   reports. A client that was not paused in between must log `lost` no later than that plus
 *   `lossSlackNs` (timers and logging under load). Each loss is in {@link CheckResult.losses}, with
 *   how late it was, for scenarios that assert tighter.
 *
 * R4 — the checker can fail — is `test/fault/checker.test.ts` (every rule against hand-made histories)
 * and the scenarios' negative controls.
 */
import type { HistoryEvent } from './history.js';
import { describeLate, faultWindows, wakes, type Wake } from './liveness.js';
import type { LogEvent } from './protocol.js';

export type { FaultWindow, Wake } from './liveness.js';

export type Rule =
  | 'history'
  | 'protocol'
  | 'R1'
  | 'R2'
  | 'R3'
  | 'deadline'
  | 'loss'
  | 'tokens'
  | 'counter'
  | 'ack'
  | 'leak'
  | 'exit'
  | 'L';

export interface Violation {
  rule: Rule;
  client?: string;
  message: string;
  /**
   * Set when the violation is the server's doing, not the library's: an R3 overlap whose earlier
   * holder's lease etcd revoked while that holder's validity deadline was still ahead, a deadline that
   * satisfies (E) — etcd 3.4 < 3.4.31 does this when a stalled leader resumes (etcd issues 15247,
   * 12528).
   */
  server?: string;
}

/** A lease etcd revoked while its client's (justified) validity deadline was still ahead. */
export interface EarlyRevocation {
  client: string;
  lease: string;
  /** When the client learned it (hrtime ns). */
  t: bigint;
  /** How far its deadline still was, in ms. */
  aheadMs: number;
  cause: string;
}

/** What a client's `ok session` line says about one of its leases. */
export interface LeaseInfo {
  client: string;
  lease: string;
  /** When the session was reported open (hrtime ns). */
  opened: bigint;
  /** `session.ttl`, in ms. */
  ttlMs: number;
  /** The `safetyMargin` the session was created with, in ms. */
  marginMs: number;
}

/** A session reported lost, judged against the keep-alive evidence (see the file comment). */
export interface Loss {
  client: string;
  lease: string;
  /** When the client logged the loss (hrtime ns). */
  t: bigint;
  /** When the session's largest deadline was first observed: its last keep-alive was sent no later. */
  evidence: bigint;
  /** `evidence + TTL − margin`: the latest validity deadline a correct session can have had. */
  due: bigint;
  /** How much later than `due` the loss was logged, in ms (negative: earlier). */
  lateMs: number;
  /** Whether the client was paused (SIGSTOP) at some point between `evidence` and the loss. */
  paused: boolean;
  /** etcd's word that the lease is gone, when that was the cause. */
  cause?: string;
}

/** One version of a contender key: from its creation to its deletion. */
export interface KeyVersion {
  key: string;
  createRevision: bigint;
  lease: string;
  /** The revision that deleted it; undefined while it lives. */
  deleteRevision: bigint | undefined;
  /** The first revision at which it ranked among the first `permits`; undefined if it never did. */
  heldFrom: bigint | undefined;
}

/** One acquisition a client reported, with its validity window on the hrtime clock (ns). */
export interface Acquisition {
  client: string;
  lease: string;
  key: string;
  token: bigint;
  /** How many permits it holds (a semaphore acquisition's `weight`; 1 otherwise). */
  weight: number;
  start: bigint;
  end: bigint;
  /** `unbounded`: nothing ended the window (no deadline was ever logged for it): it lasts to the end of the logs. */
  endReason: 'release' | 'lost' | 'close' | 'kill' | 'exit' | 'deadline' | 'unbounded';
  version: KeyVersion | undefined;
  /** Set when the window ended because etcd revoked the lease before the client's deadline. */
  revokedEarly?: EarlyRevocation;
}

/** How a client process ended, as the harness saw it. */
export interface ProcessExit {
  client: string;
  /** Its exit code; null when a signal ended it. */
  code: number | null;
  signal: string | null;
  /** The scenario killed it on purpose (a `kill` fault). */
  killed: boolean;
  /** It did not exit by itself when the scenario ended, and the harness had to SIGKILL it. */
  reaped: boolean;
}

export interface CheckInput {
  /** etcd's history of the scenario's prefix, from the recorder. */
  history: readonly HistoryEvent[];
  /** Revisions missing from the history (must be none). */
  gaps?: readonly bigint[];
  /** Errors the recorder met. */
  historyErrors?: readonly string[];
  /** Every client's log lines and the parent's fault lines, in any order. */
  logs: readonly LogEvent[];
  /** How each client process ended; every one must have exited by itself with 0, or been killed on purpose. */
  exits?: readonly ProcessExit[];
  /** The contenders' prefix, `${lockName}/`. */
  lockPrefix: string;
  /** The key the effects increment. */
  counterKey: string;
  /** How many may hold at once. @default 1 */
  permits?: number;
  /** Whether a key under `lockPrefix` is a contender. @default a direct child */
  isContender?: (key: string) => boolean;
  /**
   * For a semaphore: holders are the direct children of this prefix (under `lockPrefix`), each held
   * from its creation (the admission) until its deletion, weighing `value.weight` (default 1). The
   * server-side check is then that the weights of the live holder keys never sum to more than
   * `permits` at any revision. Without it, holders are the first `permits` contenders by create
   * revision (a Mutex's or an Election's queue).
   */
  holderPrefix?: string;
  /** Whether leftover contender keys at the end are violations. @default true */
  checkLeaks?: boolean;
  /**
   * How much later than a session's deadline moved the client may have logged it (its poll period,
   * plus scheduling): deadline moves logged up to this long after a window's end still count.
   * @default 50 ms
   */
  deadlineSlackNs?: bigint;
  /** Rounding allowed in (E), for the client's conversion of `performance.now()` to hrtime. @default 2 ms */
  deadlineToleranceNs?: bigint;
  /** How much later than its evidence allows a running client may log a loss (timers under load). @default 1 s */
  lossSlackNs?: bigint;
  /**
   * Liveness (L): how soon after the delete that put its key first a waiter must report holding, when
   * no fault window overlaps the wait (see test/fault/liveness.ts). @default 2 s
   */
  wakeBoundNs?: bigint;
  /** Liveness: how long after a fault window ends it still counts as overlapping a wait. @default 0 */
  faultRecoveryNs?: bigint;
}

export interface CheckResult {
  violations: Violation[];
  versions: KeyVersion[];
  acquisitions: Acquisition[];
  /** Effects found in the history. */
  applied: number;
  /** Effects a client reported ok. */
  acknowledged: number;
  /** Effects whose outcome the client did not learn, that the history shows applied. */
  ambiguousApplied: number;
  /** Guarded effects sent after their holder's window that etcd rejected: the fence at work. */
  fencedRejections: number;
  /** The counter's final value. */
  counter: number;
  /** The most validity windows open at one instant. */
  maxConcurrent: number;
  /** Contender keys alive at the end of the history. */
  leaked: string[];
  /** Leases etcd revoked before their client's justified validity deadline (a server fault; see Violation.server). */
  earlyRevocations: EarlyRevocation[];
  /** Every reported loss of a session, judged against its keep-alive evidence. */
  losses: Loss[];
  /** Every wake-up of a waiter after the delete that put it first (liveness). */
  wakes: Wake[];
}

interface EffectRecord {
  n: number;
  id: string;
  c: string;
  lease: string;
  key: string;
  token: string;
  g: boolean;
}

const directChild = (prefix: string) => (key: string) =>
  key.startsWith(prefix) && key.length > prefix.length && !key.includes('/', prefix.length);

const max = (a: bigint, b: bigint) => (a > b ? a : b);
/** Revisions and hrtime stamps fit a double exactly (2^53 ns is 104 days). */
const byRev = (a: { rev: bigint }, b: { rev: bigint }) => Number(a.rev - b.rev);
const ms = (ns: bigint) => `${(Number(ns) / 1e6).toFixed(1)} ms`;
const MS = 1_000_000n;

/** Every version of every contender key, with the revision from which it ranked within `permits`. */
export function keyVersions(history: readonly HistoryEvent[], isContender: (key: string) => boolean, permits: number): KeyVersion[] {
  const versions: KeyVersion[] = [];
  const live = new Map<string, KeyVersion>();
  for (const event of [...history].sort(byRev)) {
    if (!isContender(event.key)) continue;
    const current = live.get(event.key);
    if (event.type === 'put') {
      if (current?.createRevision === event.createRevision) continue; // an update of the same key
      // A put that creates the key anew while we think it lives: its delete is missing from the
      // history (a gap, flagged apart). The old version ended then at the latest.
      if (current) current.deleteRevision = event.rev;
      const version: KeyVersion = {
        key: event.key,
        createRevision: event.createRevision,
        lease: event.lease,
        deleteRevision: undefined,
        heldFrom: undefined,
      };
      live.set(event.key, version);
      versions.push(version);
    } else if (current) {
      current.deleteRevision = event.rev;
      live.delete(event.key);
    }
  }
  // A version ranks within `permits` from the revision at which fewer than `permits` contenders created
  // before it are still alive: the count only falls after its creation (later keys rank behind it).
  const byCreate = [...versions].sort((a, b) => Number(a.createRevision - b.createRevision));
  for (let i = 0; i < byCreate.length; i++) {
    const version = byCreate[i]!;
    const c = version.createRevision;
    const ahead: bigint[] = [];
    let forever = 0;
    for (let j = 0; j < i; j++) {
      const other = byCreate[j]!;
      // (A key deleted before ours was created counts too: its deletion is below `c`, and `max` below
      // makes it harmless.)
      if (other.deleteRevision === undefined) forever++;
      else ahead.push(other.deleteRevision);
    }
    if (forever >= permits) continue;
    ahead.sort((a, b) => Number(a - b));
    // After the first k deletions, (forever + ahead.length - k) are left ahead; we need < permits.
    const k = Math.max(0, forever + ahead.length - permits + 1);
    const from = k === 0 ? c : max(ahead[k - 1]!, c);
    if (version.deleteRevision === undefined || from < version.deleteRevision) version.heldFrom = from;
  }
  return versions;
}

/** Every version of every holder key under `prefix` (a semaphore's), held from its creation. */
export function holderVersions(history: readonly HistoryEvent[], prefix: string): KeyVersion[] {
  const versions = keyVersions(history, directChild(prefix), Number.MAX_SAFE_INTEGER);
  for (const v of versions) v.heldFrom = v.createRevision;
  return versions;
}

const heldAt = (version: KeyVersion | undefined, rev: bigint): boolean =>
  version?.heldFrom !== undefined &&
  version.heldFrom <= rev &&
  (version.deleteRevision === undefined || rev < version.deleteRevision);

/** The weight a holder key's value records (a permit record), 1 when it records none. */
function weightOf(value: string): number {
  try {
    return (JSON.parse(value) as { weight?: number }).weight ?? 1;
  } catch {
    return 1;
  }
}

/** Runs every check; see the file comment. */
export function check(input: CheckInput): CheckResult {
  const permits = input.permits ?? 1;
  const isContender = input.isContender ?? directChild(input.lockPrefix);
  const slack = input.deadlineSlackNs ?? 50n * MS;
  const tolerance = input.deadlineToleranceNs ?? 2n * MS;
  const lossSlack = input.lossSlackNs ?? 1000n * MS;
  const violations: Violation[] = [];
  const flag = (rule: Rule, message: string, client?: string): void => {
    violations.push(client === undefined ? { rule, message } : { rule, client, message });
  };

  // History completeness.
  for (const error of input.historyErrors ?? []) flag('history', error);
  if (input.gaps && input.gaps.length > 0) {
    flag('history', `revisions missing from the history: ${input.gaps.slice(0, 10).join(', ')}${input.gaps.length > 10 ? ', …' : ''}`);
  }

  // Processes: each ended by itself with 0, or was killed by the scenario.
  for (const exit of input.exits ?? []) {
    if (exit.reaped) {
      flag('exit', `${exit.client} did not exit by itself at the end of the scenario and was SIGKILLed`, exit.client);
    } else if (!exit.killed && exit.code !== 0) {
      flag('exit', `${exit.client} exited with ${exit.code === null ? `signal ${exit.signal}` : `code ${exit.code}`}`, exit.client);
    }
  }

  const history = [...input.history].sort(byRev);
  const versions = input.holderPrefix ? holderVersions(history, input.holderPrefix) : keyVersions(history, isContender, permits);
  if (input.holderPrefix) {
    // Server side: the live holders' weights, revision by revision.
    const isHolder = directChild(input.holderPrefix);
    const live = new Map<string, number>();
    let flagged = 0;
    for (const event of history) {
      if (!isHolder(event.key)) continue;
      if (event.type === 'put') live.set(event.key, weightOf(event.value));
      else live.delete(event.key);
      const sum = [...live.values()].reduce((a, b) => a + b, 0);
      if (sum > permits && flagged++ < 5) {
        flag('R3', `at revision ${event.rev} the holder keys hold ${sum} permits of ${permits}: ${[...live.keys()].join(', ')}`);
      }
    }
  }
  const byKeyToken = new Map(versions.map((v) => [`${v.key}@${v.createRevision}`, v]));

  const logs = [...input.logs].sort((a, b) => Number(BigInt(a.t) - BigInt(b.t)));
  const logEnd = logs.length > 0 ? BigInt(logs.at(-1)!.t) + 1n : 0n;
  const byClient = new Map<string, LogEvent[]>();
  for (const line of logs) {
    const list = byClient.get(line.c) ?? [];
    list.push(line);
    byClient.set(line.c, list);
  }
  const faults = logs.filter((line) => line.ev === 'fault');

  // Protocol: every lease a client names was opened by an `ok session` line with its TTL and margin.
  const leases = new Map<string, LeaseInfo>();
  for (const [client, lines] of byClient) {
    if (client === 'parent') continue;
    for (const line of lines) {
      if (line.ev !== 'ok' || line.op !== 'session') continue;
      const { lease, deadline, ttl, margin } = line;
      if (!lease || deadline === undefined || typeof ttl !== 'number' || typeof margin !== 'number') {
        flag('protocol', `${client} logged an ok session line without its lease, deadline, ttl or margin`, client);
        continue;
      }
      if (!leases.has(`${client}/${lease}`)) {
        leases.set(`${client}/${lease}`, { client, lease, opened: BigInt(line.t), ttlMs: ttl * 1000, marginMs: margin });
      }
    }
    const unknown = new Set<string>();
    for (const line of lines) {
      const info = leases.get(`${client}/${line.lease}`);
      if (line.lease !== undefined && (!info || BigInt(line.t) < info.opened) && !unknown.has(line.lease)) {
        unknown.add(line.lease);
        flag('protocol', `${client} logged lease ${line.lease} before or without its ok session line`, client);
      }
    }
  }

  // Every deadline a client observed, per lease, in time order.
  const observed = new Map<string, { t: bigint; deadline: bigint }[]>();
  for (const line of logs) {
    if (line.deadline === undefined) continue;
    const id = `${line.c}/${line.lease}`;
    const list = observed.get(id) ?? [];
    list.push({ t: BigInt(line.t), deadline: BigInt(line.deadline) });
    observed.set(id, list);
  }
  /** The largest lead (E) allows a deadline of this lease over the instant it was observed. */
  const allowance = (info: LeaseInfo): bigint => BigInt(Math.round((info.ttlMs - info.marginMs) * 1e6)) + tolerance;
  /** The first observation of `deadline` or a later one, for the session `id`. */
  const firstSeen = (id: string, deadline: bigint) => observed.get(id)!.find((o) => o.deadline >= deadline)!;

  // (E): no deadline further ahead of the instant it was observed than TTL − margin. (Its first
  // observation is the one that counts; later ones of the same value are closer, and pass if it did.)
  // While the proxy delays a client's traffic (a `delay` fault with the round trip `rtt` it adds, in
  // ms), every answer arrives at least `rtt` after its request was sent: a deadline observed at `t`
  // from `rtt` after the delay began until it ended comes from a keep-alive sent by `t − rtt`.
  const windows = faultWindows(faults, logEnd);
  const delays = windows.filter((w) => w.op === 'delay' && typeof w.line['rtt'] === 'number');
  const forcedRtt = (client: string, t: bigint): bigint => {
    let rtt = 0n;
    for (const w of delays) {
      const d = BigInt(Math.round((w.line['rtt'] as number) * 1e6));
      if (w.subject === client && t >= w.from + d && t <= w.to && d > rtt) rtt = d;
    }
    return rtt;
  };
  for (const [id, list] of observed) {
    const info = leases.get(id);
    if (!info) continue;
    for (const o of list) {
      const ahead = o.deadline - o.t;
      const rtt = forcedRtt(info.client, o.t);
      if (ahead > allowance(info) - rtt) {
        const delayed = rtt > 0n ? `, while every round trip took at least ${ms(rtt)} (a delay of the proxy)` : '';
        flag(
          'deadline',
          `${info.client}'s session ${info.lease} reported a validity deadline ${ms(ahead)} after the instant it was observed${delayed}, more than TTL − safetyMargin${rtt > 0n ? ' − that round trip' : ''} (${info.ttlMs - info.marginMs - Number(rtt) / 1e6} ms): no keep-alive sent before then can justify it`,
          info.client,
        );
        break;
      }
    }
  }

  // Pauses of each client: [pause, resume) on the shared clock (a pause never resumed lasts forever).
  const pauses = new Map<string, { from: bigint; to: bigint | undefined }[]>();
  for (const fault of faults) {
    const target = fault['target'];
    if (typeof target !== 'string') continue;
    const list = pauses.get(target) ?? [];
    if (fault.op === 'pause') list.push({ from: BigInt(fault.t), to: undefined });
    else if (fault.op === 'resume' && list.length > 0 && list.at(-1)!.to === undefined) list.at(-1)!.to = BigInt(fault.t);
    pauses.set(target, list);
  }
  const pausedBetween = (client: string, from: bigint, to: bigint): boolean =>
    (pauses.get(client) ?? []).some((p) => p.from <= to && (p.to === undefined || p.to >= from));

  // Losses, judged against the keep-alive evidence; early revocations among them.
  const losses: Loss[] = [];
  const earlyRevocations: EarlyRevocation[] = [];
  for (const line of logs) {
    if (line.ev !== 'lost') continue;
    const id = `${line.c}/${line.lease}`;
    const info = leases.get(id);
    if (!info) {
      if (line.lease === undefined) flag('protocol', `${line.c} logged a loss without its lease`, line.c);
      continue;
    }
    const t = BigInt(line.t);
    let evidence = info.opened;
    let highest: bigint | undefined;
    for (const o of observed.get(id)!) {
      if (o.t > t) break;
      if (highest === undefined || o.deadline > highest) {
        highest = o.deadline;
        evidence = o.t;
      }
    }
    const due = evidence + allowance(info) - tolerance;
    const cause = typeof line['cause'] === 'string' ? line['cause'] : undefined;
    const paused = pausedBetween(line.c, evidence, t);
    losses.push({ client: line.c, lease: info.lease, t, evidence, due, lateMs: Number(t - due) / 1e6, paused, ...(cause === undefined ? {} : { cause }) });
    if (!paused && t - due > lossSlack) {
      flag(
        'loss',
        `${line.c} reported its session ${info.lease} lost ${ms(t - due)} after ${ms(due - evidence)} past its last keep-alive evidence (TTL − safetyMargin), more than ${ms(lossSlack)} late`,
        line.c,
      );
    }
    if (cause === undefined || line.deadline === undefined) continue;
    const deadline = BigInt(line.deadline);
    // etcd dropped the lease while the deadline was ahead — its fault only if (E) justifies the deadline
    // where it was first seen (the loss line itself at the latest).
    if (deadline > t && deadline - firstSeen(id, deadline).t <= allowance(info)) {
      earlyRevocations.push({ client: line.c, lease: info.lease, t, aheadMs: Number(deadline - t) / 1e6, cause });
    }
  }
  const earlyByLease = new Map(earlyRevocations.map((r) => [`${r.client}/${r.lease}`, r]));

  // Acquisitions and their validity windows.
  const acquisitions: Acquisition[] = [];
  for (const [client, lines] of byClient) {
    const lostAt = new Map<string, bigint>();
    for (const line of lines) if (line.ev === 'lost' && line.lease && !lostAt.has(line.lease)) lostAt.set(line.lease, BigInt(line.t));
    lines.forEach((line, index) => {
      if (line.ev !== 'ok' || line.op !== 'acquire') return;
      if (!line.lease || !line.key || !line.token) {
        flag('protocol', `${client} logged an acquisition without its lease, key or token: ${JSON.stringify(line)}`, client);
        return;
      }
      const start = BigInt(line.t);
      const lease = line.lease;
      const token = BigInt(line.token);
      if ((lostAt.get(lease) ?? start + 1n) <= start) {
        flag('R1', `${client} reported acquiring ${line.key} (token ${token}) after its lease ${lease} was reported lost`, client);
      }
      if (line.deadline === undefined) {
        flag('protocol', `${client} logged its acquisition of ${line.key} (token ${token}) without a deadline: its window has no bound`, client);
      }
      let end: bigint | undefined;
      let endReason: Acquisition['endReason'] = 'unbounded';
      const consider = (t: bigint, reason: Acquisition['endReason']): void => {
        if (t >= start && (end === undefined || t < end)) {
          end = t;
          endReason = reason;
        }
      };
      for (const later of lines.slice(index + 1)) {
        const t = BigInt(later.t);
        if (later.ev === 'invoke' && later.op === 'release' && later.token === line.token) consider(t, 'release');
        else if (later.ev === 'lost' && later.lease === lease) consider(t, 'lost');
        else if (later.ev === 'invoke' && later.op === 'close' && later.lease === lease) consider(t, 'close');
        else if (later.ev === 'info' && later.op === 'exit') consider(t, 'exit');
        if (end !== undefined) break;
      }
      for (const fault of faults) {
        if (fault.op === 'kill' && fault['target'] === client) consider(BigInt(fault.t), 'kill');
      }
      // The session's deadline: the largest one the client knew of before the window otherwise ended.
      let deadline = line.deadline === undefined ? undefined : BigInt(line.deadline);
      for (const later of lines.slice(index + 1)) {
        if (end !== undefined && BigInt(later.t) > end + slack) break;
        if (later.lease === lease && later.deadline !== undefined && (deadline === undefined || BigInt(later.deadline) > deadline)) {
          deadline = BigInt(later.deadline);
        }
      }
      if (deadline !== undefined && (end === undefined || deadline < end)) {
        end = deadline;
        endReason = 'deadline';
      }
      const early = earlyByLease.get(`${client}/${lease}`);
      acquisitions.push({
        client,
        lease,
        key: line.key,
        token,
        weight: typeof line['weight'] === 'number' ? line['weight'] : 1,
        start,
        end: max(end ?? logEnd, start),
        endReason,
        version: byKeyToken.get(`${line.key}@${token}`),
        ...((endReason as Acquisition['endReason']) === 'lost' && early ? { revokedEarly: early } : {}),
      });
    });
  }
  acquisitions.sort((a, b) => Number(a.start - b.start));

  // The last revision at which each lease wrote a key: a lease that writes after one of its keys was
  // deleted was not revoked by that delete.
  const lastPutOfLease = new Map<string, bigint>();
  for (const event of history) if (event.type === 'put' && event.lease !== '0') lastPutOfLease.set(event.lease, event.rev);
  /**
   * The early revocation that displaced `o` in favour of `successors`, if the evidence shows one:
   * - its window ended at the loss of its lease, which etcd revoked early (`revokedEarly`); or
   * - etcd revoked its lease early (an early revocation is listed for it), its key was deleted at or
   *   before the revision from which every successor ranked within the permits — so before their
   *   acquisitions were reported, and before `o` let go (the windows overlap): not by its own
   *   release — and its lease wrote nothing after that delete (so the delete was the revocation). The
   *   holder's report of its acquisition may then arrive after a successor's, although the server
   *   granted it first: its linearizable read saw its key first before the revocation.
   */
  const displacedByRevocation = (o: Acquisition, successors: readonly Acquisition[]): EarlyRevocation | undefined => {
    if (o.revokedEarly) return o.revokedEarly;
    const early = earlyByLease.get(`${o.client}/${o.lease}`);
    const deleted = o.version?.deleteRevision;
    if (!early || deleted === undefined || successors.length === 0) return undefined;
    if (!successors.every((n) => n.version?.heldFrom !== undefined && n.version.heldFrom >= deleted)) return undefined;
    if ((lastPutOfLease.get(o.lease) ?? 0n) > deleted) return undefined;
    return early;
  };
  const serverFault = (pairs: readonly [Acquisition, EarlyRevocation][]): string =>
    pairs.map(([o, r]) => `etcd revoked lease ${o.lease} of ${o.client} ${r.aheadMs.toFixed(0)} ms before its validity deadline (${r.cause})`).join('; ');
  /** Server order: the revision from which a key ranked within the permits; by report time where unknown. */
  const byServerRank = (a: Acquisition, b: Acquisition): number => {
    const [ra, rb] = [a.version?.heldFrom, b.version?.heldFrom];
    if (ra !== undefined && rb !== undefined && ra !== rb) return ra < rb ? -1 : 1;
    if (ra !== undefined && rb === undefined) return -1;
    if (ra === undefined && rb !== undefined) return 1;
    return Number(a.start - b.start);
  };

  // R1: each acquisition is backed by the server.
  for (const acq of acquisitions) {
    const v = acq.version;
    if (!v) {
      flag('R1', `${acq.client} reported holding ${acq.key} with token ${acq.token}, but no such key was ever created`, acq.client);
      continue;
    }
    if (v.lease !== acq.lease) {
      flag('R1', `${acq.key}@${acq.token} is bound to lease ${v.lease}, not to ${acq.client}'s lease ${acq.lease}`, acq.client);
    }
    if (v.heldFrom === undefined) {
      flag('R1', `${acq.client} reported holding ${acq.key}@${acq.token}, which never ranked within ${permits} (deleted at ${v.deleteRevision})`, acq.client);
      continue;
    }
    const lines = byClient.get(acq.client)!;
    const next = lines.find((line) => BigInt(line.t) > acq.start && line.rev !== undefined);
    if (next?.rev !== undefined && v.heldFrom > BigInt(next.rev)) {
      flag('R1', `${acq.client} reported holding ${acq.key}@${acq.token} before revision ${next.rev}, but it ranked within ${permits} only from ${v.heldFrom}`, acq.client);
    }
  }

  // R3: windows never overlap more than `permits`; tokens strictly increase in acquisition order.
  // An end and a start at the same instant do not overlap: the sort is stable, and the window that
  // ends there started earlier, so its end was pushed before the other's start.
  const edges: { t: bigint; opens: boolean; acq: Acquisition }[] = [];
  for (const acq of acquisitions) {
    if (acq.end > acq.start) edges.push({ t: acq.start, opens: true, acq }, { t: acq.end, opens: false, acq });
  }
  edges.sort((a, b) => Number(a.t - b.t));
  // Each window counts its weight (a semaphore's permits taken; 1 otherwise).
  const open = new Set<Acquisition>();
  let held = 0;
  let maxConcurrent = 0;
  for (const edge of edges) {
    if (!edge.opens) {
      open.delete(edge.acq);
      held -= edge.acq.weight;
      continue;
    }
    open.add(edge.acq);
    held += edge.acq.weight;
    maxConcurrent = Math.max(maxConcurrent, held);
    if (held > permits) {
      const others = [...open].filter((o) => o !== edge.acq);
      const weighs = (o: Acquisition): string => (o.weight === 1 ? '' : ` weight ${o.weight}`);
      const detail = others
        .map((o) => `${o.client} token ${o.token}${weighs(o)} (until ${o.endReason}, ${ms(o.end - edge.t)} later)`)
        .join('; ');
      const message = `${edge.acq.client} token ${edge.acq.token}${weighs(edge.acq)} started holding while ${others.length} others held: ${detail}`;
      // The server's fault only when every holder beyond `permits` — the first ones in the server's
      // order, as many as it takes to bring the weight within the permits — was displaced by an early
      // revocation of its lease.
      const ranked = [...open].sort(byServerRank);
      let excess = held - permits;
      let cut = 0;
      while (excess > 0) excess -= ranked[cut++]!.weight;
      const beyond = ranked.slice(0, cut);
      const successors = ranked.slice(cut);
      const revoked = beyond.flatMap((o): [Acquisition, EarlyRevocation][] => {
        const r = displacedByRevocation(o, successors);
        return r ? [[o, r]] : [];
      });
      if (revoked.length === beyond.length) {
        violations.push({ rule: 'R3', client: edge.acq.client, message, server: serverFault(revoked) });
      } else {
        flag('R3', message, edge.acq.client);
      }
    }
  }
  const seenTokens = new Map<bigint, Acquisition>();
  let previous: Acquisition | undefined;
  for (const acq of acquisitions) {
    const dup = seenTokens.get(acq.token);
    if (dup?.key === acq.key) flag('tokens', `token ${acq.token} reported by both ${dup.client} and ${acq.client}`, acq.client);
    seenTokens.set(acq.token, acq);
    if (permits === 1 && previous && acq.token <= previous.token) {
      const message = `${acq.client} got token ${acq.token} after ${previous.client} got ${previous.token}`;
      // Reported later but granted first: excused only when an early revocation then displaced it.
      const revoked = displacedByRevocation(acq, [previous]);
      if (revoked) violations.push({ rule: 'tokens', client: acq.client, message, server: serverFault([[acq, revoked]]) });
      else flag('tokens', message, acq.client);
    }
    previous = acq;
  }

  // R2 and the counter: every write of the counter, in revision order.
  const appliedIds = new Map<string, { rev: bigint; record: EffectRecord }>();
  let counter = 0;
  let lastToken = -1n;
  for (const write of history) {
    if (write.key !== input.counterKey) continue;
    if (write.type === 'delete') {
      flag('counter', `the counter was deleted at revision ${write.rev}`);
      counter = 0;
      continue;
    }
    const record = JSON.parse(write.value) as EffectRecord;
    if (record.n !== counter + 1) {
      flag('counter', `lost update: ${record.c} wrote ${record.n} at revision ${write.rev} over ${counter} (effect ${record.id}, ${record.g ? 'guarded' : 'unguarded'})`, record.c);
    }
    counter = record.n;
    if (appliedIds.has(record.id)) flag('counter', `effect ${record.id} applied twice`, record.c);
    appliedIds.set(record.id, { rev: write.rev, record });
    const version = byKeyToken.get(`${record.key}@${record.token}`);
    if (!heldAt(version, write.rev)) {
      const why = !version
        ? 'its key was never created'
        : version.heldFrom === undefined
          ? 'its key never ranked first'
          : write.rev < version.heldFrom
            ? `its key ranked within ${permits} only from ${version.heldFrom}`
            : `its key was deleted at ${version.deleteRevision}`;
      flag('R2', `${record.g ? 'guarded' : 'unguarded'} effect ${record.id} of ${record.c} was written at revision ${write.rev} although ${why}`, record.c);
    }
    const token = BigInt(record.token);
    if (permits === 1 && token < lastToken) {
      flag('R2', `effect ${record.id} with token ${token} accepted after a write with token ${lastToken}`, record.c);
    }
    lastToken = max(lastToken, token);
  }

  // Effects as the clients saw them.
  let acknowledged = 0;
  let ambiguousApplied = 0;
  let fencedRejections = 0;
  const acqByToken = new Map(acquisitions.map((a) => [`${a.client}@${a.token}`, a]));
  for (const line of logs) {
    if (line.op !== 'effect') continue;
    if (!line.id) {
      flag('protocol', `${line.c} logged an effect without its id`, line.c);
      continue;
    }
    const applied = appliedIds.get(line.id);
    if (line.ev === 'ok') {
      acknowledged++;
      if (!applied) flag('ack', `${line.c} was told effect ${line.id} applied, but it is not in the history`, line.c);
    } else if (line.ev === 'fail') {
      if (line['ambiguous'] === true) {
        if (applied) ambiguousApplied++;
      } else if (applied) {
        flag('ack', `${line.c} was told effect ${line.id} failed (${line.err}), but it applied at revision ${applied.rev}`, line.c);
      } else if (line['fenced'] === true) {
        fencedRejections++;
      }
    } else if (line.ev === 'invoke') {
      // An effect that applied must have been started inside its holder's window.
      const acq = acqByToken.get(`${line.c}@${line.token}`);
      if (applied && acq && BigInt(line.t) < acq.start) {
        flag('R2', `${line.c} started effect ${line.id} before it reported holding token ${line.token}`, line.c);
      }
    }
  }
  if (counter !== appliedIds.size) flag('counter', `the counter is ${counter} but ${appliedIds.size} effects applied`);

  // Every key under the lock's prefix (queue, holders, records) must be gone at the end.
  const alive = new Map<string, bigint>();
  for (const event of history) {
    if (!event.key.startsWith(input.lockPrefix)) continue;
    if (event.type === 'put') alive.set(event.key, event.createRevision);
    else alive.delete(event.key);
  }
  const leaked = [...alive].map(([key, rev]) => `${key}@${rev}`);
  if ((input.checkLeaks ?? true) && leaked.length > 0) flag('leak', `contender keys left at the end: ${leaked.join(', ')}`);

  // L: every wake-up within its bound of the delete that put the waiter first.
  const wakeBound = input.wakeBoundNs ?? 2000n * MS;
  const liveness = wakes({ acquisitions, history, logs, windows, boundNs: wakeBound, recoveryNs: input.faultRecoveryNs ?? 0n });
  for (const late of liveness.late) flag('L', describeLate(late, wakeBound), late.client);

  return {
    violations,
    versions,
    acquisitions,
    applied: appliedIds.size,
    acknowledged,
    ambiguousApplied,
    fencedRejections,
    counter,
    maxConcurrent,
    leaked,
    earlyRevocations,
    losses,
    wakes: liveness.wakes,
  };
}

/** `, wake-ups N (slowest X ms)`, or nothing without wake-ups. */
function wakeSummary(all: readonly Wake[]): string {
  if (all.length === 0) return '';
  const slowest = all.reduce((a, b) => (b.waitedMs > a.waitedMs ? b : a));
  return `, wake-ups ${all.length} (slowest ${slowest.waitedMs.toFixed(0)} ms, ${slowest.client})`;
}

/** A readable summary of a check, for test failure messages and logs. */
export function describe(result: CheckResult): string {
  const lines = [
    `acquisitions ${result.acquisitions.length}, early revocations by etcd ${result.earlyRevocations.length}, losses ${result.losses.length}, effects applied ${result.applied} (acknowledged ${result.acknowledged}, ambiguous-applied ${result.ambiguousApplied}), counter ${result.counter}, fenced rejections ${result.fencedRejections}, max concurrent ${result.maxConcurrent}${wakeSummary(result.wakes)}`,
    ...result.violations.slice(0, 20).map((v) => `  ${v.rule}: ${v.message}${v.server ? ` [server fault: ${v.server}]` : ''}`),
  ];
  if (result.violations.length > 20) lines.push(`  … ${result.violations.length - 20} more`);
  return lines.join('\n');
}
