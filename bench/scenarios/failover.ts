/**
 * Scenario 5: leader election failover. Graceful: the leader calls resign() while a follower waits;
 * the time from resign() being called to the follower's campaign resolving. Crash: the leader is a
 * process of its own that we SIGKILL; the time from the kill to the follower's campaign resolving
 * (bounded below by the lease TTL, which has to run out).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { Election } from '../../src/election.js';
import { Session } from '../../src/index.js';
import { counterDelta, missingSeries } from '../lib/etcd-counters.js';
import { startChild } from '../lib/child.js';
import { watchEventProbe } from '../lib/probe.js';
import { describeError, warm, type BenchContext, type Row, type Task } from '../lib/harness.js';
import { quantiles } from '../lib/stats.js';
import { elected } from './locks.js';

export interface Leadership {
  resign(): Promise<unknown>;
}

/** One candidate: a service with its own client (and Session, for leasehold). */
export interface Candidate {
  campaign(): Promise<Leadership>;
  close(): Promise<void>;
  /** When the latest watch event reached this candidate's client (leasehold only; see probe.ts). */
  lastEvent?(): number;
}

export interface ElectionImpl {
  /** `etcd3` or `leasehold`: scenario names and the child's mode. */
  kind: string;
  label: string;
  candidate(ctx: BenchContext, name: string, ttl: number): Promise<Candidate>;
}

export const etcd3Election: ElectionImpl = {
  kind: 'etcd3',
  label: 'etcd3 Election',
  async candidate(ctx, name, ttl) {
    const client = ctx.client();
    await warm(client);
    const election = client.election(name, ttl);
    return {
      async campaign() {
        const campaign = election.campaign(`p${process.pid}`);
        await elected(campaign);
        return { resign: async () => campaign.resign() };
      },
      async close() {
        client.close();
      },
    };
  },
};

export const leaseholdElection: ElectionImpl = {
  kind: 'leasehold',
  label: 'leasehold Election',
  async candidate(ctx, name, ttl) {
    const client = ctx.client();
    const lastEvent = watchEventProbe(client);
    await warm(client);
    const session = await Session.create(client, { ttl });
    const election = new Election(session, name);
    return {
      lastEvent,
      campaign: async () => election.campaign(`p${process.pid}`),
      async close() {
        await session.close();
        client.close();
      },
    };
  },
};

/** How long a leader leads before resigning: longer than etcd's 100 ms watcher sync, as in real use. */
export const leadMs = 150;

/** Graceful handover between two candidates, measured `reps` times per part. */
export function resignTask(ctx: BenchContext, impl: ElectionImpl): Task {
  return {
    scenario: `${impl.kind}-resign`,
    label: `${impl.label}: resign → next leader`,
    workers: 2,
    rate: false,
    extra: { leadMs },
    notes: [
      `acquire columns: resign() round trip; handoff columns: resign() called → follower elected (leader led ${leadMs} ms first)`,
    ],
    async run(reps) {
      const name = ctx.unique(`bench-${impl.kind}-resign`);
      const candidates: Candidate[] = [];
      try {
        candidates.push(await impl.candidate(ctx, name, ctx.ttl), await impl.candidate(ctx, name, ctx.ttl));
        let leader = await candidates[0]!.campaign();
        let next = 1;
        const fromCall: number[] = [];
        const fromResolved: number[] = [];
        const resignRtt: number[] = [];
        const toEvent: number[] = [];
        const afterEvent: number[] = [];
        let busy = 0;
        const before = await ctx.etcd.metrics();
        for (let i = 0; i < reps; i++) {
          const follower = candidates[next]!.campaign();
          await delay(leadMs);
          const called = performance.now();
          await leader.resign();
          const resigned = performance.now();
          const waiting = candidates[next]!;
          leader = await follower;
          const got = performance.now();
          const event = waiting.lastEvent?.();
          if (event !== undefined && event > called) {
            toEvent.push(event - called);
            afterEvent.push(got - event);
          }
          busy += got - called;
          fromCall.push(got - called);
          fromResolved.push(got - resigned);
          resignRtt.push(resigned - called);
          next = 1 - next;
        }
        const after = await ctx.etcd.metrics();
        await leader.resign();
        return {
          n: reps,
          seconds: busy / 1000,
          delta: counterDelta(before, after),
          clientCpuMs: null,
          capped: false,
          series: {
            acquire: resignRtt,
            handoff: fromCall,
            resignResolvedToElected: fromResolved,
            resignCalledToWakeEvent: toEvent,
            wakeEventToElected: afterEvent,
          },
          sums: {},
          missing: missingSeries(after),
        };
      } finally {
        await Promise.allSettled(candidates.map(async (c) => c.close()));
      }
    },
  };
}

/** Crash failover: a leader process is SIGKILLed `reps` times while an in-process follower waits. */
export async function killRow(ctx: BenchContext, impl: ElectionImpl, reps: number): Promise<Row> {
  const ttl = ctx.failoverTtl;
  const base = { scenario: `${impl.kind}-kill`, label: `${impl.label}: leader killed → next leader`, workers: 2 };
  const name = ctx.unique(`bench-${impl.kind}-kill`);
  const failovers: number[] = [];
  let follower: Candidate | undefined;
  try {
    follower = await impl.candidate(ctx, name, ttl);
    for (let i = 0; i < reps; i++) {
      const child = startChild([`campaign-${impl.kind}`, ctx.etcd.endpoints[0]!, name, String(ttl)]);
      try {
        await child.next(30_000); // elected
        const campaign = follower.campaign();
        await delay(300); // the follower is queued and its watch is in place
        const killed = performance.now();
        await child.kill();
        const leadership = await campaign;
        failovers.push(performance.now() - killed);
        await leadership.resign();
      } finally {
        await child.kill();
      }
    }
    return {
      ...base,
      status: 'ok',
      ops: reps,
      handoff: quantiles(failovers),
      extra: { ttlSeconds: ttl, failoverMs: failovers },
      notes: [`lease TTL ${ttl} s; handoff columns: SIGKILL of the leader’s process → follower elected`],
    };
  } catch (error) {
    return { ...base, status: 'failed', reason: describeError(error) };
  } finally {
    await follower?.close();
  }
}
