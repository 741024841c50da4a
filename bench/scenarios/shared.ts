/**
 * Scenario 4: leasehold's Semaphore (5 permits, weight 1) and ReadWriteLock (90 % readers), acquire →
 * release on one name, every worker its own client and Session.
 */
import { ReadWriteLock, Semaphore, Session } from '../../src/index.js';
import { runContention, warm, type BenchContext, type Participant, type Task } from '../lib/harness.js';
import { prng } from '../../test/prng.js';

export const semaphorePermits = 5;
export const readerShare = 0.9;

export function semaphoreTask(ctx: BenchContext, workers: number): Task {
  return {
    scenario: 'semaphore',
    label: `leasehold Semaphore (${semaphorePermits} permits)`,
    workers,
    rate: true,
    async run(ops, maxSeconds) {
      const name = ctx.unique('bench/semaphore');
      return runContention(
        ctx,
        {
          workers,
          handoff: 'shared',
          async open(): Promise<Participant> {
            const client = ctx.client();
            await warm(client);
            const session = await Session.create(client, { ttl: ctx.ttl });
            const semaphore = new Semaphore(session, name, { permits: semaphorePermits });
            return {
              async acquire() {
                const permit = await semaphore.acquire();
                return { release: async () => permit.release() };
              },
              async close() {
                await session.close();
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


export function rwlockTask(ctx: BenchContext, workers: number): Task {
  let part = 0;
  return {
    scenario: 'rwlock',
    label: `leasehold ReadWriteLock (${Math.round(readerShare * 100)} % readers)`,
    workers,
    rate: true,
    async run(ops, maxSeconds) {
      const name = ctx.unique('bench/rwlock');
      const seedBase = 1000 * ++part;
      return runContention(
        ctx,
        {
          workers,
          handoff: 'shared',
          async open(i): Promise<Participant> {
            const client = ctx.client();
            await warm(client);
            const session = await Session.create(client, { ttl: ctx.ttl });
            const lock = new ReadWriteLock(session, name);
            const random = prng(seedBase + i + 1);
            return {
              async acquire() {
                const writer = random() >= readerShare;
                const handle = writer ? await lock.writeLock() : await lock.readLock();
                return { release: async () => handle.release(), marks: { writer: writer ? 1 : 0 } };
              },
              async close() {
                await session.close();
                client.close();
              },
            };
          },
          collect(samples) {
            const writers = samples.filter((s) => s.marks?.['writer'] === 1);
            const readers = samples.filter((s) => s.marks?.['writer'] !== 1);
            return {
              series: {
                readerAcquire: readers.map((s) => s.acquired - s.start),
                writerAcquire: writers.map((s) => s.acquired - s.start),
              },
              sums: { writers: writers.length },
            };
          },
        },
        ops,
        maxSeconds,
      );
    },
  };
}
