// A configuration written in several steps: readers share a read lock and always see a whole version;
// the writer takes the write lock and fences every step with it. Readers that arrive while the writer
// waits queue behind it, so a busy read path never starves an update.
// Run: ETCD_ENDPOINTS=127.0.0.1:2379 node --conditions=leasehold-source --import tsx examples/rw-lock.ts
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { ReadWriteLock, Session } from 'leasehold';

const hosts = (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',');
const torn: string[] = [];

/** Rewrites both halves of the config, one guarded write at a time, under the write lock. */
async function publish(etcd: Etcd3, rw: ReadWriteLock, version: string): Promise<void> {
  await using lock = await rw.writeLock({ signal: AbortSignal.timeout(30_000) });
  // Each write lands only while we still hold the lock (compare createRevision(lock key) == token).
  await lock.commit(etcd.put('examples/config/schema').value(version));
  await delay(20, undefined, { signal: lock.signal });
  await lock.commit(etcd.put('examples/config/data').value(version));
}

/** Reads both halves under a read lock: they always belong to the same version. */
async function read(etcd: Etcd3, rw: ReadWriteLock): Promise<string> {
  await using _lock = await rw.readLock();
  const [schema, data] = await Promise.all([
    etcd.get('examples/config/schema').string(),
    etcd.get('examples/config/data').string(),
  ]);
  if (schema !== data) torn.push(`${schema}/${data}`);
  return data ?? 'none';
}

/** One service (pod): its own client and Session, a ReadWriteLock on the shared name. */
async function service<T>(fn: (etcd: Etcd3, rw: ReadWriteLock) => Promise<T>): Promise<T> {
  const etcd = new Etcd3({ hosts });
  try {
    await using session = await Session.create(etcd, { ttl: 10 });
    return await fn(etcd, new ReadWriteLock(session, 'examples/config-lock'));
  } finally {
    etcd.close();
  }
}

let updating = true;
await service((etcd, rw) => publish(etcd, rw, 'v1'));
const readers = [1, 2, 3].map(() =>
  service(async (etcd, rw) => {
    while (updating) await read(etcd, rw);
  }),
);
await service(async (etcd, rw) => {
  for (const version of ['v2', 'v3']) {
    await delay(30);
    await publish(etcd, rw, version);
  }
});
updating = false;
await Promise.all(readers);
const final = await service(read);
console.log(`config is now ${final}; every read saw a whole version: ${torn.length === 0}`);
if (torn.length > 0) {
  console.error('torn reads:', torn);
  process.exitCode = 1;
}
