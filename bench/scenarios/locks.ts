/**
 * Scenarios 1–3: leasehold's Mutex, etcd3's `Lock` polled every 10 ms, and etcd3's `Election` used
 * as a lock (campaign → elected → resign). One name per part; every worker its own client.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdLockFailedError, type Campaign } from 'etcd3';
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { channels, Mutex, Session } from '../../src/index.js';
import type { TransportKind } from '../../src/transport/select.js';
import { runContention, warm, type BenchContext, type Participant, type Task } from '../lib/harness.js';
import { watchEventProbe } from '../lib/probe.js';
import { handoffSplit } from '../lib/stats.js';

/**
 * Subscribers on every leasehold diagnostics channel, doing what a metrics integration does (read the
 * context, count); returns the way to unsubscribe.
 */
function subscribeAll(): () => void {
  let seen = 0;
  const count = (message: unknown): void => {
    if (message !== undefined) seen++;
  };
  const tracing = { start: count, end: count, asyncStart: count, asyncEnd: count, error: count };
  const traced = [tracingChannel(channels.acquire), tracingChannel(channels.campaign)];
  const plain = [channels.release, channels.sessionLost, channels.keepAlive, channels.leader].map((n) => channel(n));
  for (const t of traced) t.subscribe(tracing);
  for (const c of plain) c.subscribe(count);
  return () => {
    for (const t of traced) t.unsubscribe(tracing);
    for (const c of plain) c.unsubscribe(count);
    void seen;
  };
}

/**
 * Scenario 1: leasehold Mutex, lock → release. `diagnostics`: `'subscribed'` puts a subscriber on every
 * diagnostics channel; `'unsubscribed'` is the same row without one, measured beside it (its own label,
 * so the targets keep reading the plain row).
 */
export function mutexTask(ctx: BenchContext, workers: number, diagnostics: 'plain' | 'subscribed' | 'unsubscribed' = 'plain'): Task {
  const traced = diagnostics === 'subscribed';
  return {
    scenario: diagnostics === 'plain' ? 'mutex' : `mutex-${diagnostics}`,
    label: diagnostics === 'plain' ? 'leasehold Mutex' : `leasehold Mutex, diagnostics ${diagnostics === 'subscribed' ? '' : 'not '}subscribed`,
    workers,
    rate: true,
    async run(ops, maxSeconds) {
      const name = ctx.unique('bench/mutex');
      const unsubscribe = traced ? subscribeAll() : () => undefined;
      try {
        return await runMutex(ctx, name, workers, ops, maxSeconds);
      } finally {
        unsubscribe();
      }
    },
  };
}

/** The Mutex row on one transport chosen explicitly (the per-transport comparison, issue 21). */
export function mutexOnTask(ctx: BenchContext, workers: number, transport: TransportKind): Task {
  return {
    scenario: `mutex-${transport}`,
    label: `leasehold Mutex on ${transport}`,
    workers,
    rate: true,
    async run(ops, maxSeconds) {
      return runMutex(ctx, ctx.unique(`bench/mutex-${transport}`), workers, ops, maxSeconds, transport);
    },
  };
}

async function runMutex(ctx: BenchContext, name: string, workers: number, ops: number, maxSeconds: number, transport?: TransportKind) {
  return runContention(
    ctx,
    {
      workers,
      handoff: 'exclusive',
      async open(): Promise<Participant> {
        const client = ctx.client();
        const lastEvent = watchEventProbe(client);
        await warm(client);
        const session = await Session.create(client, { ttl: ctx.ttl, ...(transport ? { transport } : {}) });
        const mutex = new Mutex(session, name);
        return {
          async acquire() {
            const handle = await mutex.lock();
            return { release: async () => handle.release(), marks: { event: lastEvent() } };
          },
          async close() {
            await session.close();
            client.close();
          },
        };
      },
      collect(samples) {
        const { toEvent, afterEvent } = handoffSplit(samples);
        return { series: { releaseToWakeEvent: toEvent, wakeEventToAcquired: afterEvent } };
      },
    },
    ops,
    maxSeconds,
  );
}

/** How long the polled etcd3 Lock sleeps after a failed attempt. */
export const pollIntervalMs = 10;

/** Scenario 2: etcd3's own Lock, retried every 10 ms until it succeeds. */
export function etcd3LockTask(ctx: BenchContext, workers: number): Task {
  return {
    scenario: 'etcd3-lock',
    label: `etcd3 Lock, polled every ${pollIntervalMs} ms`,
    workers,
    rate: true,
    async run(ops, maxSeconds) {
      const name = ctx.unique('bench/etcd3-lock');
      let attempts = 0;
      return runContention(
        ctx,
        {
          workers,
          handoff: 'exclusive',
          async open(): Promise<Participant> {
            const client = ctx.client();
            await warm(client);
            return {
              async acquire() {
                for (;;) {
                  attempts++;
                  const lock = client.lock(name).ttl(ctx.ttl);
                  try {
                    await lock.acquire();
                    return { release: async () => lock.release() };
                  } catch (error) {
                    if (!(error instanceof EtcdLockFailedError)) throw error;
                  }
                  await delay(pollIntervalMs);
                }
              },
              async close() {
                client.close();
              },
            };
          },
          collect: () => ({ sums: { attempts } }),
        },
        ops,
        maxSeconds,
      );
    },
  };
}

/** Waits for a campaign to be elected (or to fail). */
export function elected(campaign: Campaign): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    campaign.once('elected', () => resolve());
    campaign.once('error', reject);
  });
}

/** Scenario 3: etcd3's Election as a lock: campaign → elected → resign. */
export function etcd3ElectionTask(ctx: BenchContext, workers: number): Task {
  return {
    scenario: 'etcd3-election',
    label: 'etcd3 Election as a lock',
    workers,
    rate: true,
    async run(ops, maxSeconds) {
      const name = ctx.unique('bench-etcd3-election');
      return runContention(
        ctx,
        {
          workers,
          handoff: 'exclusive',
          async open(i): Promise<Participant> {
            const client = ctx.client();
            await warm(client);
            const election = client.election(name, ctx.ttl);
            return {
              async acquire() {
                const campaign = election.campaign(`worker-${i}`);
                await elected(campaign);
                return { release: async () => campaign.resign() };
              },
              async close() {
                client.close();
              },
            };
          },
        },
        ops,
        maxSeconds,
      );
    },
  };
}
