/**
 * Scenario 7: leasehold's MultiLock on 3 names against the same 3 names taken with 3 Mutexes one after
 * another (in one fixed order, as Curator's InterProcessMultiLock needs its callers to do), lock →
 * release, every worker its own client and Session, all workers on the same 3 names.
 */
import { MultiLock, Mutex, Session, type LockHandle } from '../../src/index.js';
import { runContention, warm, type BenchContext, type Participant, type Task } from '../lib/harness.js';

/** How many names each acquisition takes. */
export const multiLockNames = 3;

export function multiLockTask(ctx: BenchContext, workers: number, how: 'multilock' | 'mutexes'): Task {
  return {
    scenario: how === 'multilock' ? 'multilock' : 'multilock-mutexes',
    label: how === 'multilock' ? `leasehold MultiLock of ${multiLockNames} names` : `${multiLockNames} leasehold Mutexes, one after another`,
    workers,
    rate: true,
    async run(ops, maxSeconds) {
      const base = ctx.unique(`bench/${how}`);
      const names = Array.from({ length: multiLockNames }, (_, i) => `${base}/n${i}`);
      return runContention(
        ctx,
        {
          workers,
          handoff: 'exclusive',
          async open(): Promise<Participant> {
            const client = ctx.client();
            await warm(client);
            const session = await Session.create(client, { ttl: ctx.ttl });
            const multi = new MultiLock(session, names);
            const mutexes = names.map((name) => new Mutex(session, name));
            return {
              async acquire() {
                if (how === 'multilock') {
                  const locks = await multi.lock();
                  return { release: async () => locks.release() };
                }
                const held: LockHandle[] = [];
                for (const mutex of mutexes) held.push(await mutex.lock());
                return { release: async () => void (await Promise.all(held.map(async (h) => h.release()))) };
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
