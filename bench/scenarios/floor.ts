/**
 * Scenario 6, the floor: one client deletes a key another client watches; the time from sending the
 * delete to the watcher receiving the event. No lock can hand over faster than one delete plus one
 * event, so this is what handoff latencies are compared with.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { quantiles } from '../lib/stats.js';
import { figures } from '../lib/etcd-counters.js';
import { describeError, warm, type BenchContext, type Row } from '../lib/harness.js';

/**
 * `idleMs` > 0 measures the floor after the system has been idle that long, as a leader handover is
 * (a leader leads a while, then resigns): on a VM, the first request after even a few ms of quiet
 * pays for waking the processes up, so the idle floor is the fair one to compare a handover with.
 */
export async function floorRow(ctx: BenchContext, ops: number, idleMs = 0): Promise<Row> {
  const base =
    idleMs > 0
      ? { scenario: 'floor-idle', label: `floor after ${idleMs} ms idle`, workers: 2 }
      : { scenario: 'floor', label: 'floor: delete → watch event', workers: 2 };
  const deleter = ctx.client();
  const watcherClient = ctx.client();
  const key = ctx.unique('bench/floor');
  try {
    await warm(deleter);
    await warm(watcherClient);
    const watcher = await watcherClient.watch().key(key).only('delete').create();
    let waiting: ((t: number) => void) | undefined;
    watcher.on('delete', () => {
      const t = performance.now();
      waiting?.(t);
      waiting = undefined;
    });
    const toEvent: number[] = [];
    const deleteRtt: number[] = [];
    const resolvedToEvent: number[] = [];
    const before = await ctx.etcd.metrics();
    const t0 = performance.now();
    for (let i = 0; i < ops; i++) {
      await deleter.put(key).value(String(i));
      if (idleMs > 0) await delay(idleMs);
      const event = new Promise<number>((resolve) => {
        waiting = resolve;
      });
      const sent = performance.now();
      await deleter.delete().key(key).exec();
      const resolved = performance.now();
      const got = await event;
      toEvent.push(got - sent);
      deleteRtt.push(resolved - sent);
      resolvedToEvent.push(got - resolved);
    }
    const t1 = performance.now();
    const after = await ctx.etcd.metrics();
    await watcher.cancel();
    const seconds = (t1 - t0) / 1000 - (idleMs * ops) / 1000;
    return {
      ...base,
      status: 'ok',
      ops,
      seconds,
      opsPerSec: null,
      acquire: quantiles(deleteRtt),
      handoff: quantiles(toEvent),
      etcd: figures(before, after, ops),
      extra: { deleteResolvedToEvent: quantiles(resolvedToEvent) },
      notes: ['acquire columns: the delete request’s round trip; handoff columns: delete sent → event received'],
    };
  } catch (error) {
    return { ...base, status: 'failed', reason: describeError(error) };
  } finally {
    deleter.close();
    watcherClient.close();
  }
}
