/**
 * The history checker: from etcd's recorded history of a scenario's prefix and the JSON-line logs of its
 * clients (and of the parent's faults), all on one monotonic clock, it proves — or refutes —
 *
 *   R1  every reported acquisition is backed by the server: the client's own key, bound to its lease,
 *       existed and ranked among the first `permits` contenders at some revision no later than the first
 *       response the client received after reporting it (and never on a lease already reported lost);
 *   R2  every accepted effect was written while its holder's key ranked among the first `permits`, read
 *       from the revision of the write (fencing), and no effect was applied after its holder's window;
 *   R3  at no instant did more than `permits` validity windows overlap, where a window opens when
 *       `lock()` resolved and closes at the first of release, lost, close, kill, or the session's
 *       validity deadline; tokens strictly increase in the order of acquisition (FIFO);
 *   plus: the history is complete (contiguous revisions); the counter equals the number of applied
 *       effects (no lost update), every acknowledged effect applied, no effect reported failed applied,
 *       fenced writes are accepted in token order; and no contender key is left at the end.
 *
 * R4 — a negative control must be flagged — is the scenario's assertion that `check()` of a run with an
 * unguarded effect under a paused holder returns violations.
 */
import type { HistoryEvent } from './history.js';
import type { LogEvent } from './protocol.js';

export type Rule = 'history' | 'R1' | 'R2' | 'R3' | 'tokens' | 'counter' | 'ack' | 'leak';

export interface Violation {
  rule: Rule;
  client?: string;
  message: string;
  /**
   * Set when the violation is the server's doing, not the library's: an R3 overlap whose earlier
   * holder's lease etcd revoked while that holder's validity deadline was still ahead (a keep-alive
   * had succeeded less than a TTL before) — etcd 3.4 < 3.4.31 does this when a stalled leader
   * resumes (etcd issues 15247, 12528).
   */
  server?: string;
}

