// The in-memory fake of the port, held to a real etcd: the same script of requests runs against a
// fresh etcd (through the h2 transport) and against the fake, and their answers must agree — so the
// fake the engine's unit tests use cannot drift from etcd unnoticed.
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { H2Transport } from '../../src/transport/h2/transport.js';
import type { WatchResponse } from '../../src/transport/messages.js';
import type { EtcdTransport } from '../../src/transport/port.js';
import { FakeTransport } from './fake-transport.js';

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

const call = { timeoutMs: 5000 };
const b = (s: string): Buffer => Buffer.from(s);

/** Runs the script on `t` and returns everything it saw, with member ids, raft terms and lease ids made comparable. */
async function script(t: EtcdTransport, compact: (revision: bigint) => Promise<void>): Promise<unknown[]> {
  const log: unknown[] = [];
  const watched: WatchResponse[] = [];
  const settle = async (n: number): Promise<void> => {
    for (let i = 0; i < 100 && watched.length < n; i++) await delay(20);
    // The order of answers to different watchers of one revision is not etcd's contract: sort by watcher.
    log.push(watched.splice(0).sort((x, y) => Number(x.header.revision - y.header.revision) || x.watchId - y.watchId));
  };
  const attempt = async (p: Promise<unknown>): Promise<unknown> => p.catch((e: { code?: string; kind?: string }) => ({ code: e.code, kind: e.kind }));
  const { id: lease } = await t.leaseGrant(30, call);
  const watch = await t.watch({ message: (res) => watched.push(res), end: () => undefined });
  watch.send({ create: { key: b('q/'), rangeEnd: b('q0'), watchId: 1, filters: ['noPut'], prevKv: true } });
  watch.send({ create: { key: b('q/a'), watchId: 2 } });
  await settle(2);
  log.push(await t.txn({ compare: [], success: [{ put: { key: b('q/a'), value: b('first') } }] }, call));
  const join = {
    compare: [{ key: b('q/b'), target: 'create' as const, result: 'equal' as const, createRevision: 0n }],
    success: [{ range: { key: b('q/'), rangeEnd: b('q0'), sortTarget: 'create' as const, sortOrder: 'descend' as const, limit: 1, keysOnly: true } }, { put: { key: b('q/b'), value: b('🔒'), lease } }],
    failure: [{ range: { key: b('q/b') } }],
  };
  log.push(await t.txn(join, call), await t.txn(join, call));
  await settle(1);
  log.push(
    await t.txn(
      {
        compare: [
          { key: b('q/a'), target: 'value', result: 'equal', value: b('first') },
          { key: b('q/a'), target: 'version', result: 'less', version: 2n },
          { key: b('q/b'), target: 'lease', result: 'equal', lease },
          { key: b('q/zz'), target: 'mod', result: 'equal', modRevision: 0n },
        ],
        success: [{ put: { key: b('q/a'), value: b('second'), prevKv: true } }, { range: { key: b('q/'), rangeEnd: b('q0'), sortTarget: 'mod', sortOrder: 'ascend', countOnly: false } }],
        failure: [],
      },
      call,
    ),
  );
  await settle(1);
  log.push(await t.range({ key: b('q/a'), revision: 2n }, call), await t.range({ key: b('q/'), rangeEnd: b('q0'), countOnly: true }, call));
  log.push(await t.range({ key: b('q/'), rangeEnd: b('q0'), limit: 1, sortTarget: 'key', sortOrder: 'descend', maxCreateRevision: 2n }, call));
  log.push(await attempt(t.range({ key: b('q/a'), revision: 99n }, call)));
  log.push(await t.txn({ compare: [], success: [{ deleteRange: { key: b('q/a'), prevKv: true } }] }, call));
  await settle(2);
  watch.send({ create: { key: b('q/a'), watchId: 3, startRevision: 2n } }); // replays history
  await settle(4);
  watch.send({ cancel: { watchId: 2 } });
  watch.send({ progress: true });
  await settle(2);
  log.push((await t.leaseTimeToLive(lease, call)).grantedTtl);
  await t.leaseRevoke(lease, call);
  await settle(1); // the lease's key goes, with a delete event
  log.push(await t.leaseTimeToLive(lease, call), await attempt(t.leaseRevoke(lease, call)), await t.range({ key: b('q/'), rangeEnd: b('q0') }, call));
  log.push(await attempt(t.txn({ compare: [], success: [{ put: { key: b('q/c'), value: b(''), lease } }] }, call)));
  // Compaction: reads and watches from before it are refused, from it on they are served.
  await compact(4n);
  log.push(await attempt(t.range({ key: b('q/a'), revision: 3n }, call)), await t.range({ key: b('q/'), rangeEnd: b('q0'), revision: 4n }, call));
  watch.send({ create: { key: b('q/'), rangeEnd: b('q0'), watchId: 4, startRevision: 3n } });
  await settle(2);
  watch.send({ create: { key: b('q/'), rangeEnd: b('q0'), watchId: 5, startRevision: 4n } });
  await settle(2);
  watch.close();
  return JSON.parse(
    JSON.stringify(log, (k, v: unknown) => {
      if (k === 'memberId' || k === 'raftTerm') return undefined;
      if (typeof v === 'bigint') return `${v}n`;
      if (v === lease) return 'LEASE';
      if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString();
      return v;
    }),
  ) as unknown[];
}

