/**
 * Work the benchmark runs in a process of its own: memory per held lock (a fresh heap, `--expose-gc`)
 * and a campaigning leader that the parent kills with SIGKILL (a crashed service). Talks to the parent
 * with JSON lines on stdout. Not an entry point for users: `bench/run.ts` spawns it.
 *
 *   child.ts memory-leasehold <endpoint> <count> <ttl> [etcd3|h2]
 *   child.ts memory-etcd3 <endpoint> <count> <ttl>
 *   child.ts campaign-etcd3 <endpoint> <name> <ttl>
 *   child.ts campaign-leasehold <endpoint> <name> <ttl>
 *   child.ts waiters <endpoint> <count> <ttl> <handoffs> <metrics url>
 */
import { Etcd3, type Lock } from 'etcd3';
import { Election } from '../src/election.js';
import { Mutex, Session, type LockHandle } from '../src/index.js';
import { transportFor, transportKind } from '../src/transport/select.js';
import { hubStats } from '../src/transport/watch-hub.js';
import { elected } from './scenarios/locks.js';

const [mode = '', endpoint = '', arg1 = '', arg2 = '', arg3 = '', arg4 = ''] = process.argv.slice(2);

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function usage(): { rss: number; heapUsed: number; external: number; arrayBuffers: number } {
  gc();
  gc();
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers };
}

/** Runs `fn` for 0…count-1 with at most `width` in flight. */
async function pool(count: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, count) }, async () => {
      while (next < count) await fn(next++);
    }),
  );
}

async function memory(kind: 'leasehold' | 'etcd3', count: number, ttl: number): Promise<void> {
  const client = new Etcd3({ hosts: [endpoint] });
  await client.get('bench/warmup').exec();
  const prefix = `bench/memory-${kind}-${process.pid}`;
  let session: Session | undefined;
  const transport = arg3 === 'h2' || arg3 === 'etcd3' ? arg3 : undefined;
  if (kind === 'leasehold') session = await Session.create(client, { ttl, ...(transport ? { transport } : {}) });
  const baseline = usage();
  const start = performance.now();
  const handles: (LockHandle | Lock)[] = [];
  await pool(count, 50, async (i) => {
    if (session) {
      handles.push(await new Mutex(session, `${prefix}/${i}`).lock());
    } else {
      const lock = client.lock(`${prefix}/${i}`).ttl(ttl);
      await lock.acquire();
      handles.push(lock);
    }
  });
  const acquireSeconds = (performance.now() - start) / 1000;
  // Let keep-alive streams settle before measuring what holding costs.
  await new Promise((r) => setTimeout(r, 1000));
  const held = usage();
  const peakRss = process.resourceUsage().maxRSS * 1024;
  send({ kind, count, baseline, held, peakRss, acquireSeconds });
  await pool(handles.length, 50, async (i) => {
    const h = handles[i]!;
    await h.release();
  });
  await session?.close();
  client.close();
}

async function campaignEtcd3(name: string, ttl: number): Promise<void> {
  const client = new Etcd3({ hosts: [endpoint] });
  const campaign = client.election(name, ttl).campaign(`child-${process.pid}`);
  await elected(campaign);
  send({ elected: true, pid: process.pid });
  // Lead until killed.
  setInterval(() => undefined, 60_000);
}

async function campaignLeasehold(name: string, ttl: number): Promise<void> {
  const client = new Etcd3({ hosts: [endpoint] });
  const session = await Session.create(client, { ttl });
  const leadership = await new Election(session, name).campaign(`child-${process.pid}`);
  send({ elected: true, pid: process.pid, term: leadership.term.toString() });
  // Lead until killed.
  setInterval(() => undefined, 60_000);
}

/**
 * `count` Sessions on one client, each with a Mutex waiter queued behind one holder: how many watch
 * streams they hold (the client's hub, and etcd's count of open Watch streams), the heap they cost,
 * and the handoff latency (release resolved → next holder's lock resolved) at that queue depth.
 */
async function waiters(count: number, ttl: number, handoffs: number): Promise<void> {
  const client = new Etcd3({ hosts: [endpoint] });
  await client.get('bench/warmup').exec();
  const name = `bench/waiters-${process.pid}`;
  const holder = await Session.create(client, { ttl });
  let held: LockHandle = await new Mutex(holder, name).lock();
  const baseline = usage();
  const sessions: Session[] = [];
  await pool(count, 50, async () => {
    sessions.push(await Session.create(client, { ttl }));
  });
  const stop = new AbortController();
  const granted: LockHandle[] = [];
  let wake: (() => void) | undefined;
  const waits = sessions.map(async (s) =>
    new Mutex(s, name).lock({ signal: stop.signal }).then(
      (h) => {
        granted.push(h);
        wake?.();
      },
      () => undefined,
    ),
  );
  const start = performance.now();
  while ((await client.getAll().prefix(`${name}/`).count()) < count + 1) await new Promise((r) => setTimeout(r, 50));
  const queueSeconds = (performance.now() - start) / 1000;
  await new Promise((r) => setTimeout(r, 1000)); // every waiter watching
  const queued = usage();
  const hub = hubStats(transportFor(client, transportKind(undefined)).transport);
  const metrics = await (await fetch(`${arg4}/metrics`)).text();
  const metric = (series: string): number =>
    [...metrics.matchAll(new RegExp(`^${series}\\{[^}]*grpc_method="Watch"[^}]*\\} (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  const etcdOpenWatchStreams = metric('grpc_server_started_total') - metric('grpc_server_handled_total');
  const handoffMs: number[] = [];
  for (let i = 0; i < handoffs; i++) {
    const next = new Promise<void>((resolve) => (wake = resolve));
    await held.release();
    const released = performance.now();
    await next;
    handoffMs.push(performance.now() - released);
    held = granted.shift()!;
  }
  send({ count, baseline, queued, queueSeconds, hubStreamsOpened: hub.opened, hubWatchers: hub.watchers, etcdOpenWatchStreams, handoffMs });
  stop.abort();
  await Promise.allSettled(waits);
  for (const h of granted) await h.release();
  await held.release();
  await pool(sessions.length, 50, async (i) => sessions[i]!.close());
  await holder.close();
  client.close();
}

async function main(): Promise<void> {
  switch (mode) {
    case 'memory-leasehold':
      return memory('leasehold', Number(arg1), Number(arg2));
    case 'memory-etcd3':
      return memory('etcd3', Number(arg1), Number(arg2));
    case 'campaign-etcd3':
      return campaignEtcd3(arg1, Number(arg2));
    case 'campaign-leasehold':
      return campaignLeasehold(arg1, Number(arg2));
    case 'waiters':
      return waiters(Number(arg1), Number(arg2), Number(arg3));
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((error: unknown) => {
  send({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  process.exit(1);
});
