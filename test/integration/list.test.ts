// listPrimitives against a real etcd: every kind recognised from its keys (leasehold's, Go's layouts,
// etcdctl's), hostile keys listed as foreign and never as holders, a paginated read at one revision,
// bounded, read-only.
import { describe, expect, test } from 'vitest';
import { listPrimitives, type Listing, type ListedPrimitive } from '../../src/index.js';
import { etcdctl, eventually, exited, uniqueName } from '../helpers.js';
import { etcdForFile } from '../fixture.js';
import { buildScene } from './inventory-scene.js';

const fx = etcdForFile(5);

const find = (l: Listing, kind: string, name: string): ListedPrimitive => {
  const p = l.primitives.find((x) => x.kind === kind && x.name === name);
  if (p === undefined) throw new Error(`no ${kind} ${name} in ${JSON.stringify(l.primitives.map((x) => `${x.kind} ${x.name}`))}`);
  return p;
};

describe('listPrimitives', () => {
  test('every kind under a prefix, with holders, waiters in order, permits, leader and term, multi-locks; hostile keys foreign', async () => {
    const prefix = `${uniqueName('scene')}/`;
    const scene = await buildScene(() => fx.etcd.client(), fx.admin, prefix);
    try {
      let l!: Listing;
      await eventually(async () => {
        l = await listPrimitives(fx.admin, { prefix });
        return find(l, 'mutex', `${prefix}mutex`).waiters.length === 3 && find(l, 'rwlock', `${prefix}rw`).waiters.length === 1 && find(l, 'semaphore', `${prefix}sem`).waiters.length === 1 && find(l, 'election', `${prefix}election`).waiters.length === 1;
      }, 15_000, 'every waiter queued');
      const [s1, s2, s3] = scene.sessions.map((s) => s.leaseHex);
      const mutex = find(l, 'mutex', `${prefix}mutex`);
      expect(mutex.holders.map((c) => c.leaseHex)).toEqual([s1]);
      expect(mutex.waiters.map((c) => [c.leaseHex, c.multiLock, c.problem])).toEqual([
        [s2, undefined, undefined],
        [s3, [`${prefix}multi/b`, `${prefix}mutex`], undefined],
        ['0', undefined, expect.stringContaining('the lock counts it as a contender')],
      ]);
      expect(find(l, 'mutex', `${prefix}multi/a`).holders[0]).toMatchObject({ leaseHex: s1, multiLock: [`${prefix}multi/a`, `${prefix}multi/b`] });
      expect(find(l, 'mutex', `${prefix}multi/b`).waiters.map((c) => c.leaseHex)).toEqual([s3]);
      const election = find(l, 'election', `${prefix}election`);
      expect(election.holders).toEqual([expect.objectContaining({ value: 'leader-1', leaseHex: s1 })]);
      expect(election.waiters).toEqual([expect.objectContaining({ value: 'candidate-3', leaseHex: s3 })]);
      const rw = find(l, 'rwlock', `${prefix}rw`);
      expect(rw.holders.map((c) => c.mode)).toEqual(['read', 'read']);
      expect(rw.waiters.map((c) => [c.mode, c.leaseHex])).toEqual([['write', s3]]);
      const sem = find(l, 'semaphore', `${prefix}sem`);
      expect(sem.permits).toEqual({ used: 3, total: 4 });
      expect(sem.holders.map((c) => c.weight)).toEqual([2, 1]);
      expect(sem.waiters.map((c) => c.weight)).toEqual([2]);
      expect(find(l, 'barrier', `${prefix}barrier`).holders).toEqual([expect.objectContaining({ leaseHex: s1 })]);
      const phase = find(l, 'double-barrier', `${prefix}phase`);
      expect([phase.round?.count, phase.holders.map((c) => c.leaseHex), phase.waiters]).toEqual([1, [s3], []]);
      expect(find(l, 'rwlock', `${prefix}go-rw`).holders.map((c) => c.mode)).toEqual(['read']);
      expect(find(l, 'barrier', `${prefix}go-barrier`).holders[0]!.leaseId).toBe('0');
      // Hostile keys: foreign with a reason, never a primitive, never a holder.
      expect(l.foreign.map((f) => [f.key, f.reason])).toEqual([
        [`${prefix}config/database_url`, expect.stringContaining("no primitive's layout")],
        [`${prefix}<script>alert(1)</script>/1`, expect.stringContaining('without a lease')],
        [`${prefix}🔒 emoji/⛔`, expect.stringContaining("no primitive's layout")],
        [`${prefix}bytes/\\xff\\xfeA`, expect.stringContaining('not valid UTF-8')],
        [`${prefix}sem-foreign/holders/x`, expect.stringContaining('not a permit record')],
      ]);
      expect(l.primitives.map((p) => p.name).filter((n) => /config|script|emoji|bytes|sem-foreign/.test(n))).toEqual([]);
      expect(l.primitives).toHaveLength(10);
      expect(l.truncated).toBe(false);
    } finally {
      await scene.close();
    }
  });

  test('etcdctl lock and elect are seen as a mutex holder and an election leader (value and term)', async () => {
    const prefix = `${uniqueName('ctl')}/`;
    const lock = etcdctl(fx.etcd.endpoints, ['lock', `${prefix}job`]);
    const elect = etcdctl(fx.etcd.endpoints, ['elect', `${prefix}leader`, 'from-etcdctl']);
    try {
      await eventually(() => lock.output().includes(`${prefix}job/`) && elect.output().includes('from-etcdctl'), 10_000, 'etcdctl holds and leads');
      const l = await listPrimitives(fx.admin, { prefix });
      const [kv] = (await fx.admin.getAll().prefix(`${prefix}leader/`).exec()).kvs;
      expect(find(l, 'mutex', `${prefix}job`).holders).toHaveLength(1);
      expect(find(l, 'election', `${prefix}leader`).holders).toEqual([expect.objectContaining({ value: 'from-etcdctl', token: BigInt(kv!.create_revision) })]);
      expect(l.foreign).toEqual([]);
    } finally {
      for (const c of [lock, elect]) {
        c.kill('SIGKILL');
        await exited(c);
      }
    }
  });

  test('pages at one revision give the listing one big read gives; maxKeys truncates; nothing is written', async () => {
    const prefix = `${uniqueName('pages')}/`;
    const lease = await fx.admin.lease(30, { autoKeepAlive: false }).grant();
    const hex = BigInt(lease).toString(16);
    for (let i = 0; i < 40; i++) await fx.admin.put(`${prefix}lock-${String(i).padStart(2, '0')}/${hex}`).value('').lease(lease).exec();
    const before = (await fx.admin.get('x').exec()).header.revision;
    const whole = await listPrimitives(fx.admin, { prefix });
    const paged = await listPrimitives(fx.admin, { prefix, pageSize: 3 });
    expect(paged).toEqual(whole);
    expect([whole.keys, whole.primitives.length, whole.truncated]).toEqual([40, 40, false]);
    const cut = await listPrimitives(fx.admin, { prefix, pageSize: 7, maxKeys: 10 });
    expect([cut.keys, cut.primitives.length, cut.truncated]).toEqual([10, 10, true]);
    expect(cut.primitives.map((p) => p.name)).toEqual(whole.primitives.slice(0, 10).map((p) => p.name));
    expect((await fx.admin.get('x').exec()).header.revision).toBe(before);
    await fx.admin.leaseClient.leaseRevoke({ ID: lease });
  });

  test('a page over gRPC’s 4 MiB answer limit (foreign values of 1.4 MiB) is asked again smaller', async () => {
    const prefix = `${uniqueName('big')}/`;
    const big = 'x'.repeat(1_400_000);
    for (let i = 0; i < 4; i++) await fx.admin.put(`${prefix}blob-${i}`).value(big).exec();
    const l = await listPrimitives(fx.admin, { prefix });
    expect(l.foreign.map((f) => f.valueBytes)).toEqual([1_400_000, 1_400_000, 1_400_000, 1_400_000]);
    await fx.admin.delete().prefix(prefix).exec();
  });

  test('bad options are refused, naming the value', async () => {
    await expect(listPrimitives(fx.admin, { pageSize: 0 })).rejects.toThrow('Expected `pageSize` to be an integer from 1 to 10000, got `0`');
    await expect(listPrimitives(fx.admin, { prefix: '\ud800' })).rejects.toThrow('well-formed Unicode');
    await expect(listPrimitives(fx.admin, { colour: 'red' } as never)).rejects.toThrow(/colour/);
  });
});
