// Two services campaign to be the scheduler; a third only watches. The leader proclaims its progress,
// fences a write with its term, and resigns: the waiting candidate leads one round trip later.
import { Etcd3 } from 'etcd3';
import { Election, NotLeaderError, Session } from 'leasehold';

const etcd = new Etcd3({ hosts: (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',') });
try {
  const name = `examples/scheduler-${process.pid}`;
  await using alice = await Session.create(etcd, { ttl: 10 });
  await using bob = await Session.create(etcd, { ttl: 10 });
  await using watcher = await Session.create(etcd, { ttl: 10 });

  // An observer: one watch on the election, the current leader first, then every change.
  const watching = new AbortController();
  const observed = (async () => {
    for await (const leader of new Election(watcher, name).observe({ signal: watching.signal })) {
      console.log(`observer: ${leader.value} (term ${leader.term})`);
    }
  })();

  const a = await new Election(alice, name).campaign('alice');
  console.log(`alice leads with term ${a.term}`);
  const bobWaits = new Election(bob, name).campaign('bob'); // queued behind alice

  await a.proclaim('alice: 50% done');
  // Applied only while alice still leads (compares the key's create revision with the term).
  await a.commit(etcd.put(`${name}-state`).value(`written in term ${a.term}`));
  await a.resign();

  const b = await bobWaits;
  console.log(`bob leads with term ${b.term} > ${a.term}`);
  try {
    await a.proclaim('alice is back?');
  } catch (error) {
    if (!(error instanceof NotLeaderError)) throw error;
    console.log(`alice can no longer proclaim: ${error.name}`);
  }
  await b.resign();
  watching.abort();
  await observed;
} finally {
  etcd.close();
}
