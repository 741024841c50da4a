/**
 * The contention loop every lock-like scenario shares: N workers (each its own etcd client, and for
 * leasehold its own Session, as separate services would have), released together, each looping
 * acquire → release on one name until the row has its acquisitions. Timing is `performance.now()`
 * in this one process, so release and the next acquisition are on the same monotonic clock.
 */
import type { Etcd3 } from 'etcd3';
import type { EtcdCluster } from '../../src/testing/index.js';
import { figures, missingSeries, type EtcdFigures, type Snapshot } from './etcd-counters.js';
import { exclusiveHandoffs, quantiles, sharedHandoffs, type Quantiles, type Sample } from './stats.js';

/** What a scenario gets from the runner. */
export interface BenchContext {
  etcd: EtcdCluster;
  /** Session / lock TTL in seconds for the lock scenarios. */
  ttl: number;
  /** Lease TTL in seconds for the failover scenarios. */
  failoverTtl: number;
  /** A new `etcd3` client with connections of its own (not shared with other clients). */
  client(): Etcd3;
  /** Progress to stderr. */
  log(message: string): void;
  /** A unique key prefix for a row, so rows never see each other's keys. */
  unique(base: string): string;
}

/** One row of the results. */
export interface Row {
  scenario: string;
  /** Human name of the row. */
  label: string;
  workers: number | null;
  status: 'ok' | 'pending' | 'failed';
  /** Why a row is pending or failed. */
  reason?: string;
  /** Acquisitions (or events) measured. */
  ops?: number;
  seconds?: number;
  opsPerSec?: number | null;
  /** Latency of `acquire()` (call → resolved), ms. */
  acquire?: Quantiles;
  /** Release resolved → next holder's acquire resolved, ms (see stats.ts). */
  handoff?: Quantiles;
  /** `release()` called → resolved, ms (the hold itself is 0 ms). */
  release?: Quantiles;
  etcd?: EtcdFigures;
  /** Row-specific figures (attempts per acquisition, memory, …). */
  extra?: Record<string, unknown>;
  notes?: string[];
}

export interface Held {
  release(): Promise<void>;
  /** Instants to keep with the sample (see Sample.marks). */
  marks?: Record<string, number>;
}

export interface Participant {
  acquire(): Promise<Held>;
  close(): Promise<void>;
  /** Attempts made so far (for polled locks). */
  attempts?(): number;
}

export interface ContentionSpec {
  scenario: string;
  label: string;
  workers: number;
  ops: number;
  /** Stop starting new acquisitions after this long (the row is then marked capped). */
  maxSeconds: number;
  handoff: 'exclusive' | 'shared';
  open(index: number): Promise<Participant>;
  /** Extra figures computed from the samples. */
  describe?(samples: readonly Sample[], participants: readonly Participant[]): Record<string, unknown>;
}

/** Touches the KV and Watch services so the first measured call does not pay for connecting. */
export async function warm(client: Etcd3): Promise<void> {
  await client.get('bench/warmup').exec();
  const watcher = await client.watch().key('bench/warmup').create();
  await watcher.cancel();
}

const settleGraceMs = 30_000;

/** Runs one contention row and returns it (status `failed` with the error instead of throwing). */
export async function runContention(ctx: BenchContext, spec: ContentionSpec): Promise<Row> {
  const base = { scenario: spec.scenario, label: spec.label, workers: spec.workers };
  const participants: Participant[] = [];
  try {
    const opened = await Promise.allSettled(Array.from({ length: spec.workers }, (_, i) => spec.open(i)));
    for (const o of opened) if (o.status === 'fulfilled') participants.push(o.value);
    const failedOpen = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failedOpen) throw failedOpen.reason;

    const samples: Sample[] = [];
    let acquired = 0;
    let stop = false;
    let firstError: unknown;
    const before = await ctx.etcd.metrics();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + spec.maxSeconds * 1000;
    let capped = false;
    const more = (): boolean => {
      if (stop) return false;
      if (acquired >= spec.ops) return false;
      if (performance.now() >= deadline) {
        capped = true;
        return false;
      }
      return true;
    };
    const loops = participants.map(async (p, worker) => {
      try {
        while (more()) {
          const start = performance.now();
          const held = await p.acquire();
          const got = performance.now();
          acquired++;
          await held.release();
          const released = performance.now();
          samples.push({ worker, start, acquired: got, released, ...(held.marks ? { marks: held.marks } : {}) });
        }
      } catch (error) {
        firstError ??= error;
        stop = true;
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((resolve) => {
      timer = setTimeout(() => resolve('hung'), spec.maxSeconds * 1000 + settleGraceMs);
    });
    const outcome = await Promise.race([Promise.all(loops), hung]);
    clearTimeout(timer);
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    if (outcome === 'hung') throw new Error(`workers did not finish within ${spec.maxSeconds + settleGraceMs / 1000} s`);
    if (firstError !== undefined) throw firstError;
    const after = await ctx.etcd.metrics();
    const missing = missingSeries(after);
    const n = samples.length;
    const seconds = (t1 - t0) / 1000;
    const handoffs = spec.handoff === 'exclusive' ? exclusiveHandoffs(samples) : sharedHandoffs(samples);
    const notes: string[] = [];
    if (capped) notes.push(`capped at ${spec.maxSeconds} s: ${n} of ${spec.ops} acquisitions`);
    if (missing.length > 0) notes.push(`etcd lacks ${missing.join(', ')}`);
    return {
      ...base,
      status: 'ok',
      ops: n,
      seconds,
      opsPerSec: n / seconds,
      acquire: quantiles(samples.map((s) => s.acquired - s.start)),
      handoff: quantiles(handoffs),
      release: quantiles(samples.map((s) => s.released - s.acquired)),
      etcd: figures(before, after, n),
      extra: {
        capped,
        // The bench process's CPU (every worker's client together), per acquisition and as a share of one core.
        clientCpuMsPerAcq: (cpu.user + cpu.system) / 1000 / n,
        clientCpuShare: (cpu.user + cpu.system) / 1000 / (t1 - t0),
        ...(spec.describe?.(samples, participants) ?? {}),
      },
      notes,
    };
  } catch (error) {
    return { ...base, status: 'failed', reason: describeError(error) };
  } finally {
    await Promise.allSettled(participants.map(async (p) => p.close()));
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message.split('\n')[0]}`;
  return String(error);
}

/** Counter deltas without per-acquisition division, for scenarios that count their own units. */
export function perUnit(before: Snapshot, after: Snapshot, units: number): EtcdFigures {
  return figures(before, after, units);
}
