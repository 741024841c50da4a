// Introspection against a real etcd: queue()/holder()/holders()/waiters()/observe() on every
// primitive, instance and static, on names shared with `etcdctl lock` (Go's concurrency.Mutex), with
// foreign keys present; validation of what enters.
import { spawn } from 'node:child_process';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Election, Mutex, ReadWriteLock, Semaphore, Session, type Contender } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { eventually, keysUnder, uniqueName } from '../helpers.js';

let etcd: EtcdCluster;
let admin: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  admin = etcd.client();
});

afterAll(async () => {
  await etcd?.stop();
});

const session = (): Promise<Session> => Session.create(etcd.client(), { ttl: 10 });

/** Collects what an observe() iteration yields until `stop()`. */
function collect<T>(iterable: (signal: AbortSignal) => AsyncIterable<T>): { seen: T[]; stop: () => Promise<void> } {
  const controller = new AbortController();
  const seen: T[] = [];
  const done = (async () => {
    for await (const v of iterable(controller.signal)) seen.push(v);
  })();
  return { seen, stop: async () => (controller.abort(), await done) };
}

describe('Mutex', () => {
  test('queue(), holder(), waiters() — with an etcdctl (Go client) waiter in the queue — and the static queue()', async () => {
    const name = uniqueName('mq');
    await using s1 = await session();
    await using s2 = await session();
    const m1 = new Mutex(s1, name);
    expect(await m1.holder()).toBeNull();
    expect(await m1.queue()).toMatchObject({ holders: [], waiters: [] });
    await using held = await m1.lock();
    const ctl = spawn('etcdctl', [`--endpoints=${etcd.endpoints.join(',')}`, 'lock', name], { stdio: 'ignore', env: { ...process.env, ETCDCTL_API: '3' } });
    try {
      await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 2, 10_000, 'etcdctl queued');
      const waiting = new Mutex(s2, name).lock();
      await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 3, 10_000, 'second session queued');
      const keys = await keysUnder(admin, `${name}/`);
      const q = await m1.queue();
      expect(q.holders).toEqual([{ key: held.key, token: held.token, leaseId: s1.leaseId, leaseHex: s1.leaseHex, value: '' }]);
      expect(q.waiters.map((c) => c.key)).toEqual(keys.slice(1));
      expect(q.waiters[1]).toMatchObject({ leaseId: s2.leaseId, leaseHex: s2.leaseHex });
      expect(q.waiters[0]!.token).toBeLessThan(q.waiters[1]!.token);
      expect(q.revision).toBeGreaterThanOrEqual(q.waiters[1]!.token);
      expect(await m1.holder()).toEqual(q.holders[0]);
      expect((await m1.waiters()).map((c) => c.key)).toEqual(keys.slice(1));
      const fromClient = await Mutex.queue(etcd.client(), name);
      expect({ ...fromClient, revision: 0n }).toEqual({ ...q, revision: 0n });
      const ctlExit = new Promise((resolve) => ctl.once('exit', resolve));
      ctl.kill('SIGINT'); // etcdctl deletes its key (and revokes its lease) on SIGINT
      await ctlExit;
      await held.release();
      await (await waiting).release();
    } finally {
      ctl.kill('SIGKILL');
    }
  });

  test('observe() yields the holder, every change, and null when free; tokens only grow', async () => {
    const name = uniqueName('mo');
    await using s1 = await session();
    await using s2 = await session();
    const watcher = collect((signal) => Mutex.observe(etcd.client(), name, { signal }));
    await eventually(() => watcher.seen.length === 1, 5000, 'first state');
    expect(watcher.seen[0]).toBeNull();
    const a = await new Mutex(s1, name).lock();
    const bWaiting = new Mutex(s2, name).lock();
    await eventually(() => (watcher.seen.at(-1) as Contender | null)?.key === a.key, 5000, 'a holds');
    await a.release();
    const b = await bWaiting;
    await eventually(() => (watcher.seen.at(-1) as Contender | null)?.key === b.key, 5000, 'b holds');
    await b.release();
    await eventually(() => watcher.seen.at(-1) === null, 5000, 'free');
    await watcher.stop();
    const tokens = watcher.seen.filter((c): c is Contender => c !== null).map((c) => c.token);
    expect(tokens).toEqual([...tokens].sort((x, y) => (x < y ? -1 : 1)));
    expect(tokens).toEqual([a.token, b.token]);
  });

  test('a lease-less foreign key is reported as holding with leaseId 0, never hidden', async () => {
    const name = uniqueName('mforeign');
    await admin.put(`${name}/deadbeef`).value('');
    const q = await Mutex.queue(etcd.client(), name);
    expect(q.holders).toEqual([expect.objectContaining({ key: `${name}/deadbeef`, leaseId: '0' })]);
    await admin.delete().key(`${name}/deadbeef`);
  });
});

