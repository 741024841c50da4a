/** Percentiles and the handoff pairing shared by every scenario. */

/** The nearest-rank percentile `p` (0–100) of `values`, or null when there are none. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** p50 and p99 of `values` in milliseconds, and how many values there were. */
export interface Quantiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  mean: number | null;
  max: number | null;
  n: number;
}

export function quantiles(values: readonly number[]): Quantiles {
  const n = values.length;
  return {
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    mean: n === 0 ? null : values.reduce((a, b) => a + b, 0) / n,
    max: n === 0 ? null : Math.max(...values),
    n,
  };
}

/** One acquisition, on the bench process's monotonic clock (`performance.now()`, ms). */
export interface Sample {
  worker: number;
  /** When `acquire()` was called. */
  start: number;
  /** When it resolved. */
  acquired: number;
  /** When `release()` resolved. */
  released: number;
  /** Scenario-specific instants on the same clock (e.g. when the wake-up watch event arrived). */
  marks?: Record<string, number>;
}

/**
 * Handoff latencies of an exclusive lock: holders in the order they got the lock; for each holder
 * that was already waiting when its predecessor's `release()` resolved, the time from that release
 * resolving to its own `acquire()` resolving. With one worker nobody waits, so there are none.
 */
export function exclusiveHandoffs(samples: readonly Sample[]): number[] {
  const order = [...samples].sort((a, b) => a.acquired - b.acquired);
  const out: number[] = [];
  for (let i = 1; i < order.length; i++) {
    const prev = order[i - 1]!;
    const cur = order[i]!;
    if (cur.start < prev.released) out.push(cur.acquired - prev.released);
  }
  return out;
}

/**
 * Splits each exclusive handoff at the waiter's wake-up (the `event` mark: when the watch event
 * arrived): `event − previous release resolved` (etcd sending the event, and our process reading it)
 * and `acquired − event` (what the waiter does after waking: leasehold's verifying read).
 */
export function handoffSplit(samples: readonly Sample[]): { toEvent: number[]; afterEvent: number[] } {
  const order = [...samples].sort((a, b) => a.acquired - b.acquired);
  const toEvent: number[] = [];
  const afterEvent: number[] = [];
  for (let i = 1; i < order.length; i++) {
    const prev = order[i - 1]!;
    const cur = order[i]!;
    const event = cur.marks?.['event'];
    if (cur.start >= prev.released || event === undefined || event < cur.start) continue;
    toEvent.push(event - prev.released);
    afterEvent.push(cur.acquired - event);
  }
  return { toEvent, afterEvent };
}

/**
 * Handoff latencies of a shared primitive (semaphore, read/write lock), where "the" predecessor is
 * not defined: for each acquisition, the most recent `release()` that resolved before it; counted
 * when the acquisition was already waiting at that moment.
 */
export function sharedHandoffs(samples: readonly Sample[]): number[] {
  const releases = samples.map((s) => s.released).sort((a, b) => a - b);
  const out: number[] = [];
  for (const s of samples) {
    // The last release strictly before s.acquired (binary search).
    let lo = 0;
    let hi = releases.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (releases[mid]! < s.acquired) lo = mid + 1;
      else hi = mid;
    }
    const before = lo > 0 ? releases[lo - 1]! : undefined;
    if (before !== undefined && s.start < before) out.push(s.acquired - before);
  }
  return out;
}

/** Rounds for display and JSON: 2 decimals below 10, 1 below 100, else whole. */
export function round(value: number | null): number | null {
  if (value === null || !Number.isFinite(value)) return value;
  const abs = Math.abs(value);
  const digits = abs < 10 ? 2 : abs < 100 ? 1 : 0;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