test('the fake answers the script as a real etcd does', async () => {
  const real = new H2Transport({ hosts: [...etcd.endpoints] });
  const fake = new FakeTransport();
  const client = etcd.client();
  try {
    const fakeLog = await script(fake, async (revision) => fake.compact(revision));
    const realLog = await script(real, async (revision) => void (await client.kv.compact({ revision: String(revision), physical: true })));
    expect(fakeLog).toEqual(realLog);
  } finally {
    real.close();
    fake.close();
  }
});

test('faults to inject: a failed call, broken streams, a lease that expires and takes its keys', async () => {
  const fake = new FakeTransport();
  try {
    fake.faults.failNext();
    await expect(fake.range({ key: b('k') }, call)).rejects.toMatchObject({ code: 'UNAVAILABLE', kind: 'transient' });
    fake.faults.failWhere((name, req) => name === 'range' && (req as { key: Buffer }).key.equals(b('k2')));
    await fake.range({ key: b('k') }, call);
    await expect(fake.range({ key: b('k2') }, call)).rejects.toMatchObject({ kind: 'transient' });
    await fake.range({ key: b('k2') }, call);
    fake.faults.loseAnswer((req) => req.success[0]?.put?.key.equals(b('lost')) ?? false);
    await expect(fake.txn({ compare: [], success: [{ put: { key: b('lost'), value: b('v') } }] }, call)).rejects.toMatchObject({ kind: 'transient' });
    expect((await fake.range({ key: b('lost') }, call)).kvs.map((kv) => kv.value.toString())).toEqual(['v']); // applied nonetheless
    fake.faults.failNext(undefined, 2);
    await expect(fake.range({ key: b('k') }, call)).rejects.toMatchObject({ kind: 'transient' });
    await expect(fake.range({ key: b('k') }, call)).rejects.toMatchObject({ kind: 'transient' });
    const ended: string[] = [];
    const answers: WatchResponse[] = [];
    const stream = await fake.watch({ message: (res) => answers.push(res), end: (e) => ended.push(e.code) });
    stream.send({ create: { key: b('a'), watchId: 1 } });
    stream.send({ create: { key: b('q/'), rangeEnd: b('q0'), watchId: 2 } });
    await delay(1);
    expect(fake.watched()).toEqual(['a', 'q/..q0']);
    fake.cancelWatchers();
    expect(answers.slice(2).map((r) => [r.watchId, r.canceled, r.compactRevision])).toEqual([[1, true, 2n], [2, true, 2n]]); // compacted at the current revision
    expect(fake.watched()).toEqual([]);
    fake.endStreams();
    expect(ended).toEqual(['UNAVAILABLE']);
    const { id } = await fake.leaseGrant(1, call);
    await fake.txn({ compare: [], success: [{ put: { key: b('k'), value: b('v'), lease: id } }] }, call);
    await delay(1300);
    expect((await fake.range({ key: b('k') }, call)).kvs).toEqual([]);
    expect((await fake.leaseTimeToLive(id, call)).ttl).toBe(-1);
    expect(fake.calls).toEqual(['range', 'range', 'range', 'range', 'txn', 'range', 'range', 'range', 'leaseGrant', 'txn', 'range', 'leaseTimeToLive']);
  } finally {
    fake.close();
  }
});
