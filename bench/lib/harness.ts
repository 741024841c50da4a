/**
 * The pieces every scenario shares.
 *
 * A row of the results is measured in parts: `run.ts` runs every comparable row once in order, then
 * again in reverse order, each time with half the acquisitions, and merges the two parts. On a shared
 * machine whose load drifts, rows compared with each other (leasehold vs etcd3, handoff vs floor) are
 * then measured around the same moments on average, instead of one early and one late.
 *
 * The contention loop: N workers (each its own etcd client, and for leasehold its own Session, as
 * separate services would have), released together, each looping acquire → release on one name until
 * the part has its acquisitions. Timing is `performance.now()` in this one process, so a release and
 * the next acquisition are on the same monotonic clock.
 */
import type { Etcd3 } from 'etcd3';
import type { EtcdCluster } from '../../src/testing/index.js';
import { counterDelta, figures, missingSeries, type EtcdFigures } from './etcd-counters.js';
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
  /** A unique key prefix, so parts and rows never see each other's keys. */
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

/** One measured part of a row: raw material that merges with the row's other parts. */
export interface Part {
  /** Acquisitions (or events) in this part. */
  n: number;
  seconds: number;
  /** etcd's counters: after − before. */
  delta: Map<string, number>;
  /** CPU time of this process during the part, ms (null when the part idles on purpose). */
  clientCpuMs: number | null;
  capped: boolean;
  /** Latency series in ms: `acquire`, `handoff`, `release`, and row-specific ones. */
  series: Record<string, number[]>;
  /** Counts to report per acquisition (e.g. `attempts`). */
  sums: Record<string, number>;
  /** etcd series names missing from /metrics. */
  missing: string[];
}

/** A row measured in parts. */
export interface Task {
  scenario: string;
  label: string;
  workers: number | null;
  /** Whether ops/s means something (false for the floors and handovers). */
  rate: boolean;
  notes?: string[];
  extra?: Record<string, unknown>;
  /** Measures `units` acquisitions (or events), starting no new ones after `maxSeconds`. */
  run(units: number, maxSeconds: number): Promise<Part>;
}

/** Merges the parts of a task into its row. */
export function rowFromParts(task: Task, parts: readonly Part[], target: number): Row {
  const n = parts.reduce((a, p) => a + p.n, 0);
  const seconds = parts.reduce((a, p) => a + p.seconds, 0);
  const delta = new Map<string, number>();
  for (const p of parts) for (const [k, v] of p.delta) delta.set(k, (delta.get(k) ?? 0) + v);
  const series = new Map<string, number[]>();
  for (const p of parts) for (const [k, v] of Object.entries(p.series)) series.set(k, [...(series.get(k) ?? []), ...v]);
  const sums = new Map<string, number>();
  for (const p of parts) for (const [k, v] of Object.entries(p.sums)) sums.set(k, (sums.get(k) ?? 0) + v);
  const capped = parts.some((p) => p.capped);
  const cpu = parts.every((p) => p.clientCpuMs !== null) ? parts.reduce((a, p) => a + p.clientCpuMs!, 0) : null;
  const missing = [...new Set(parts.flatMap((p) => p.missing))];
  const extra: Record<string, unknown> = { ...task.extra, capped, parts: parts.length };
  if (cpu !== null && n > 0) {
    extra['clientCpuMsPerAcq'] = cpu / n;
    extra['clientCpuShare'] = cpu / (seconds * 1000);
  }
  for (const [k, v] of series) if (!['acquire', 'handoff', 'release'].includes(k)) extra[k] = quantiles(v);
  for (const [k, v] of sums) extra[`${k}PerAcquisition`] = v / Math.max(1, n);
  const notes = [...(task.notes ?? [])];
  if (capped) notes.push(`capped: ${n} of ${target} acquisitions`);
  if (missing.length > 0) notes.push(`etcd lacks ${missing.join(', ')}`);
  return {
    scenario: task.scenario,
    label: task.label,
    workers: task.workers,
    status: 'ok',
    ops: n,
    seconds,
    opsPerSec: task.rate ? n / seconds : null,
    acquire: quantiles(series.get('acquire') ?? []),
    handoff: quantiles(series.get('handoff') ?? []),
    ...(series.has('release') ? { release: quantiles(series.get('release')!) } : {}),
    etcd: figures(new Map(), delta, Math.max(1, n)),
    extra,
    notes,
  };
}

export interface Held {
  release(): Promise<unknown>;
  /** Instants to keep with the sample (see Sample.marks). */
  marks?: Record<string, number>;
}

export interface Participant {
  acquire(): Promise<Held>;
  close(): Promise<void>;
}

export interface ContentionSpec {
  workers: number;
  handoff: 'exclusive' | 'shared';
  open(index: number): Promise<Participant>;
  /** Row-specific series and counts from this part's samples. */
  collect?(samples: readonly Sample[]): { series?: Record<string, number[]>; sums?: Record<string, number> };
}

/** Touches the KV and Watch services so the first measured call does not pay for connecting. */
export async function warm(client: Etcd3): Promise<void> {
  await client.get('bench/warmup').exec();
  const watcher = await client.watch().key('bench/warmup').create();
  await watcher.cancel();
}

const settleGraceMs = 30_000;

/** Runs one part of a contention row: `ops` acquisitions (plus the ones already waiting at the end). */
export async function runContention(ctx: BenchContext, spec: ContentionSpec, ops: number, maxSeconds: number): Promise<Part> {
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
    const deadline = t0 + maxSeconds * 1000;
    let capped = false;
    const more = (): boolean => {
      if (stop || acquired >= ops) return false;
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
      timer = setTimeout(() => resolve('hung'), maxSeconds * 1000 + settleGraceMs);
    });
    const outcome = await Promise.race([Promise.all(loops), hung]);
    clearTimeout(timer);
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    if (outcome === 'hung') throw new Error(`workers did not finish within ${maxSeconds + settleGraceMs / 1000} s`);
    if (firstError !== undefined) throw firstError;
    const after = await ctx.etcd.metrics();
    const extra = spec.collect?.(samples) ?? {};
    return {
      n: samples.length,
      seconds: (t1 - t0) / 1000,
      delta: counterDelta(before, after),
      clientCpuMs: (cpu.user + cpu.system) / 1000,
      capped,
      series: {
        acquire: samples.map((s) => s.acquired - s.start),
        handoff: spec.handoff === 'exclusive' ? exclusiveHandoffs(samples) : sharedHandoffs(samples),
        release: samples.map((s) => s.released - s.acquired),
        ...extra.series,
      },
      sums: extra.sums ?? {},
      missing: missingSeries(after),
    };
  } finally {
    await Promise.allSettled(participants.map(async (p) => p.close()));
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message.split('\n')[0]}`;
  return String(error);
}
