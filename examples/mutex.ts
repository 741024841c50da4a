// One pod at a time runs the nightly report; the write is fenced by the lock (README's example).
import { Etcd3 } from 'etcd3';
import { Mutex, Session } from 'leasehold';

const etcd = new Etcd3({ hosts: (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',') });
try {
  await using session = await Session.create(etcd, { ttl: 10 });
  const mutex = new Mutex(session, 'reports/nightly');

  await using lock = await mutex.lock({ signal: AbortSignal.timeout(30_000) });
  // Only one holder gets here at a time; lock.signal aborts if the lease is lost.
  await lock.commit(etcd.put('reports/last-run').value(new Date().toISOString()));
  console.log(`ran the nightly report with fencing token ${lock.token}`);
} finally {
  etcd.close();
}
