// What an operator on call sees: every lock, semaphore and election under a prefix, with who holds
// and who waits (as `leasehold ls --prefix shop/` prints it).
import { Etcd3 } from 'etcd3';
import { Election, Mutex, Semaphore, Session, listPrimitives } from 'leasehold';

const etcd = new Etcd3({ hosts: (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',') });
const prefix = `shop-${process.pid}/`;
try {
  await using a = await Session.create(etcd, { ttl: 10 });
  await using b = await Session.create(etcd, { ttl: 10 });
  await using _invoice = await new Mutex(a, `${prefix}invoices`).lock();
  const queued = new Mutex(b, `${prefix}invoices`).lock(); // waits behind a
  await using _leader = await new Election(a, `${prefix}scheduler`).campaign('pod-a');
  await using _permit = await new Semaphore(b, `${prefix}transcoders`, { permits: 4 }).acquire({ weight: 3 });

  // Let b's waiter join the queue, then list.
  let listing = await listPrimitives(etcd, { prefix });
  while (listing.primitives.find((p) => p.name === `${prefix}invoices`)?.waiters.length !== 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    listing = await listPrimitives(etcd, { prefix });
  }
  for (const p of listing.primitives) {
    const holder = p.holders[0];
    const extra = p.kind === 'semaphore' ? `, ${p.permits?.used} of ${p.permits?.total} permits` : p.kind === 'election' ? `, leader ${holder?.value} (term ${holder?.token})` : '';
    console.log(`${p.kind} ${p.name}: ${p.holders.length} holding, ${p.waiters.length} waiting${extra}`);
  }
  if (listing.foreign.length > 0) console.log(`${listing.foreign.length} keys of no primitive`);
  await _invoice.release();
  await (await queued).release();
} finally {
  etcd.close();
}
