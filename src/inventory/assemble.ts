/**
 * From classified keys to primitives (the second step of `listPrimitives`): keys grouped by kind and
 * name, each group read by the same view its primitive's own `queue()` uses, so a listing never
 * disagrees with `Mutex.queue(…)` & co. Pure: the same keys always give the same listing.
 *
 * - A group whose every key has a problem is no primitive: its keys are foreign (a hostile key never
 *   becomes a holder). A group with at least one sound key lists its keys with problems in place, in
 *   queue order, since the primitive's own code counts them too.
 * - A Mutex or Election queue counts every key one segment below its name: a foreign key or a
 *   would-be barrier there is listed in that queue (with a problem), as the lock sees it.
 * - Keys of several lock queues with one lease and one create revision were written by one txn: a
 *   MultiLock. Each carries `multiLock`, the names it holds or waits for together.
 */
import { contender, firstHolds, inQueueOrder, permitHolders, rwHolders, type Contender } from '../engine/inspect.js';
import { leaseHex } from '../engine/keys.js';
import type { Kv } from '../transport/etcd.js';
import { classify, displayKey, type Part } from './layout.js';


/** The kinds a listing knows. A Mutex and an Election share a layout: keys with values are an election. */
export type ListedKind = 'mutex' | 'election' | 'rwlock' | 'semaphore' | 'barrier' | 'double-barrier';

/** A key of a listed primitive: a {@link Contender} with what its layout adds. */
export interface ListedContender extends Contender {
  /** ReadWriteLock: a reader's or a writer's key. */
  mode?: 'read' | 'write';
  /** Semaphore: the permits this key holds or waits for (absent when its record is invalid). */
  weight?: number;
  /** Semaphore: the total permits its participant recorded (absent when its record is invalid). */
  permits?: number;
  /** The names of the MultiLock this key belongs to (same lease and create revision on each), when it does. */
  multiLock?: string[];
  /** Why this key is not what its layout promises (listed where its primitive's code would meet it). */
  problem?: string;
}

/** A Semaphore's permits, as its keys record them. */
export interface PermitsUsed {
  /** The sum of the weights of the holders whose records are valid. */
  used: number;
  /** The total every valid record agrees on; `undefined` when they disagree. */
  total: number | undefined;
}

/** A DoubleBarrier's open round, as its record says. */
export interface OpenRound {
  /** The record's key, `${name}/ready`. */
  key: string;
  /** The record's create revision: the round's id. */
  token: bigint;
  /** How many participants make the round; `undefined` for Go's empty record. */
  count: number | undefined;
  /** Why the record is not a valid round record, when it is not. */
  problem?: string;
}

/** One primitive under the prefix, as its keys show it. */
export interface ListedPrimitive {
  /** What it is. */
  kind: ListedKind;
  /** The name (relative to the namespace). */
  name: string;
  /**
   * Who holds: a Mutex's holder, an Election's leader (its token is the term, its value the leader's),
   * a ReadWriteLock's readers or writer, a Semaphore's admitted acquisitions, a raised Barrier's key,
   * a DoubleBarrier's members of the open round.
   */
  holders: ListedContender[];
  /** Who waits, in the order they will be served (a DoubleBarrier's participants outside the round). */
  waiters: ListedContender[];
  /** Semaphore: the permits used and the total. */
  permits?: PermitsUsed;
  /** DoubleBarrier: the open round, when there is one. */
  round?: OpenRound;
}

/** A key under the prefix that is no primitive's, or whose record is not valid. */
export interface ForeignKey {
  /** The key as text; bytes that are not UTF-8 are shown as `\xNN`. */
  key: string;
  /** Its create revision. */
  token: bigint;
  /** Its lease, etcd's decimal string; `'0'` for none. */
  leaseId: string;
  /** The same lease in hex (`'0'` for none). */
  leaseHex: string;
  /** The size of its value, in bytes (the value itself is not listed). */
  valueBytes: number;
  /** Why it is foreign. */
  reason: string;
}

interface Group {
  kind: Part['kind'];
  name: string;
  entries: { kv: Kv; part: Part }[];
}