/** A lease etcd revoked while its client's validity deadline was still ahead. */
export interface EarlyRevocation {
  client: string;
  lease: string;
  /** When the client learned it (hrtime ns). */
  t: bigint;
  /** How far its deadline still was, in ms. */
  aheadMs: number;
  cause: string;
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
  start: bigint;
  end: bigint;
  endReason: 'release' | 'lost' | 'close' | 'kill' | 'exit' | 'deadline';
  version: KeyVersion | undefined;
  /** Set when the window ended because etcd revoked the lease before the client's deadline. */
  revokedEarly?: EarlyRevocation;
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
  /** Leases etcd revoked before their client's validity deadline (a server fault; see Violation.server). */
  earlyRevocations: EarlyRevocation[];
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
const ms = (ns: bigint) => `${(Number(ns) / 1e6).toFixed(1)} ms`;

/** Every version of every contender key, with the revision from which it ranked within `permits`. */
export function keyVersions(history: readonly HistoryEvent[], isContender: (key: string) => boolean, permits: number): KeyVersion[] {
  const versions: KeyVersion[] = [];
  const live = new Map<string, KeyVersion>();
  for (const event of [...history].sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0))) {
    if (!isContender(event.key)) continue;
    const current = live.get(event.key);
    if (event.type === 'put') {
      if (current && current.createRevision === event.createRevision) continue; // an update of the same key
      if (current) current.deleteRevision = event.rev; // cannot happen without a delete; be safe
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
  const byCreate = [...versions].sort((a, b) => (a.createRevision < b.createRevision ? -1 : 1));
  for (let i = 0; i < byCreate.length; i++) {
    const version = byCreate[i]!;
    const c = version.createRevision;
    const ahead: bigint[] = [];
    let forever = 0;
    for (let j = 0; j < i; j++) {
      const other = byCreate[j]!;
      if (other.deleteRevision === undefined) forever++;
      else if (other.deleteRevision > c) ahead.push(other.deleteRevision);
    }
    if (forever >= permits) continue;
    ahead.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // After the first k deletions, (forever + ahead.length - k) are left ahead; we need < permits.
    const k = Math.max(0, forever + ahead.length - permits + 1);
    const from = k === 0 ? c : max(c, ahead[k - 1]!);
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
  version !== undefined &&
  version.heldFrom !== undefined &&
  version.heldFrom <= rev &&
  (version.deleteRevision === undefined || rev < version.deleteRevision);

/** Runs every check; see the file comment. */
export function check(input: CheckInput): CheckResult {
  const permits = input.permits ?? 1;
  const isContender = input.isContender ?? directChild(input.lockPrefix);
  const slack = input.deadlineSlackNs ?? 50_000_000n;
  const violations: Violation[] = [];
  const flag = (rule: Rule, message: string, client?: string): void => {
    violations.push(client === undefined ? { rule, message } : { rule, client, message });
  };

  // History completeness.
  for (const error of input.historyErrors ?? []) flag('history', error);
  if (input.gaps && input.gaps.length > 0) {
    flag('history', `revisions missing from the history: ${input.gaps.slice(0, 10).join(', ')}${input.gaps.length > 10 ? ', …' : ''}`);
  }

  const versions = input.holderPrefix
    ? holderVersions(input.history, input.holderPrefix)
    : keyVersions(input.history, isContender, permits);
  if (input.holderPrefix) {
    // Server side: the live holders' weights, revision by revision.
    const weights = new Map<string, number>();
    const live = new Map<string, number>();
    let flagged = 0;
    for (const event of [...input.history].sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0))) {
      if (!directChild(input.holderPrefix)(event.key)) continue;
      if (event.type === 'put') {
        let weight = 1;
        try {
          weight = (JSON.parse(event.value) as { weight?: number }).weight ?? 1;
        } catch {
          // not a JSON record: weight 1
        }
        weights.set(event.key, weight);
        live.set(event.key, weight);
      } else {
        live.delete(event.key);
      }
      const sum = [...live.values()].reduce((a, b) => a + b, 0);
      if (sum > permits && flagged++ < 5) {
        flag('R3', `at revision ${event.rev} the holder keys hold ${sum} permits of ${permits}: ${[...live.keys()].join(', ')}`);
      }
    }
  }
  const byKeyToken = new Map(versions.map((v) => [`${v.key}@${v.createRevision}`, v]));

  const logs = [...input.logs].sort((a, b) => {
    const d = BigInt(a.t) - BigInt(b.t);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
  const byClient = new Map<string, LogEvent[]>();
  for (const line of logs) {
    const list = byClient.get(line.c) ?? [];
    list.push(line);
    byClient.set(line.c, list);
  }
  const faults = logs.filter((line) => line.ev === 'fault');

  // Leases etcd said were gone (keep-alive TTL 0, lease not found) while the client's deadline was ahead.
  const earlyRevocations: EarlyRevocation[] = [];
  for (const line of logs) {
    if (line.ev !== 'lost' || !line.lease || line.deadline === undefined || typeof line['cause'] !== 'string') continue;
    const ahead = BigInt(line.deadline) - BigInt(line.t);
    if (ahead > 0n) {
      earlyRevocations.push({ client: line.c, lease: line.lease, t: BigInt(line.t), aheadMs: Number(ahead) / 1e6, cause: line['cause'] });
    }
  }
  const earlyByLease = new Map(earlyRevocations.map((r) => [`${r.client}/${r.lease}`, r]));

  // Acquisitions and their validity windows.
  const acquisitions: Acquisition[] = [];
  for (const [client, lines] of byClient) {
    if (client === 'parent') continue;
    const lostAt = new Map<string, bigint>();
    for (const line of lines) if (line.ev === 'lost' && line.lease && !lostAt.has(line.lease)) lostAt.set(line.lease, BigInt(line.t));
    lines.forEach((line, index) => {
      if (line.ev !== 'ok' || line.op !== 'acquire' || !line.lease || !line.key || !line.token) return;
      const start = BigInt(line.t);
      const lease = line.lease;
      const token = BigInt(line.token);
      const lost = lostAt.get(lease);
      if (lost !== undefined && lost <= start) {
        flag('R1', `${client} reported acquiring ${line.key} (token ${token}) after its lease ${lease} was reported lost`, client);
      }
      let end: bigint | undefined;
      let endReason: Acquisition['endReason'] = 'deadline';
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
      let deadline = line.deadline === undefined ? start : BigInt(line.deadline);
      for (const later of lines.slice(index + 1)) {
        const t = BigInt(later.t);
        if (end !== undefined && t > end + slack) break;
        if (later.lease === lease && later.deadline !== undefined && later.op === 'deadline') {
          deadline = max(deadline, BigInt(later.deadline));
        }
      }
      if (end === undefined || deadline < end) {
        end = deadline;
        endReason = 'deadline';
      }
      const early = earlyByLease.get(`${client}/${lease}`);
      acquisitions.push({
        client,
        lease,
        key: line.key,
        token,
        start,
        end: max(end, start),
        endReason,
        version: byKeyToken.get(`${line.key}@${token}`),
        ...((endReason as Acquisition['endReason']) === 'lost' && early ? { revokedEarly: early } : {}),
      });
    });
  }
  acquisitions.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));

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
    const lines = byClient.get(acq.client) ?? [];
    const next = lines.find((line) => BigInt(line.t) > acq.start && line.rev !== undefined);
    if (next?.rev !== undefined && v.heldFrom > BigInt(next.rev)) {
      flag('R1', `${acq.client} reported holding ${acq.key}@${acq.token} before revision ${next.rev}, but it ranked within ${permits} only from ${v.heldFrom}`, acq.client);
    }
  }

  // R3: windows never overlap more than `permits`; tokens strictly increase in acquisition order.
  const edges: { t: bigint; d: number; acq: Acquisition }[] = [];
  for (const acq of acquisitions) {
    if (acq.end > acq.start) {
      edges.push({ t: acq.start, d: 1, acq }, { t: acq.end, d: -1, acq });
    }
  }
  edges.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.d - b.d));
  const open = new Set<Acquisition>();
  let maxConcurrent = 0;
  for (const edge of edges) {
    if (edge.d < 0) {
      open.delete(edge.acq);
      continue;
    }
    open.add(edge.acq);
    maxConcurrent = Math.max(maxConcurrent, open.size);
    if (open.size > permits) {
      const others = [...open].filter((o) => o !== edge.acq);
      const detail = others
        .map((o) => `${o.client} token ${o.token} (until ${o.endReason}, ${ms(o.end - edge.t)} later)`)
        .join('; ');
      const message = `${edge.acq.client} token ${edge.acq.token} started holding while ${others.length} others held: ${detail}`;
      const revoked = others.filter((o) => o.revokedEarly !== undefined);
      if (revoked.length === others.length - permits + 1 && revoked.length > 0) {
        violations.push({
          rule: 'R3',
          client: edge.acq.client,
          message,
          server: revoked
            .map((o) => `etcd revoked lease ${o.lease} of ${o.client} ${o.revokedEarly!.aheadMs.toFixed(0)} ms before its validity deadline (${o.revokedEarly!.cause})`)
            .join('; '),
        });
      } else {
        flag('R3', message, edge.acq.client);
      }
    }
  }
  const seenTokens = new Map<bigint, Acquisition>();
  let previous: Acquisition | undefined;
  for (const acq of acquisitions) {
    const dup = seenTokens.get(acq.token);
    if (dup && dup.key === acq.key) flag('tokens', `token ${acq.token} reported by both ${dup.client} and ${acq.client}`, acq.client);
    seenTokens.set(acq.token, acq);
    if (permits === 1 && previous && acq.token <= previous.token) {
      flag('tokens', `${acq.client} got token ${acq.token} after ${previous.client} got ${previous.token}`, acq.client);
    }
    previous = acq;
  }

  // R2 and the counter: every write of the counter, in revision order.
  const writes = input.history
    .filter((e) => e.key === input.counterKey)
    .sort((a, b) => (a.rev < b.rev ? -1 : 1));
  const appliedIds = new Map<string, { rev: bigint; record: EffectRecord }>();
  let counter = 0;
  let lastToken: bigint | undefined;
  for (const write of writes) {
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
    if (permits === 1 && lastToken !== undefined && token < lastToken) {
      flag('R2', `effect ${record.id} with token ${token} accepted after a write with token ${lastToken}`, record.c);
    }
    lastToken = lastToken === undefined ? token : max(lastToken, token);
  }

  // Effects as the clients saw them.
  let acknowledged = 0;
  let ambiguousApplied = 0;
  let fencedRejections = 0;
  const acqByToken = new Map(acquisitions.map((a) => [`${a.client}@${a.token}`, a]));
  for (const line of logs) {
    if (line.op !== 'effect' || !line.id) continue;
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
    } else if (line.ev === 'invoke' && line.token !== undefined) {
      // An effect that applied must have been started inside its holder's window.
      const acq = acqByToken.get(`${line.c}@${line.token}`);
      if (applied && acq && BigInt(line.t) < acq.start) {
        flag('R2', `${line.c} started effect ${line.id} before it reported holding token ${line.token}`, line.c);
      }
    }
  }
  if (counter !== appliedIds.size) {
    flag('counter', `the counter is ${counter} but ${appliedIds.size} effects applied`);
  }

  // Every key under the lock's prefix (queue, holders, records) must be gone at the end.
  const alive = new Map<string, bigint>();
  for (const event of [...input.history].sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0))) {
    if (!event.key.startsWith(input.lockPrefix)) continue;
    if (event.type === 'put') alive.set(event.key, event.createRevision);
    else alive.delete(event.key);
  }
  const leaked = [...alive].map(([key, rev]) => `${key}@${rev}`);
  if ((input.checkLeaks ?? true) && leaked.length > 0) flag('leak', `contender keys left at the end: ${leaked.join(', ')}`);

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
  };
}

/** A readable summary of a check, for test failure messages and logs. */
export function describe(result: CheckResult): string {
  const lines = [
    `acquisitions ${result.acquisitions.length}, early revocations by etcd ${result.earlyRevocations.length}, effects applied ${result.applied} (acknowledged ${result.acknowledged}, ambiguous-applied ${result.ambiguousApplied}), counter ${result.counter}, fenced rejections ${result.fencedRejections}, max concurrent ${result.maxConcurrent}`,
    ...result.violations.slice(0, 20).map((v) => `  ${v.rule}: ${v.message}${v.server ? ` [server fault: ${v.server}]` : ''}`),
  ];
  if (result.violations.length > 20) lines.push(`  … ${result.violations.length - 20} more`);
  return lines.join('\n');
}