describe('ReadWriteLock and Semaphore', () => {
  test('ReadWriteLock: holders are the readers before the first writer, waiters the rest, in order; observe() follows them', async () => {
    const name = uniqueName('rwq');
    await using s1 = await session();
    await using s2 = await session();
    const rw1 = new ReadWriteLock(s1, name);
    const watcher = collect((signal) => rw1.observe({ signal }));
    await eventually(() => watcher.seen.length === 1, 5000, 'first state');
    const r1 = await rw1.readLock();
    const w = new ReadWriteLock(s2, name).writeLock();
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 2, 5000, 'writer queued');
    const r2 = rw1.readLock(); // behind the writer
    await eventually(async () => (await keysUnder(admin, `${name}/`)).length === 3, 5000, 'reader queued');
    const q = await ReadWriteLock.queue(etcd.client(), name);
    expect(q.holders.map((c) => [c.key, c.mode])).toEqual([[r1.key, 'read']]);
    expect(q.waiters.map((c) => c.mode)).toEqual(['write', 'read']);
    expect(await rw1.holders()).toEqual(q.holders);
    expect((await rw1.waiters()).map((c) => c.mode)).toEqual(['write', 'read']);
    await r1.release();
    const wh = await w;
    await eventually(() => watcher.seen.at(-1)?.[0]?.key === wh.key, 5000, 'observe: the writer holds');
    await wh.release();
    const r2h = await r2;
    await eventually(() => watcher.seen.at(-1)?.[0]?.key === r2h.key, 5000, 'observe: the reader holds');
    await r2h.release();
    await eventually(() => watcher.seen.at(-1)?.length === 0, 5000, 'observe: free');
    await watcher.stop();
    expect(watcher.seen[0]).toEqual([]);
  });

  test('Semaphore: holders with weights, waiters in order, a foreign record reported with its problem; observe() follows holders', async () => {
    const name = uniqueName('semq');
    await using s1 = await session();
    await using s2 = await session();
    const sem = new Semaphore(s1, name, { permits: 3 });
    const watcher = collect((signal) => Semaphore.observe(etcd.client(), name, { signal }));
    await eventually(() => watcher.seen.length === 1, 5000, 'first state');
    expect(watcher.seen[0]).toEqual([]);
    const p1 = await sem.acquire({ weight: 2 });
    const p2 = new Semaphore(s2, name, { permits: 3 }).acquire({ weight: 2 });
    await eventually(async () => (await sem.waiters()).length === 1, 5000, 'a waiter');
    const q = await sem.queue();
    expect(q.holders).toEqual([expect.objectContaining({ key: p1.key, token: p1.token, weight: 2, permits: 3 })]);
    expect(q.waiters).toEqual([expect.objectContaining({ weight: 2, permits: 3, leaseId: s2.leaseId })]);
    await eventually(() => watcher.seen.at(-1)?.[0]?.key === p1.key, 5000, 'observe: p1 holds');
    await p1.release();
    const p2h = await p2;
    await eventually(() => watcher.seen.at(-1)?.[0]?.key === p2h.key, 5000, 'observe: p2 holds');
    await p2h.release();
    await watcher.stop();

    const lease = admin.lease(10);
    await lease.put(`${name}/holders/foreign`).value('not json');
    const withForeign = await Semaphore.queue(etcd.client(), name);
    expect(withForeign.holders).toEqual([expect.objectContaining({ key: `${name}/holders/foreign`, weight: undefined, problem: expect.stringContaining('not a permit record') })]);
    await lease.revoke();
  });

  test('the other forms follow the same queues: Mutex#observe, Semaphore#holders and #observe, ReadWriteLock.observe', async () => {
    const base = uniqueName('forms');
    await using s = await session();
    const mutex = new Mutex(s, `${base}-m`);
    const sem = new Semaphore(s, `${base}-s`, { permits: 2 });
    const rw = new ReadWriteLock(s, `${base}-rw`);
    const m = collect((signal) => mutex.observe({ signal }));
    const p = collect((signal) => sem.observe({ signal }));
    const r = collect((signal) => ReadWriteLock.observe(etcd.client(), `${base}-rw`, { signal }));
    await eventually(() => m.seen.length === 1 && p.seen.length === 1 && r.seen.length === 1, 5000, 'first states');
    expect(await sem.holders()).toEqual([]);
    const lock = await mutex.lock();
    const permit = await sem.acquire();
    const read = await rw.readLock();
    await eventually(
      () => m.seen.at(-1)?.key === lock.key && p.seen.at(-1)?.[0]?.key === permit.key && r.seen.at(-1)?.[0]?.key === read.key,
      5000,
      'every holder seen',
    );
    expect(await sem.holders()).toEqual([expect.objectContaining({ key: permit.key, token: permit.token, weight: 1, permits: 2, leaseId: s.leaseId })]);
    expect(r.seen.at(-1)).toEqual([expect.objectContaining({ key: read.key, token: read.token, mode: 'read' })]);
    await Promise.all([lock.release(), permit.release(), read.release()]);
    await eventually(() => m.seen.at(-1) === null && p.seen.at(-1)?.length === 0 && r.seen.at(-1)?.length === 0, 5000, 'all free');
    await Promise.all([m.stop(), p.stop(), r.stop()]);
    expect([m.seen[0], p.seen[0], r.seen[0]]).toEqual([null, [], []]);
  });

  test('Election.queue(): the leader and the campaigners behind it, with values and terms', async () => {
    const name = uniqueName('eq');
    await using s1 = await session();
    await using s2 = await session();
    const leading = await new Election(s1, name).campaign('one');
    const second = new Election(s2, name).campaign('two');
    await eventually(async () => (await Election.queue(etcd.client(), name)).waiters.length === 1, 5000, 'second campaigns');
    const q = await new Election(s1, name).queue();
    expect(q.holders).toEqual([expect.objectContaining({ key: leading.key, token: leading.term, value: 'one' })]);
    expect(q.waiters).toEqual([expect.objectContaining({ value: 'two', leaseId: s2.leaseId })]);
    await leading.resign();
    await (await second).resign();
  });
});

describe('validation', () => {
  test('bad clients, names and options are refused, naming the value', async () => {
    const client = etcd.client();
    await expect(Mutex.queue({} as never, 'x')).rejects.toThrow('Expected `client` of Mutex.queue to be an etcd3 Etcd3 or Namespace');
    await expect(Mutex.queue(client, 'x/')).rejects.toThrow('not to end with "/"');
    await expect(Semaphore.queue(client, 'x', { signl: 1 } as never)).rejects.toThrow(/signl/);
    await expect(ReadWriteLock.queue(client, 'x', { requestTimeout: -1 })).rejects.toThrow(/requestTimeout/);
    expect(() => Mutex.observe(client, 'x', { signal: 'no' as never })).toThrow(/signal/);
    await using s = await session();
    await expect(new Mutex(s, 'x').queue({ signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow('stop');
  });
});
