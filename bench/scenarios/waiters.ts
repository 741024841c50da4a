/**
 * 1,000 waiters from 1,000 Sessions on one client: the watch streams they hold, what they cost in heap,
 * and the handoff latency at that queue depth — in a fresh child process (`--expose-gc`).
 */
import { startChild } from '../lib/child.js';
import { describeError, type BenchContext, type Row } from '../lib/harness.js';
import { quantiles } from '../lib/stats.js';

const MiB = 1024 * 1024;

export async function waitersRow(ctx: BenchContext, count: number, handoffs = 50): Promise<Row> {
  const base = { scenario: 'waiters', label: `leasehold Mutex: ${count} waiters from ${count} Sessions on one client`, workers: count };
  const metricsUrl = (ctx.etcd.members[0] as { metricsUrl?: string } | undefined)?.metricsUrl ?? '';
  const child = startChild(['waiters', ctx.etcd.endpoints[0]!, String(count), String(ctx.ttl), String(handoffs), metricsUrl], ['--expose-gc']);
  try {
    const m = await child.next(300_000);
    const heap = (m['queued'] as { heapUsed: number }).heapUsed - (m['baseline'] as { heapUsed: number }).heapUsed;
    const handoff = quantiles(m['handoffMs'] as number[]);
    const extra = {
      waiters: count,
      hubStreamsOpened: m['hubStreamsOpened'] as number,
      hubWatchers: m['hubWatchers'] as number,
      etcdOpenWatchStreams: m['etcdOpenWatchStreams'] as number,
      heapMiB: heap / MiB,
      queueSeconds: m['queueSeconds'] as number,
    };
    await child.next(120_000).catch(() => undefined);
    return { ...base, status: 'ok', ops: handoffs, handoff, extra };
  } catch (error) {
    return { ...base, status: 'failed', reason: describeError(error) };
  } finally {
    await child.kill();
  }
}
