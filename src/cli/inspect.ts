/**
 * `leasehold status` and `leasehold observe`: who holds a name and who waits, once or as it changes,
 * read from the keys alone (no lease is taken), so they work on names that Go services and
 * `etcdctl lock`/`elect` use too.
 */
import type { Namespace } from 'etcd3';
import { Election } from '../election.js';
import { leaseHex } from '../engine/keys.js';
import { staticOps } from '../engine/inspect.js';
import { sessionDefaults } from '../session-options.js';
import type { Contender, PermitContender, QueueState, RwContender } from '../engine/inspect.js';
import { Mutex } from '../mutex.js';
import { ReadWriteLock } from '../rw-lock.js';
import { Semaphore } from '../semaphore.js';
import { EtcdUnavailableError } from '../errors.js';
import { connect, type ConnectionFlags } from './connect.js';
import { stdout } from './output.js';
import { Reporter, toJson, type ReportFlags } from './report.js';

/** The kinds `status` and `observe` know, by their `--kind` names. */
export const kinds = ['mutex', 'rwlock', 'semaphore', 'election'] as const;
export type Kind = (typeof kinds)[number];

type AnyContender = Contender & Partial<Pick<RwContender, 'mode'>> & Partial<Omit<PermitContender, keyof Contender>>;

/** A contender as `status`/`observe` print it. */
interface Shown {
  key: string;
  token: bigint;
  leaseId: string;
  leaseHex: string;
  /** Seconds the lease has left (status only); `null` when unknown, `-1` when it has expired. */
  ttl?: number | null;
  value?: string;
  mode?: 'read' | 'write';
  weight?: number;
  permits?: number;
  problem?: string;
}

function shown(kind: Kind, c: AnyContender): Shown {
  const s: Shown = { key: c.key, token: c.token, leaseId: c.leaseId, leaseHex: c.leaseHex };
  if (kind === 'election') s.value = c.value;
  if (c.mode !== undefined) s.mode = c.mode;
  if (kind === 'semaphore') {
    if (c.weight !== undefined) s.weight = c.weight;
    if (c.permits !== undefined) s.permits = c.permits;
    if (c.problem !== undefined) s.problem = c.problem;
  }
  return s;
}

export async function readQueue(ns: Namespace, kind: Kind, name: string, signal: AbortSignal): Promise<QueueState<AnyContender>> {
  switch (kind) {
    case 'mutex':
      return Mutex.queue(ns, name, { signal });
    case 'rwlock':
      return ReadWriteLock.queue(ns, name, { signal });
    case 'semaphore':
      return Semaphore.queue(ns, name, { signal });
    case 'election':
      return Election.queue(ns, name, { signal });
  }
}

/**
 * Seconds left of each lease (`-1` expired, `null` unknown), one `LeaseTimeToLive` per distinct lease;
 * a read still unanswered when `signal` aborts is unknown, so `status` never outlives its deadline.
 */
export async function ttls(ns: Namespace, leases: readonly string[], signal: AbortSignal): Promise<Map<string, number | null>> {
  const distinct = [...new Set(leases.filter((l) => l !== '0'))];
  const { ops } = staticOps(ns, {}, 'leasehold status', [], sessionDefaults);
  const answers = await Promise.all(
    distinct.map(async (id) => {
      try {
        const res = await ops.leaseTimeToLive(id, signal);
        return [id, res.ttl] as const;
      } catch {
        return [id, null] as const;
      }
    }),
  );
  return new Map(answers);
}

function line(kind: Kind, label: string, s: Shown): string {
  const parts = [label.padEnd(9), s.key, `token ${s.token}`, s.leaseId === '0' ? 'no lease (never expires)' : `lease ${s.leaseHex}`];
  if (s.ttl !== undefined && s.leaseId !== '0') parts.push(s.ttl === null ? 'ttl ?' : s.ttl < 0 ? 'expired' : `ttl ${s.ttl}s`);
  if (s.mode !== undefined) parts.push(s.mode);
  if (kind === 'semaphore') parts.push(s.problem !== undefined ? `invalid record: ${s.problem}` : `weight ${s.weight}/${s.permits}`);
  if (s.value !== undefined) parts.push(`value ${JSON.stringify(s.value)}`);
  return `  ${parts.join('  ')}`;
}

/** How long `status` may take to read the queue and its leases' TTLs, and `observe` its first state. */
export const answerTimeoutMs = 10_000;

/** An etcd that accepts connections (or not) and never answers: named, as every unreachable etcd is. */
export function silent(endpoints: readonly string[], cause?: unknown): EtcdUnavailableError {
  return new EtcdUnavailableError(`etcd at ${endpoints.join(', ')} did not answer within ${answerTimeoutMs / 1000} s`, { endpoints, code: 'DEADLINE_EXCEEDED', cause });
}

