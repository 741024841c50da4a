/**
 * Scenario 6, the floor: one client deletes a key another client watches; the time from sending the
 * delete to the watcher receiving the event. No lock can hand over faster than one delete plus one
 * event, so this is what handoff latencies are compared with.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { counterDelta, missingSeries } from '../lib/etcd-counters.js';
import { warm, type BenchContext, type Task } from '../lib/harness.js';

/**
 * `idleMs` > 0 measures the floor after the system has been idle that long, as a leader handover is
 * (a leader leads a while, then resigns): on a VM, the first request after even a few ms of quiet
 * pays for waking the processes up, so the idle floor is the fair one to compare a handover with.
 */
export function floorTask(ctx: BenchContext, idleMs = 0): Task {
  return {
    ...(idleMs > 0
      ? { scenario: 'floor-idle', label: `floor after ${idleMs} ms idle` }
      : { scenario: 'floor', label: 'floor: delete → watch event' }),
    workers: 2,
    rate: false,
    notes: ['acquire columns: the delete request’s round trip; handoff columns: delete sent → event received'],
    async run(ops) {
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
        let busy = 0;
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
          busy += got - sent;
          toEvent.push(got - sent);
          deleteRtt.push(resolved - sent);
          resolvedToEvent.push(got - resolved);
        }
        const after = await ctx.etcd.metrics();
        await watcher.cancel();
        return {
          n: ops,
          seconds: busy / 1000,
          delta: counterDelta(before, after),
          clientCpuMs: null,
          capped: false,
          series: { acquire: deleteRtt, handoff: toEvent, deleteResolvedToEvent: resolvedToEvent },
          sums: {},
          missing: missingSeries(after),
        };
      } finally {
        deleter.close();
        watcherClient.close();
      }
    },
  };
}
