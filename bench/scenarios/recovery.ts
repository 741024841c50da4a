/**
 * Recovery after an etcd freeze, per primitive: a process on a SessionSource holds the primitive and
 * takes it again in a loop, as a service's worker does; etcd is frozen (SIGSTOP) for 2 × TTL — every
 * lease is lost — and thawed. The row's handoff figures are thaw → the next acquisition resolved, on
 * the source's next lease. It needs an etcd it started itself (it freezes the process).
 */
import { setTimeout as delay } from 'node:timers/promises';
import { noop } from 'cockatiel';
import { Barrier, DoubleBarrier, Election, LeaderElector, Mutex, ReadWriteLock, Semaphore, SessionSource } from '../../src/index.js';
import { quantiles } from '../lib/stats.js';
import { describeError, type BenchContext, type Row } from '../lib/harness.js';

/** One primitive: take it once on `sessions` (resolving when taken; the holding ends with the lease). */
type Take = (sessions: SessionSource, name: string) => Promise<unknown>;

const takes: Record<string, Take> = {
  Mutex: async (s, n) => new Mutex(s, n).lock(),
  'ReadWriteLock (write)': async (s, n) => new ReadWriteLock(s, n).writeLock(),
  Semaphore: async (s, n) => new Semaphore(s, n, { permits: 2 }).acquire(),
  Election: async (s, n) => new Election(s, n).campaign('bench'),
  // hold() does not wait: until the old barrier key is gone it resolves null, and it rejects while the
  // source has no session; the loop below asks again.
  Barrier: async (s, n) => (await new Barrier(s, n).hold().catch(() => null)) ?? Promise.reject(new Error('barrier still up')),
};

/** The primitives measured, in report order. */
export const recoveryKinds = [...Object.keys(takes), 'DoubleBarrier (2 participants)', 'LeaderElector'] as const;

/** Freezes the bench's etcd for `ms` and thaws it; resolves with the instant of the thaw. */
async function freeze(ctx: BenchContext, ms: number): Promise<number> {
  const member = ctx.etcd.members[0];
  if (!member) throw new Error('the recovery rows freeze etcd: they need one the bench started (not ETCD_ENDPOINTS)');
  await member.pause();
  await delay(ms);
  await member.resume();
  return performance.now();
}

/** Keeps taking with `take` (again at once after any failure) until `stop`; resolves each success's instant. */
function takeAfter(take: () => Promise<unknown>, after: () => number | undefined, stop: AbortSignal): Promise<number> {
  return (async () => {
    for (;;) {
      stop.throwIfAborted();
      try {
        await take();
        const at = performance.now();
        const thawed = after();
        if (thawed !== undefined && at >= thawed) return at - thawed;
      } catch {
        await delay(10);
      }
    }
  })();
}

/** `reps` freezes of 2 × TTL for `kind`; the row's handoff is thaw → next acquisition, in ms. */
export async function recoveryRow(ctx: BenchContext, kind: (typeof recoveryKinds)[number], reps: number): Promise<Row> {
  const ttl = ctx.failoverTtl;
  const base = { scenario: 'recovery', label: `SessionSource ${kind}: etcd frozen 2 × TTL → next acquisition`, workers: 1 };
  const samples: number[] = [];
  const stop = new AbortController();
  const sources: SessionSource[] = [];
  const source = (): SessionSource => {
    const s = new SessionSource(ctx.etcd.client({ faultHandling: { host: () => noop, global: noop } }), { ttl, requestTimeout: Math.max(500, (ttl * 1000) / 3) });
    sources.push(s);
    return s;
  };
  try {
    for (let i = 0; i < reps; i++) {
      const name = ctx.unique(`bench-recovery-${kind.split(' ')[0]!.toLowerCase()}`);
      let thawed: number | undefined;
      const [a, b] = [source(), source()];
      let next: Promise<number>;
      if (kind === 'DoubleBarrier (2 participants)') {
        // Both enter a round of their own each time (an attempt cut short leaves its partner waiting).
        let round = 0;
        const enterBoth = async (): Promise<void> => {
          const n = `${name}-${++round}`;
          await Promise.all([new DoubleBarrier(a, n, { count: 2 }).enter(), new DoubleBarrier(b, n, { count: 2 }).enter()]);
        };
        await enterBoth();
        next = takeAfter(enterBoth, () => thawed, stop.signal);
      } else if (kind === 'LeaderElector') {
        const elector = new LeaderElector(a.client, name, { source: a });
        let terms = 0;
        let elected!: () => void;
        const first = new Promise<void>((resolve) => (elected = resolve));
        next = new Promise<number>((resolve) => {
          void elector.run(async ({ signal }) => {
            if (++terms === 1) elected();
            else if (thawed !== undefined) resolve(performance.now() - thawed);
            await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
          });
        });
        await first;
        stop.signal.addEventListener('abort', () => void elector.stop(), { once: true });
        next = next.finally(() => elector.stop());
      } else {
        const take = takes[kind]!;
        await take(a, name);
        next = takeAfter(async () => take(a, name), () => thawed, stop.signal);
      }
      thawed = await freeze(ctx, 2 * ttl * 1000);
      samples.push(await next);
      ctx.log(`recovery ${kind} #${i + 1}: ${samples.at(-1)!.toFixed(0)} ms after the thaw`);
      await Promise.all(sources.splice(0).map(async (s) => s.close()));
    }
    return {
      ...base,
      status: 'ok',
      ops: reps,
      handoff: quantiles(samples),
      extra: { ttlSeconds: ttl, recoveryMs: samples },
      notes: [`lease TTL ${ttl} s; handoff columns: SIGCONT of the frozen etcd → the next acquisition resolved, on a new lease`],
    };
  } catch (error) {
    return { ...base, status: 'failed', reason: describeError(error) };
  } finally {
    stop.abort();
    await Promise.all(sources.map(async (s) => s.close()));
  }
}
