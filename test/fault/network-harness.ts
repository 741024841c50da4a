/**
 * What the network fault scenarios share: whether this machine can run them (Linux, root, iproute2),
 * a scenario on a cluster whose members live in network namespaces, and the figures they log —
 * loss-detection times, acquisitions per second in a window, call durations.
 */
import { expect } from 'vitest';
import { describe as describeCheck, type CheckResult } from './checker.js';
import { isHealthy, pollUntil } from '../../src/testing/http.js';
import { describeNetwork as describeNetworkTests } from '../network-available.js';
import { sumMetric, type EtcdMember, type EtcdNetwork } from '../../src/testing/index.js';
import { at, type ClientProc, nsToMs, type Scenario, type ScenarioOptions } from './harness.js';
import type { ClientConfig, LogEvent } from './protocol.js';

/** The TTL of every network scenario's clients, in seconds, and their per-call deadline, in ms. */
export const TTL = 2;
export const REQUEST_TIMEOUT = 1000;
/** How long a split lasts (`NETWORK_SPLIT_S` for a long run). */
export const SPLIT_S = Number(process.env['NETWORK_SPLIT_S'] ?? 6);
/** Every client's etcd options: leasehold retries by itself (etcd3's breakers off), calls of 1 s. */
export const base: Partial<ClientConfig> = { requestTimeout: REQUEST_TIMEOUT, etcd3Faults: 'none' };

/** The checker found nothing, and never more than `permits` held at once. */
export function expectSafe(result: CheckResult, s: Scenario, permits = 1): void {
  const dir = s.save(result);
  expect(result.violations, `${describeCheck(result)}\nlogs: ${dir}`).toEqual([]);
  expect(result.maxConcurrent).toBeLessThanOrEqual(permits);
  expect(result.counter).toBe(result.applied);
}

/** The first `lost` line of `c` after `from`, if any. */
export const lostAfter = (c: ClientProc, from: LogEvent): LogEvent | undefined => c.lines.find((l) => l.ev === 'lost' && at(l) > at(from));

/** A describe block of network scenarios (see test/network-available.ts: skipped without root, saying so; red in CI). */
export function describeNetwork(name: string, body: () => void): void {
  describeNetworkTests(name, 180_000, body);
}

/** Scenario options for a networked cluster with these sides. */
export function networked(ttl: number, sides: string[]): ScenarioOptions {
  return { ttl, etcd: { network: { sides } } };
}

/** The scenario's network (it was started with `networked`). */
export function netOf(s: Scenario): EtcdNetwork {
  const network = s.etcd.network;
  if (network === undefined) throw new Error(`scenario ${s.name} has no network`);
  return network;
}

/** Seconds from `from` to each line, formatted. */
export const after = (from: LogEvent, lines: readonly LogEvent[]): string =>
  lines.map((l) => `${l.c} ${(nsToMs(at(l) - at(from)) / 1000).toFixed(2)} s`).join(', ');

/** Lines of `clients` that match, between `from` and `to` (hrtime ns). */
export function between(s: Scenario, clients: readonly string[], match: (l: LogEvent) => boolean, from: bigint, to: bigint): LogEvent[] {
  return s.find((l) => clients.includes(l.c) && match(l) && at(l) >= from && at(l) <= to);
}

/** How long each `op` of `clients` that started in [from, to] took, invoke to ok or fail, in ms. */
export function durations(s: Scenario, clients: readonly string[], op: string, from: bigint, to: bigint): number[] {
  const out: number[] = [];
  for (const c of clients) {
    const lines = s.find((l) => l.c === c && l.op === op);
    lines.forEach((l, i) => {
      if (l.ev !== 'invoke' || at(l) < from || at(l) > to) return;
      const done = lines.slice(i + 1).find((d) => d.ev === 'ok' || d.ev === 'fail');
      if (done) out.push(nsToMs(at(done) - at(l)));
    });
  }
  return out.sort((a, b) => a - b);
}

/** The `q` quantile (0..1) of sorted `values`, or NaN. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  return values[Math.min(values.length - 1, Math.floor(q * values.length))]!;
}

/** Acquisitions per second of `clients` in [from, to]. */
export function rate(s: Scenario, clients: readonly string[], from: bigint, to: bigint): number {
  const n = between(s, clients, (l) => l.op === 'acquire' && l.ev === 'ok', from, to).length;
  return n / (nsToMs(to - from) / 1000);
}

/**
 * Waits until `member` has a leader and serves a quorum read again (etcd's `/health`, through the admin
 * side) — after a heal its peers' TCP connections resume only at their next retransmission, seconds
 * later — and logs it as `rejoined`.
 */
