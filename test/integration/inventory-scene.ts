// A scene with every kind of primitive under one prefix — written by leasehold, in Go's layouts (by
// hand, as Go's `concurrency`/`recipe` packages write them) and by hostile programs — for the tests of
// `listPrimitives`, `leasehold ls` and the live page.
import type { Etcd3 } from 'etcd3';
import { eventually } from '../helpers.js';
import { Barrier, DoubleBarrier, Election, MultiLock, Mutex, ReadWriteLock, Semaphore, Session, type Held } from '../../src/index.js';

/** What a scene holds: its sessions and handles, and what the tests expect to see. */
export interface Scene {
  prefix: string;
  sessions: Session[];
  handles: Held[];
  /** Pending acquisitions (waiters): settled or aborted by {@link Scene.close}. */
  waiting: Promise<unknown>[];
  abort: AbortController;
  close(): Promise<void>;
}

/** Hostile keys another program wrote under the prefix (relative to it), with their values. */
export const hostile: [string | Buffer, string][] = [
  ['config/database_url', 'postgres://db:5432/app'],
  ['<script>alert(1)</script>/1', '<img src=x onerror=alert(2)>'],
  ['🔒 emoji/⛔', 'not a lock'],
  [Buffer.concat([Buffer.from('bytes/'), Buffer.from([0xff, 0xfe, 0x41])]), 'invalid UTF-8'],
  ['sem-foreign/holders/x', '{"permits":"many","weight":1}'],
  ['mutex/notes', 'a foreign key in the lock’s queue'],
];

/**
 * Builds the scene under `prefix` on `client`: a Mutex held with one waiter, a MultiLock over two
 * names (one waiting behind the Mutex), an Election led with a value, a ReadWriteLock with two readers
 * and a waiting writer, a Semaphore 3 of 4 permits used with a waiter of weight 2, a raised Barrier,
 * a DoubleBarrier round of 1 (open), Go's RWMutex reader and Barrier, and the {@link hostile} keys.
 */
export async function buildScene(client: () => Etcd3, admin: Etcd3, prefix: string): Promise<Scene> {
  const sessions = await Promise.all([1, 2, 3].map(async () => Session.create(client(), { ttl: 30 })));
  const [s1, s2, s3] = sessions as [Session, Session, Session];
  const abort = new AbortController();
  const signal = abort.signal;
  const handles: Held[] = [];
  const waiting: Promise<unknown>[] = [];
  const queue = (p: Promise<unknown>): void => {
    waiting.push(p.catch(() => undefined));
  };
  handles.push(await new Mutex(s1, `${prefix}mutex`).lock());
  queue(new Mutex(s2, `${prefix}mutex`).lock({ signal }));
  await eventually(async () => (await admin.getAll().prefix(`${prefix}mutex/`).keys()).length === 2, 10_000, 'the Mutex waiter queued');
  handles.push(await new MultiLock(s1, [`${prefix}multi/a`, `${prefix}multi/b`]).lock());
  queue(new MultiLock(s3, [`${prefix}multi/b`, `${prefix}mutex`]).lock({ signal }));
  handles.push(await new Election(s1, `${prefix}election`).campaign('leader-1'));
  queue(new Election(s3, `${prefix}election`).campaign('candidate-3', { signal }));
  const rw = (s: Session) => new ReadWriteLock(s, `${prefix}rw`);
  handles.push(await rw(s1).readLock(), await rw(s2).readLock());
  queue(rw(s3).writeLock({ signal }));
  const sem = (s: Session) => new Semaphore(s, `${prefix}sem`, { permits: 4 });
  handles.push(await sem(s1).acquire({ weight: 2 }), await sem(s2).acquire({ weight: 1 }));
  queue(sem(s3).acquire({ weight: 2, signal }));
  handles.push((await new Barrier(s1, `${prefix}barrier`).hold())!);
  await new DoubleBarrier(s3, `${prefix}phase`, { count: 1 }).enter();
  const goLease = await admin.lease(30, { autoKeepAlive: false }).grant();
  await admin.put(`${prefix}go-rw/read/1733480000000000000`).value('').lease(goLease).exec();
  await admin.put(`${prefix}go-barrier`).value('').exec();
  for (const [key, value] of hostile) {
    await admin.put(typeof key === 'string' ? `${prefix}${key}` : Buffer.concat([Buffer.from(prefix), key])).value(value).exec();
  }
  return {
    prefix,
    sessions,
    handles,
    waiting,
    abort,
    async close() {
      abort.abort();
      await Promise.all(waiting);
      await Promise.allSettled(sessions.map(async (s) => s.close()));
      await admin.leaseClient.leaseRevoke({ ID: goLease }).catch(() => undefined);
      await admin.delete().prefix(prefix).exec();
    },
  };
}
