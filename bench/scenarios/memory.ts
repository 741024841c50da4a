/**
 * Peak RSS and heap per 1,000 held locks on one Session, in a fresh child process with
 * `--expose-gc`: leasehold (1,000 Mutex names on one Session: one lease, one keep-alive stream) next
 * to etcd3's Lock (each held lock has its own lease and keep-alive stream).
 */
import { startChild } from '../lib/child.js';
import { describeError, type BenchContext, type Row } from '../lib/harness.js';
import type { TransportKind } from '../../src/transport/select.js';

interface Usage {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

const MiB = 1024 * 1024;

/** `transport`: leasehold's on that transport (the per-transport comparison), else on the default one. */
export async function memoryRow(ctx: BenchContext, kind: 'leasehold' | 'etcd3', count: number, transport?: TransportKind): Promise<Row> {
  const label = kind === 'leasehold' ? `leasehold Mutex, one Session${transport ? ` on ${transport}` : ''}` : 'etcd3 Lock (a lease each)';
  const base = { scenario: `memory-${kind}${transport ? `-${transport}` : ''}`, label, workers: 1 };
  const endpoint = ctx.etcd.endpoints[0]!;
  const child = startChild([`memory-${kind}`, endpoint, String(count), String(ctx.ttl), transport ?? ''], ['--expose-gc']);
  try {
    const m = await child.next(120_000);
    const baseline = m['baseline'] as Usage;
    const held = m['held'] as Usage;
    const per1000 = (bytes: number) => (bytes / MiB) * (1000 / count);
    const extra = {
      locks: count,
      heapPer1000MiB: per1000(held.heapUsed - baseline.heapUsed),
      externalPer1000MiB: per1000(held.external - baseline.external),
      rssPer1000MiB: per1000(held.rss - baseline.rss),
      peakRssMiB: (m['peakRss'] as number) / MiB,
      baselineRssMiB: baseline.rss / MiB,
      baselineHeapMiB: baseline.heapUsed / MiB,
      acquireSeconds: m['acquireSeconds'] as number,
    };
    await child.next(60_000).catch(() => undefined);
    return { ...base, status: 'ok', ops: count, extra };
  } catch (error) {
    return { ...base, status: 'failed', reason: describeError(error) };
  } finally {
    await child.kill();
  }
}
