// Cap concurrent transcodes across a fleet: every worker may run jobs in parallel, but at most
// `permits` run at once across all of them.
// Run: ETCD_ENDPOINTS=127.0.0.1:2379 node --conditions=leasehold-source --import tsx examples/semaphore.ts
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { Semaphore, Session } from 'leasehold';

const endpoints = (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',');
const permits = 2;
let running = 0;
let peak = 0;

/** A stand-in for `ffmpeg`: stops early when `signal` aborts (the permit was lost). */
async function transcode(file: string, signal: AbortSignal): Promise<void> {
  running++;
  peak = Math.max(peak, running);
  try {
    await delay(50, undefined, { signal });
    console.log(`transcoded ${file}`);
  } finally {
    running--;
  }
}

/** One pod: its own client and Session, three jobs at a time, each taking a permit. */
async function worker(id: number): Promise<void> {
  const etcd = new Etcd3({ hosts: endpoints });
  try {
    await using session = await Session.create(etcd, { ttl: 10 });
    const transcodes = new Semaphore(session, 'examples/ffmpeg', { permits });
    await Promise.all(
      [1, 2, 3].map(async (job) => {
        // Give up if no permit is free within a minute; the queue key is then removed.
        await using permit = await transcodes.acquire({ signal: AbortSignal.timeout(60_000) });
        await transcode(`worker${id}-video${job}.mp4`, permit.signal);
      }),
    );
  } finally {
    etcd.close();
  }
}

await Promise.all([1, 2, 3].map(worker));
console.log(`at most ${peak} transcodes ran at once (permits: ${permits})`);
if (peak > permits) process.exitCode = 1;
