/**
 * Scenarios 1–3: leasehold's Mutex, etcd3's `Lock` polled every 10 ms, and etcd3's `Election` used
 * as a lock (campaign → elected → resign). One name per row; every worker its own client.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { EtcdLockFailedError, type Campaign } from 'etcd3';
import { Mutex, Session } from '../../src/index.js';
import { watchEventProbe } from '../lib/probe.js';
import { handoffSplit, quantiles } from '../lib/stats.js';
import { runContention, warm, type BenchContext, type Participant, type Row } from '../lib/harness.js';

/** Scenario 1: leasehold Mutex, lock → release. */
export async function mutexRow(ctx: BenchContext, workers: number, ops: number, maxSeconds: number): Promise<Row> {
  const name = ctx.unique('bench/mutex');
  return runContention(ctx, {
    scenario: 'mutex',
    label: 'leasehold Mutex',
    workers,
    ops,
    maxSeconds,
    handoff: 'exclusive',
    async open(): Promise<Participant> {
      const client = ctx.client();
      const lastEvent = watchEventProbe(client);
      await warm(client);
      const session = await Session.create(client, { ttl: ctx.ttl });
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
    describe(samples) {
      const { toEvent, afterEvent } = handoffSplit(samples);
      return { releaseToWakeEvent: quantiles(toEvent), wakeEventToAcquired: quantiles(afterEvent) };
    },
  });
}

/** How long the polled etcd3 Lock sleeps after a failed attempt. */
export const pollIntervalMs = 10;

/** Scenario 2: etcd3's own Lock, retried every 10 ms until it succeeds. */
export async function etcd3LockRow(ctx: BenchContext, workers: number, ops: number, maxSeconds: number): Promise<Row> {
  const name = ctx.unique('bench/etcd3-lock');
  const attempts: number[] = [];
  return runContention(ctx, {
    scenario: 'etcd3-lock',
    label: `etcd3 Lock, polled every ${pollIntervalMs} ms`,
    workers,
    ops,
    maxSeconds,
    handoff: 'exclusive',
    async open(i): Promise<Participant> {
      const client = ctx.client();
      await warm(client);
      attempts[i] = 0;
      return {
        async acquire() {
          for (;;) {
            attempts[i]!++;
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
        attempts: () => attempts[i]!,
      };
    },
    describe(samples) {
      const total = attempts.reduce((a, b) => a + b, 0);
      return { attemptsPerAcquisition: total / Math.max(1, samples.length) };
    },
  });
}

/** Waits for a campaign to be elected (or to fail). */
export function elected(campaign: Campaign): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    campaign.once('elected', () => resolve());
    campaign.once('error', reject);
  });
}

/** Scenario 3: etcd3's Election as a lock: campaign → elected → resign. */
export async function etcd3ElectionRow(
  ctx: BenchContext,
  workers: number,
  ops: number,
  maxSeconds: number,
): Promise<Row> {
  const name = ctx.unique('bench-etcd3-election');
  return runContention(ctx, {
    scenario: 'etcd3-election',
    label: 'etcd3 Election as a lock',
    workers,
    ops,
    maxSeconds,
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
  });
}
