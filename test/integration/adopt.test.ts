// Adopting the lease of a process that was SIGKILLed while it held something: the new process resumes
// what the lease holds, for every primitive, and never waits behind its own leftovers (which it now
// keeps alive, so they would never expire).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { Election, Mutex, ReadWriteLock, Semaphore, Session } from '../../src/index.js';
import { sumMetric } from '../../src/testing/index.js';
import { etcdForFile } from '../fixture.js';
import { keysUnder, uniqueName } from '../helpers.js';

const fx = etcdForFile(5);
const holdScript = fileURLToPath(new URL('../processes/hold.ts', import.meta.url));
/** Long enough that nothing here is explained by the old lease expiring. */
const TTL = 60;

interface Held {
  leaseId: string;
  key: string;
  token: string;
}

/** Starts a process that takes `kind` on `name`, waits until it holds, SIGKILLs it, returns what it held. */
async function holdAndDie(kind: string, name: string, extra: Record<string, unknown> = {}): Promise<Held> {
  const child = spawn(process.execPath, ['--conditions=leasehold-source', '--import', 'tsx', holdScript, JSON.stringify({ endpoints: [...fx.etcd.endpoints], kind, name, ttl: TTL, ...extra })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`hold.ts exited with ${code} before holding`)));
  });
  child.kill('SIGKILL');
  await exited;
  return JSON.parse(line) as Held;
}

/** Resolves within `ms` or rejects saying what hung. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} still waiting after ${ms} ms`)), ms))]);
}

async function adopt(held: Held): Promise<Session> {
  return Session.create(fx.etcd.client(), { leaseId: held.leaseId });
}

describe('adopting the lease of a SIGKILLed process', () => {
  test('Mutex: the lock is resumed with its old token', async () => {
    const name = uniqueName('adopt-mutex');
    const held = await holdAndDie('mutex', name);
    await using session = await adopt(held);
    const lock = await within(new Mutex(session, name).lock(), 5000, 'lock()');
    expect(lock.key).toBe(held.key);
    expect(lock.token.toString()).toBe(held.token);
    await lock.release();
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('Election: leadership is resumed with its old term and the new value', async () => {
    const name = uniqueName('adopt-election');
    const held = await holdAndDie('election', name);
    await using session = await adopt(held);
    const election = new Election(session, name);
    const leadership = await within(election.campaign('restarted'), 5000, 'campaign()');
    expect(leadership.term.toString()).toBe(held.token);
    expect((await election.leader()).value).toBe('restarted');
    await leadership.resign();
  });

  test('Semaphore: a held permit is handed back with its old token; leftovers do not block', async () => {
    const name = uniqueName('adopt-sem');
    const held = await holdAndDie('semaphore', name, { permits: 2, weight: 2 });
    await using session = await adopt(held);
    const sem = new Semaphore(session, name, { permits: 2 });
    const permit = await within(sem.acquire({ weight: 2 }), 5000, 'acquire({ weight: 2 })');
    expect(permit.key).toBe(held.key);
    expect(permit.token.toString()).toBe(held.token);
    expect(permit.held).toBe(true);
    await permit.release();
    // With the permit back, a fresh acquisition on the adopted session goes through at once.
    const again = await within(sem.acquire({ weight: 2 }), 5000, 'a second acquire');
    await again.release();
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
  });

  test('Semaphore: a leftover of another weight is released, not waited behind', async () => {
    const name = uniqueName('adopt-sem-other');
    const held = await holdAndDie('semaphore', name, { permits: 2, weight: 2 });
    await using session = await adopt(held);
    const permit = await within(new Semaphore(session, name, { permits: 2 }).acquire({ weight: 1 }), 5000, 'acquire({ weight: 1 })');
    expect(permit.key).not.toBe(held.key);
    expect(await keysUnder(fx.admin, `${name}/holders/`)).toEqual([permit.key]);
    await permit.release();
  });

  test('ReadWriteLock: a held write lock is resumed by writeLock(), and released for readLock()', async () => {
    const name = uniqueName('adopt-rw');
    const held = await holdAndDie('write', name);
    await using session = await adopt(held);
    const write = await within(new ReadWriteLock(session, name).writeLock(), 5000, 'writeLock()');
    expect(write.key).toBe(held.key);
    expect(write.token.toString()).toBe(held.token);
    await write.release();

    const name2 = uniqueName('adopt-rw-read');
    const held2 = await holdAndDie('write', name2);
    await using session2 = await adopt(held2);
    const read = await within(new ReadWriteLock(session2, name2).readLock(), 5000, 'readLock() behind our own leftover writer');
    expect(await keysUnder(fx.admin, `${name2}/`)).toEqual([read.key]);
    await read.release();
  });

  test('a session that granted its own lease reads nothing extra', async () => {
    const s = await fx.session();
    const ranges = async (): Promise<number> => sumMetric(await fx.etcd.metrics(), 'grpc_server_handled_total', { grpc_method: 'Range' });
    const before = await ranges();
    const lock = await new ReadWriteLock(s, uniqueName('fresh-rw')).readLock();
    expect(await ranges()).toBe(before); // one join txn, no range read of leftovers
    await lock.release();
  });
});
