// 50 Sessions in one process on one etcd3 client with its default fault handling (breakers on; the
// test runs it with LEASEHOLD_TRANSPORT=etcd3), each looping lock → release on a Mutex of its own,
// and new Sessions created and closed meanwhile — the shape that, on a starved CPU, used to let
// etcd3's BrokenCircuitError escape from release() and Session.create and crash the process. Runs
// for argv[3] ms, then prints one JSON line: how many cycles completed, and every error seen by its
// name, whether it was a leasehold error.
// Usage: node --import tsx test/processes/many-sessions.ts '<endpoints,comma-separated>' <ms>
import { Etcd3 } from 'etcd3';
import { isLeaseholdError, Mutex, Session } from '../../src/index.js';

const endpoints = (process.argv[2] ?? '').split(',');
const runMs = Number(process.argv[3] ?? 10_000);
const client = new Etcd3({ hosts: endpoints });
const errors = new Map<string, { count: number; leasehold: boolean }>();
let cycles = 0;
let creates = 0;
const note = (error: unknown, signal?: AbortSignal): void => {
  if (signal?.aborted && error === signal.reason) {
    const seen = errors.get('abort (the caller\'s own reason)') ?? { count: 0, leasehold: true };
    seen.count++;
    errors.set('abort (the caller\'s own reason)', seen);
    return;
  }
  const name = error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]!.slice(0, 120)}` : String(error);
  const key = error instanceof Error ? error.name : typeof error;
  const seen = errors.get(key) ?? { count: 0, leasehold: isLeaseholdError(error) };
  seen.count++;
  errors.set(key, seen);
  if (!seen.leasehold) process.stderr.write(`not a leasehold error: ${name}\n`);
};
process.on('unhandledRejection', (reason) => {
  note(reason);
  process.stderr.write(`unhandled rejection: ${String(reason)}\n`);
  process.exitCode = 3;
});

const until = performance.now() + runMs;
async function worker(i: number): Promise<void> {
  while (performance.now() < until) {
    let session: Session;
    try {
      session = await Session.create(client, { ttl: 2, requestTimeout: 300 });
      creates++;
    } catch (error) {
      note(error);
      continue;
    }
    const mutex = new Mutex(session, `many/${process.pid}/${i}`);
    while (performance.now() < until && session.alive) {
      const signal = AbortSignal.timeout(5000);
      try {
        const lock = await mutex.lock({ signal });
        await lock.release();
        cycles++;
      } catch (error) {
        note(error, signal);
      }
    }
    await session.close();
  }
}
await Promise.all(Array.from({ length: 50 }, async (_, i) => worker(i)));
process.stdout.write(`${JSON.stringify({ cycles, creates, errors: Object.fromEntries(errors) })}\n`);
client.close();
