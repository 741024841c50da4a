/**
 * The per-transport comparison (issue 21): leasehold's Mutex at each worker count and its memory row,
 * once on the `etcd3` path and once on the lean HTTP/2 transport (`h2`), measured as a group of their
 * own in the bench's two passes (pass 1: etcd3, h2 for each worker count; pass 2 in reverse), and the
 * issue's targets judged from that one run.
 */
import type { Row } from './harness.js';
import type { Target } from './report.js';
import { round } from './stats.js';

/** The transports compared: the baseline first. */
export const comparedTransports = ['etcd3', 'h2'] as const;
export type ComparedTransport = (typeof comparedTransports)[number];

const dash = '–';

function fmt(value: number | null | undefined, digits?: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return dash;
  return digits === undefined ? String(round(value)) : value.toFixed(digits);
}

function cpu(r: Row | undefined): number | undefined {
  return r?.extra?.['clientCpuMsPerAcq'] as number | undefined;
}

function heap(r: Row | undefined): number | undefined {
  return r?.extra?.['heapPer1000MiB'] as number | undefined;
}

function ok(rows: readonly Row[], scenario: string, workers?: number): Row | undefined {
  return rows.find((r) => r.scenario === scenario && r.status === 'ok' && (workers === undefined || r.workers === workers));
}

/** The Mutex rows of `transport`, by worker count. */
function mutexRow(rows: readonly Row[], transport: ComparedTransport, workers: number): Row | undefined {
  return ok(rows, `mutex-${transport}`, workers);
}

function memoryRowOf(rows: readonly Row[], transport: ComparedTransport): Row | undefined {
  return ok(rows, `memory-leasehold-${transport}`);
}

/** The markdown table of the comparison, or '' when the `transports` scenario did not run. */
export function transportTable(rows: readonly Row[], workers: readonly number[]): string {
  if (!rows.some((r) => r.scenario.startsWith('mutex-etcd3') || r.scenario.startsWith('mutex-h2'))) return '';
  const lines = workers.map((w) => {
    const e = mutexRow(rows, 'etcd3', w);
    const h = mutexRow(rows, 'h2', w);
    const ratio = (a: number | null | undefined, b: number | null | undefined): string => (a && b ? `${(b / a).toFixed(2)}×` : dash);
    return [
      '',
      w === 1 ? 'uncontended lock + release' : 'contended',
      w,
      `${fmt(cpu(e), 2)} → ${fmt(cpu(h), 2)}`,
      ratio(cpu(e), cpu(h)),
      `${fmt(e?.opsPerSec)} → ${fmt(h?.opsPerSec)}`,
      ratio(e?.opsPerSec, h?.opsPerSec),
      w === 1 ? dash : `${fmt(e?.handoff?.p50)} → ${fmt(h?.handoff?.p50)}`,
      `${fmt(e?.etcd?.unary, 2)} → ${fmt(h?.etcd?.unary, 2)}`,
      '',
    ].join(' | ').trim();
  });
  const em = memoryRowOf(rows, 'etcd3');
  const hm = memoryRowOf(rows, 'h2');
  const memory =
    em || hm
      ? `\n\nHeap per 1,000 held locks (one Session, a fresh process): etcd3 ${fmt(heap(em), 2)} MiB, h2 ${fmt(heap(hm), 2)} MiB; ` +
        `RSS ${fmt(em?.extra?.['rssPer1000MiB'] as number, 1)} vs ${fmt(hm?.extra?.['rssPer1000MiB'] as number, 1)} MiB.`
      : '';
  return [
    '| leasehold Mutex | workers | client CPU ms / acq: etcd3 → h2 | h2 ÷ etcd3 | ops/s: etcd3 → h2 | h2 ÷ etcd3 | handoff p50 (ms): etcd3 → h2 | unary req / acq: etcd3 → h2 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...lines,
  ].join('\n') + memory;
}

/** The targets of issue 21, judged from this run's transport rows. */
export function transportTargets(rows: readonly Row[], workers: readonly number[]): Target[] {
  if (!rows.some((r) => r.scenario === 'mutex-etcd3' || r.scenario === 'mutex-h2')) return [];
  const out: Target[] = [];
  const judge = (target: string, a: number | null | undefined, b: number | null | undefined, test: (a: number, b: number) => boolean, measured: (a: number, b: number) => string): void => {
    if (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b)) out.push({ target, measured: 'row missing', status: 'pending' });
    else out.push({ target, measured: measured(a, b), status: test(a, b) ? 'met' : 'missed' });
  };
  for (const w of workers.filter((n) => n >= 10)) {
    const e = mutexRow(rows, 'etcd3', w);
    const h = mutexRow(rows, 'h2', w);
    judge(`${w} workers: h2 client CPU / acquisition ≤ 0.5× etcd3's`, cpu(e), cpu(h), (a, b) => b <= 0.5 * a, (a, b) => `${a.toFixed(2)} → ${b.toFixed(2)} ms = ${(b / a).toFixed(2)}×`);
    judge(`${w} workers: h2 handoff p50 not worse than etcd3's`, e?.handoff?.p50, h?.handoff?.p50, (a, b) => b <= a, (a, b) => `${fmt(a)} → ${fmt(b)} ms`);
  }
  if (workers.includes(1)) {
    const e = mutexRow(rows, 'etcd3', 1);
    const h = mutexRow(rows, 'h2', 1);
    judge('1 worker: h2 lock + release ops/s ≥ 1.6× etcd3\'s', e?.opsPerSec, h?.opsPerSec, (a, b) => b >= 1.6 * a, (a, b) => `${fmt(a)} → ${fmt(b)} ops/s = ${(b / a).toFixed(2)}×`);
    judge('1 worker: h2 still exactly 2 unary requests per lock + release', 2, h?.etcd?.unary, (_, b) => b <= 2.005, (_, b) => b.toFixed(2));
  }
  judge('h2 heap per 1,000 held locks not worse than etcd3\'s', heap(memoryRowOf(rows, 'etcd3')), heap(memoryRowOf(rows, 'h2')), (a, b) => b <= a, (a, b) => `${a.toFixed(2)} → ${b.toFixed(2)} MiB`);
  return out;
}