function foreign(kv: Kv, reason: string): ForeignKey {
  return { key: displayKey(kv.bytes), token: kv.createRevision, leaseId: kv.lease, leaseHex: leaseHex(kv.lease), valueBytes: kv.value.length, reason };
}

/** Groups the keys by what they are part of; foreign keys apart. Keys come in queue order. */
function group(kvs: readonly Kv[]): { groups: Map<string, Group>; foreignKeys: { kv: Kv; reason: string }[] } {
  const groups = new Map<string, Group>();
  const foreignKeys: { kv: Kv; reason: string }[] = [];
  for (const kv of kvs) {
    const part = classify(kv);
    if (part.kind === 'foreign') {
      foreignKeys.push({ kv, reason: part.reason });
      continue;
    }
    const id = `${part.kind}\0${part.name}`;
    const g = groups.get(id) ?? { kind: part.kind, name: part.name, entries: [] };
    g.entries.push({ kv, part });
    groups.set(id, g);
  }
  return { groups, foreignKeys };
}

/** The UTF-8 text of the key's bytes before its last `/` (undefined when there is none, or it is not UTF-8). */
function parentOf(kv: Kv): string | undefined {
  const at = kv.bytes.lastIndexOf(0x2f);
  if (at <= 0) return undefined;
  const bytes = kv.bytes.subarray(0, at);
  const text = bytes.toString();
  return Buffer.from(text).equals(bytes) ? text : undefined;
}

/**
 * A lock queue counts every key one segment below its name: barriers and foreign keys there join it,
 * with a problem; an empty `N/ready` with no participants is a barrier named so, not a round.
 * `rank` is each key's place in queue order.
 */
function settle(groups: Map<string, Group>, foreignKeys: { kv: Kv; reason: string }[], rank: Map<Kv, number>): { kv: Kv; reason: string }[] {
  for (const [id, g] of groups) {
    if (g.kind === 'double-barrier' && g.entries.every((e) => 'role' in e.part && e.part.role === 'record' && e.kv.value.length === 0)) {
      groups.delete(id);
      for (const e of g.entries) groups.set(`barrier\0${e.kv.key}`, { kind: 'barrier', name: e.kv.key, entries: [{ kv: e.kv, part: { kind: 'barrier', name: e.kv.key } }] });
    }
  }
  const queues = new Map([...groups.values()].filter((g) => g.kind === 'queue' && g.entries.some((e) => e.part.problem === undefined)).map((g) => [g.name, g]));
  const joined = new Set<Group>();
  const join = (kv: Kv, problem: string): boolean => {
    const parent = parentOf(kv);
    const q = parent === undefined ? undefined : queues.get(parent);
    if (q === undefined) return false;
    q.entries.push({ kv, part: { kind: 'queue', name: q.name, problem: `${problem}, but the lock counts it as a contender` } });
    joined.add(q);
    return true;
  };
  for (const [id, g] of groups) {
    if (g.kind === 'barrier' && join(g.entries[0]!.kv, 'not a lock key (no lease in its name)')) groups.delete(id);
  }
  const left = foreignKeys.filter((f) => !join(f.kv, f.reason));
  for (const q of joined) q.entries.sort((x, y) => rank.get(x.kv)! - rank.get(y.kv)!);
  return left;
}