export async function rejoined(s: Scenario, member: EtcdMember, timeoutMs = 30_000): Promise<LogEvent> {
  await pollUntil(async () => ((await isHealthy(member.metricsUrl, 500)) ? true : undefined), { timeoutMs, intervalMs: 50, what: `${member.name} to rejoin` });
  return s.fault('rejoined', { target: member.name });
}

/**
 * Hand-offs of a lock among `clients` in [from, to]: for each acquisition, the ms since the previous
 * holder started its release (acquisitions that followed no release, such as the first, are skipped).
 */
export function handoffs(s: Scenario, clients: readonly string[], from: bigint, to: bigint): number[] {
  const events = s.find((l) => clients.includes(l.c) && ((l.op === 'release' && l.ev === 'invoke') || isOkAcquire(l)));
  const out: number[] = [];
  let released: bigint | undefined;
  for (const l of events) {
    if (l.op === 'release') released = at(l);
    else {
      if (released !== undefined && at(l) >= from && at(l) <= to) out.push(nsToMs(at(l) - released));
      released = undefined;
    }
  }
  return out.sort((a, b) => a - b);
}

const isOkAcquire = (l: LogEvent): boolean => l.op === 'acquire' && l.ev === 'ok';

/** p50 / p99 / max of `values` (ms), for the log. */
export const spread = (values: readonly number[]): string =>
  values.length === 0 ? 'none' : `p50 ${quantile(values, 0.5).toFixed(0)} ms, p99 ${quantile(values, 0.99).toFixed(0)} ms, max ${quantile(values, 1).toFixed(0)} ms (${values.length})`;

/**
 * How many watch streams each member serves now (etcd's `etcd_debugging_mvcc_watch_stream_total`),
 * less those counted in `before` (the history recorder's, read before the clients started).
 */
export async function watchStreams(s: Scenario, before?: ReadonlyMap<EtcdMember, number>): Promise<Map<EtcdMember, number>> {
  const counts = new Map<EtcdMember, number>();
  for (const m of s.etcd.members) counts.set(m, sumMetric(await s.etcd.metrics(m), 'etcd_debugging_mvcc_watch_stream_total') - (before?.get(m) ?? 0));
  return counts;
}

/** The member that serves the most of `streams` (from {@link watchStreams}). */
export const busiest = (streams: ReadonlyMap<EtcdMember, number>): EtcdMember =>
  [...streams].reduce((best, next) => (next[1] > best[1] ? next : best))[0];

/** `m0 2, m1 1, m2 1`, for the log. */
export const showStreams = (streams: ReadonlyMap<EtcdMember, number>): string => [...streams].map(([m, n]) => `${m.name} ${n}`).join(', ');

/**
 * Makes `member` the raft leader, if it is not (etcd's MoveLeader, through the current leader), and
 * logs the leader the fault starts from. A loaded machine can change leaders on its own (250 ms
 * election timeout): call this right before a fault that depends on who leads.
 */
export async function lead(s: Scenario, member: EtcdMember): Promise<void> {
  const current = await s.etcd.leader();
  if (current !== member) {
    const client = s.etcd.client({ hosts: [current.clientUrl] });
    try {
      const { members } = await client.cluster.memberList({});
      const target = members.find((m) => m.name === member.name);
      if (!target) throw new Error(`no etcd member named ${member.name}`);
      await client.maintenance.moveLeader({ targetID: target.ID });
    } finally {
      client.close();
    }
    await pollUntil(async () => ((await s.etcd.leader()) === member ? true : undefined), { timeoutMs: 10_000, intervalMs: 25, what: `${member.name} to lead` });
  }
  s.fault('leader', { target: member.name, moved: current !== member });
}

/**
 * Sessions of `clients` lost in [from, to] that were healthy at `from`: their deadline, as last logged
 * before it, was at least `aheadMs` past it. (A session whose keep-alives were already late when the
 * fault began — a process starved of CPU by other work on the machine — is not the fault's doing; the
 * checker's loss rule judges those.)
 */
export function healthyLost(s: Scenario, clients: readonly string[], from: bigint, to: bigint, aheadMs = 1000): LogEvent[] {
  return between(s, clients, (l) => l.ev === 'lost', from, to).filter((lost) => {
    const before = s.find((l) => l.c === lost.c && l.lease === lost.lease && l.deadline !== undefined && at(l) <= from).at(-1);
    return before !== undefined && BigInt(before.deadline!) >= from + BigInt(aheadMs) * 1_000_000n;
  });
}

/**
 * The first `observe` line of `c` that names `leader` or a later one (a higher term): an observer
 * that catches up late may skip a short term, and reports the latest.
 */
export function followed(c: ClientProc, leader: LogEvent | undefined): LogEvent | undefined {
  if (leader?.token === undefined) return undefined;
  const term = BigInt(leader.token);
  return c.lines.find((l) => l.op === 'observe' && l.token !== undefined && BigInt(l.token) >= term);
}
