// `npm run demo`: four worker processes contend for one lock; one is killed with SIGKILL while it holds
// the lock, and the lock moves on once that worker's lease expires. Ends with a summary checked from
// the workers' own logs. Uses ETCD_ENDPOINTS when set, else starts a throwaway etcd (leasehold/testing).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { Mutex, Session } from 'leasehold';
import { startEtcd } from 'leasehold/testing';

const LOCK = 'demo/lock';
const COUNTER = 'demo/counter';
const TTL = 2;

interface Event {
  worker: number;
  event: 'acquired' | 'released' | 'effect' | 'lost' | 'ready';
  token?: string;
  at: string; // process.hrtime.bigint(): one monotonic clock on this host
}

/** A worker: lock, one guarded increment, hold a moment, release, again — until SIGTERM. */
async function worker(id: number): Promise<void> {
  const etcd = new Etcd3({ hosts: process.env['ETCD_ENDPOINTS']!.split(',') });
  const session = await Session.create(etcd, { ttl: TTL });
  const log = (e: Omit<Event, 'worker' | 'at'>) =>
    console.log(JSON.stringify({ worker: id, at: process.hrtime.bigint().toString(), ...e }));
  const stop = new AbortController();
  process.once('SIGTERM', () => stop.abort());
  log({ event: 'ready' });
  const mutex = new Mutex(session, LOCK);
  try {
    while (!stop.signal.aborted) {
      const lock = await mutex.lock({ signal: stop.signal });
      log({ event: 'acquired', token: lock.token.toString() });
      const current = Number((await etcd.get(COUNTER).string()) ?? '0');
      await lock.commit(etcd.put(COUNTER).value(String(current + 1))); // only while still held
      log({ event: 'effect', token: lock.token.toString() });
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 150));
      log({ event: 'released', token: lock.token.toString() });
      await lock.release();
    }
  } catch (error) {
    if (!stop.signal.aborted) throw error;
  } finally {
    await session.close();
    etcd.close();
  }
}

/** The parent: starts etcd and the workers, kills one while it holds the lock, checks the logs. */
async function main(): Promise<void> {
  await using etcd = await startEtcd();
  const endpoints = etcd.endpoints.join(',');
  console.log(`etcd: ${endpoints} (${etcd.provider})`);
  const self = fileURLToPath(import.meta.url);
  const events: Event[] = [];
  const workers = new Map<number, ChildProcess>();
  let victim: number | undefined;
  let killedAt: bigint | undefined;
  let victimToken: string | undefined;
  let handoffAfterKill: number | undefined;

  for (let id = 1; id <= 4; id++) {
    const child = spawn(process.execPath, [...process.execArgv, self, 'worker', String(id)], {
      env: { ...process.env, ETCD_ENDPOINTS: endpoints },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    workers.set(id, child);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as Event;
      events.push(e);
      if (e.event === 'acquired') {
        if (killedAt !== undefined && handoffAfterKill === undefined) {
          handoffAfterKill = Number(BigInt(e.at) - killedAt) / 1e6;
          console.log(`  worker ${e.worker} holds ${LOCK} (token ${e.token}) — ${handoffAfterKill.toFixed(0)} ms after the kill`);
        } else {
          console.log(`  worker ${e.worker} holds ${LOCK} (token ${e.token})`);
        }
      }
      // The kill comes after the holder's guarded write was acknowledged (it holds on for 150–300 ms
      // more), so every write that reached etcd is one the logs count.
      const acquisitions = events.filter((x) => x.event === 'acquired').length;
      if (e.event === 'effect' && victim === undefined && acquisitions >= 6) {
        victim = e.worker;
        victimToken = e.token;
        child.kill('SIGKILL');
        killedAt = process.hrtime.bigint();
        console.log(`  ✗ killed worker ${victim} with SIGKILL while it holds the lock (token ${e.token});`);
        console.log(`    the others wait until its lease expires (TTL ${TTL} s), then the lock moves on`);
      }
    });
  }

  const started = Date.now();
  while ((handoffAfterKill === undefined || events.filter((x) => x.event === 'acquired').length < 16) && Date.now() - started < 40_000) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await Promise.all(
    [...workers].map(([id, child]) =>
      id === victim || child.exitCode !== null
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
    ),
  );

  // The summary, checked from the logs: tokens only grow, no two holders overlap, no lost update.
  const acquired = events.filter((e) => e.event === 'acquired');
  const tokens = acquired.map((e) => BigInt(e.token!));
  const increasing = tokens.every((t, i) => i === 0 || t > tokens[i - 1]!);
  const timeline = [...events].filter((e) => e.event === 'acquired' || e.event === 'released').sort((a, b) => (BigInt(a.at) < BigInt(b.at) ? -1 : 1));
  let holder: string | undefined;
  let overlap = false;
  for (const e of timeline) {
    if (e.event === 'acquired') {
      if (holder !== undefined && !(holder === victimToken && killedAt !== undefined && BigInt(e.at) > killedAt)) overlap = true;
      holder = e.token;
    } else if (holder === e.token) {
      holder = undefined;
    }
  }
  const effects = events.filter((e) => e.event === 'effect').length;
  const client = etcd.client();
  const counter = Number((await client.get(COUNTER).string()) ?? '0');
  console.log('\nsummary');
  console.log(`  acquisitions:          ${acquired.length} by ${new Set(acquired.map((e) => e.worker)).size} workers`);
  console.log(`  tokens increasing:     ${increasing ? 'yes' : 'NO'} (${tokens[0]} … ${tokens.at(-1)})`);
  console.log(`  overlapping holders:   ${overlap ? 'YES' : 'none'}`);
  console.log(`  guarded increments:    ${effects} acknowledged, counter = ${counter}`);
  console.log(`  handoff after SIGKILL: ${handoffAfterKill === undefined ? 'never' : `${handoffAfterKill.toFixed(0)} ms (TTL ${TTL} s)`}`);
  const ok = increasing && !overlap && counter === effects && handoffAfterKill !== undefined && acquired.length >= 10;
  console.log(ok ? '\nOK' : '\nFAILED');
  if (!ok) process.exitCode = 1;
}

if (process.argv[2] === 'worker') await worker(Number(process.argv[3]));
else await main();