/** The primitive a settled group of sound keys (and keys with problems) is. */
function primitive(g: Group): ListedPrimitive {
  const kvs = g.entries.map((e) => e.kv);
  const view = <T extends Contender>(v: { holders: T[]; waiters: T[] }): Pick<ListedPrimitive, 'holders' | 'waiters'> => {
    const problems = new Map(g.entries.map((e) => [e.kv, e.part.problem]));
    const at = new Map(kvs.map((kv) => [kv.key + '\0' + String(kv.createRevision), kv]));
    const mark = (c: T): ListedContender => {
      const kv = at.get(c.key + '\0' + String(c.token))!;
      const problem = problems.get(kv);
      return problem === undefined || 'problem' in c ? c : { ...c, key: displayKey(kv.bytes), problem };
    };
    return { holders: v.holders.map(mark), waiters: v.waiters.map(mark) };
  };
  switch (g.kind) {
    case 'queue':
      return { kind: g.entries.some((e) => e.part.problem === undefined && e.kv.value.length > 0) ? 'election' : 'mutex', name: g.name, ...view(firstHolds(kvs)) };
    case 'rwlock':
      return { kind: 'rwlock', name: g.name, ...view(rwHolders(kvs, `${g.name}/write/`)) };
    case 'semaphore': {
      const listed = view(permitHolders(kvs, `${g.name}/holders/`));
      const totals = new Set([...listed.holders, ...listed.waiters].flatMap((c) => (c.permits === undefined ? [] : [c.permits])));
      const used = listed.holders.reduce((sum, c) => sum + (c.weight ?? 0), 0);
      return { kind: 'semaphore', name: g.name, ...listed, permits: { used, total: totals.size === 1 ? [...totals][0] : undefined } };
    }
    case 'double-barrier':
      return doubleBarrier(g);
    case 'barrier':
      return { kind: 'barrier', name: g.name, ...view({ holders: kvs.map(contender), waiters: [] }) };
  }
}

function doubleBarrier(g: Group): ListedPrimitive {
  const record = g.entries.find((e) => e.part.kind === 'double-barrier' && e.part.role === 'record');
  const waiters = g.entries.filter((e) => e !== record);
  const listed = (e: Group['entries'][number]): ListedContender => (e.part.problem === undefined ? contender(e.kv) : { ...contender(e.kv), problem: e.part.problem });
  if (record === undefined || record.part.kind !== 'double-barrier' || record.part.role !== 'record') {
    return { kind: 'double-barrier', name: g.name, holders: [], waiters: waiters.map(listed) };
  }
  const { members, count } = record.part;
  const inRound = (kv: Kv): boolean => (members === undefined ? kv.createRevision < record.kv.createRevision : members.includes(kv.createRevision));
  const round = { key: record.kv.key, token: record.kv.createRevision, count, ...(record.part.problem === undefined ? {} : { problem: record.part.problem }) };
  return {
    kind: 'double-barrier',
    name: g.name,
    holders: waiters.filter((e) => inRound(e.kv)).map(listed),
    waiters: waiters.filter((e) => !inRound(e.kv)).map(listed),
    round,
  };
}

/** Marks lock keys that one txn wrote on several names (one lease, one create revision): a MultiLock. */
function markMultiLocks(primitives: ListedPrimitive[]): void {
  const byTxn = new Map<string, string[]>();
  const locks = primitives.filter((p) => p.kind === 'mutex' || p.kind === 'election');
  for (const p of locks) {
    for (const c of [...p.holders, ...p.waiters]) {
      if (c.leaseId === '0' || c.problem !== undefined) continue;
      const id = `${c.leaseId}@${c.token}`;
      byTxn.set(id, [...(byTxn.get(id) ?? []), p.name]);
    }
  }
  for (const p of locks) {
    for (const c of [...p.holders, ...p.waiters]) {
      const names = byTxn.get(`${c.leaseId}@${c.token}`);
      if (names !== undefined && names.length > 1) c.multiLock = [...names].sort();
    }
  }
}

/** Every primitive and every foreign key among `kvs` (keys relative to the namespace). */
export function assemble(kvs: readonly Kv[]): { primitives: ListedPrimitive[]; foreign: ForeignKey[] } {
  const ordered = inQueueOrder([...kvs]);
  const rank = new Map(ordered.map((kv, i) => [kv, i]));
  const grouped = group(ordered);
  const { groups } = grouped;
  const foreignKeys = settle(groups, grouped.foreignKeys, rank);
  const primitives: ListedPrimitive[] = [];
  for (const g of groups.values()) {
    if (g.entries.some((e) => e.part.problem === undefined)) primitives.push(primitive(g));
    else for (const e of g.entries) foreignKeys.push({ kv: e.kv, reason: e.part.problem! });
  }
  markMultiLocks(primitives);
  primitives.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.kind < b.kind ? -1 : 1));
  foreignKeys.sort((x, y) => rank.get(x.kv)! - rank.get(y.kv)!);
  return { primitives, foreign: foreignKeys.map((f) => foreign(f.kv, f.reason)) };
}