/** The signals that end `observe` (exit 0); others have their default action (it holds nothing). */
const observeEndSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** `leasehold status`: prints the queue once (text, or JSON with `--json`) and resolves with the exit code. */
export async function status(kind: Kind, name: string, flags: ConnectionFlags & ReportFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return connected({ kind, name }, flags, env, async (ns, endpoints) => {
    const signal = AbortSignal.timeout(answerTimeoutMs);
    const queue = await readQueue(ns, kind, name, signal).catch((error: unknown) => {
      throw signal.aborted ? silent(endpoints, error) : error;
    });
    const left = await ttls(ns, [...queue.holders, ...queue.waiters].map((c) => c.leaseId), signal);
    const show = (c: AnyContender): Shown => ({ ...shown(kind, c), ttl: c.leaseId === '0' ? null : (left.get(c.leaseId) ?? null) });
    const holders = queue.holders.map(show);
    const waiters = queue.waiters.map(show);
    if (flags.json) {
      stdout.line(toJson({ kind, name, revision: queue.revision, holders, waiters }));
      return 0;
    }
    const state = holders.length === 0 ? 'free' : kind === 'election' ? 'led' : 'held';
    const out = [`${kind} ${JSON.stringify(name)} at revision ${queue.revision}: ${state}, ${waiters.length} waiting`];
    for (const h of holders) out.push(line(kind, kind === 'election' ? 'leader' : 'holder', h));
    waiters.forEach((w, i) => out.push(line(kind, `waiter ${i + 1}`, w)));
    stdout.line(out.join('\n'));
    return 0;
  });
}

/**
 * Runs `work` with a client for `flags`, closing it afterwards; an error is reported (one line on
 * stderr, with `fields`) and becomes the exit code.
 */
export async function connected(
  fields: Record<string, unknown>,
  flags: ConnectionFlags & ReportFlags,
  env: NodeJS.ProcessEnv,
  work: (ns: Namespace, endpoints: string[]) => Promise<number>,
): Promise<number> {
  let close = (): void => undefined;
  try {
    const { client, ns, endpoints } = connect(flags, env);
    close = () => client.close();
    return await work(ns, endpoints);
  } catch (error) {
    return new Reporter(flags).failure(error, fields);
  } finally {
    close();
  }
}

function follow(ns: Namespace, kind: Kind, name: string, signal: AbortSignal): AsyncIterable<AnyContender[]> {
  const one = async function* (source: AsyncIterable<AnyContender | null>): AsyncGenerator<AnyContender[]> {
    for await (const c of source) yield c === null ? [] : [c];
  };
  switch (kind) {
    case 'mutex':
      return one(Mutex.observe(ns, name, { signal }));
    case 'rwlock':
      return ReadWriteLock.observe(ns, name, { signal });
    case 'semaphore':
      return Semaphore.observe(ns, name, { signal });
    case 'election':
      return (async function* () {
        for await (const l of Election.observe(ns, name, { signal, vacancies: true })) {
          yield l === null ? [] : [{ key: l.key, token: l.term, leaseId: l.leaseId, leaseHex: leaseHex(l.leaseId), value: l.value }];
        }
      })();
  }
}

/**
 * `leasehold observe`: prints the holders (the leader, for an election) now and at every change, one
 * JSON object a line on stdout, until SIGINT/SIGTERM/SIGHUP or until nobody reads its stdout any more
 * (`observe NAME | head -1`); then exits 0.
 */
export async function observe(kind: Kind, name: string, flags: ConnectionFlags & ReportFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  for (const s of observeEndSignals) process.on(s, onSignal);
  const unsubscribe = stdout.onClosed(onSignal);
  try {
    return await connected({ kind, name }, flags, env, async (ns, endpoints) => {
      // The first state comes within the deadline, or etcd is unreachable; later, outages are ridden out.
      let unanswered = false;
      const first = setTimeout(() => {
        unanswered = true;
        stop.abort();
      }, answerTimeoutMs);
      try {
        for await (const holders of follow(ns, kind, name, stop.signal)) {
          clearTimeout(first);
          stdout.line(toJson({ time: new Date().toISOString(), kind, name, holders: holders.map((c) => shown(kind, c)) }));
        }
      } finally {
        clearTimeout(first);
      }
      if (unanswered) throw silent(endpoints);
      return 0;
    });
  } finally {
    unsubscribe();
    for (const s of observeEndSignals) process.off(s, onSignal);
  }
}
