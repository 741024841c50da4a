// Start a phase together and finish it together: three workers (each its own client and Session, as
// three pods would be) reindex their shards; none starts before all are ready, and none reports done
// before all are done. Then the first worker freezes deploys with a Barrier until the check passes.
// Run: ETCD_ENDPOINTS=127.0.0.1:2379 node --conditions=leasehold-source --import tsx examples/double-barrier.ts
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { Barrier, DoubleBarrier, Session } from 'leasehold';

const endpoints = (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',');
const workers = 3;
const name = `examples/reindex-${process.pid}`;
const log: string[] = [];

async function worker(id: number): Promise<void> {
  const etcd = new Etcd3({ hosts: endpoints });
  try {
    await using session = await Session.create(etcd, { ttl: 10 });
    const phase = new DoubleBarrier(session, name, { count: workers });
    await delay(id * 100); // they arrive at different times
    log.push(`worker ${id} waiting to start`);
    await phase.enter({ signal: AbortSignal.timeout(30_000) });
    log.push(`worker ${id} reindexing`);
    await delay(50 + id * 100); // and finish at different times
    log.push(`worker ${id} done, waiting for the others`);
    await phase.leave({ signal: AbortSignal.timeout(30_000) });
    log.push(`worker ${id} left`);
  } finally {
    etcd.close();
  }
}

await Promise.all(Array.from({ length: workers }, async (_, id) => worker(id)));
console.log(log.join('\n'));
// Nobody started before everybody was waiting, and nobody left before everybody was done.
const lastWaiting = Math.max(...log.map((l, i) => (l.includes('waiting to start') ? i : -1)));
const firstReindex = log.findIndex((l) => l.includes('reindexing'));
const lastDone = Math.max(...log.map((l, i) => (l.includes('done') ? i : -1)));
const firstLeft = log.findIndex((l) => l.includes(' left'));
if (!(lastWaiting < firstReindex && lastDone < firstLeft)) throw new Error('the double barrier did not hold');

// A Barrier: deploys wait while the check runs.
const etcd = new Etcd3({ hosts: endpoints });
try {
  await using session = await Session.create(etcd, { ttl: 10 });
  const frozen = new Barrier(session, `examples/deploys-frozen-${process.pid}`);
  const freeze = await frozen.hold();
  const deploy = frozen.wait({ signal: AbortSignal.timeout(10_000) }).then(() => console.log('deploy: barrier down, deploying'));
  console.log('check: running with deploys frozen');
  await delay(100);
  await freeze?.release();
  await deploy;
} finally {
  etcd.close();
}
