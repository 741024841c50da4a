// A holder's lease outlives the etcd member its client talks to: when the member serving the
// session's keep-alive stream is killed, the stream moves to a live member and the lock stays held —
// on each transport. (Found by review: h2 reopened the keep-alive stream on the dead member again and
// again, and the lease expired while two members were healthy.)
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Mutex, Session } from '../../src/index.js';
import { startEtcd, type EtcdCluster, type EtcdMember } from '../../src/testing/index.js';
import { openStreams, uniqueName } from '../helpers.js';

let etcd: EtcdCluster;
beforeAll(async () => {
  etcd = await startEtcd({ members: 3 });
}, 60_000);
afterAll(async () => {
  await etcd?.stop();
});

/** The member with an open LeaseKeepAlive stream (etcd's own count: started minus handled). */
async function keepAliveMember(): Promise<EtcdMember | undefined> {
  for (const m of etcd.members) {
    if (m.running && (await openStreams(etcd, m, 'LeaseKeepAlive')) > 0) return m;
  }
  return undefined;
}

test.each(['h2', 'etcd3'] as const)('%s: the member serving the keep-alive stream is killed: the lease lives on, the lock stays held', async (transport) => {
  const ttl = 3;
  const client = etcd.client(); // every member's endpoint
  const session = await Session.create(client, { ttl, transport });
  const lock = await new Mutex(session, uniqueName('member-loss')).lock();
  const victim = await keepAliveMember();
  expect(victim, 'a member with the session keep-alive stream').toBeDefined();
  await victim!.kill();
  try {
    // Three TTLs: a lease whose keep-alives kept going to the dead member would have expired twice over.
    await delay(3 * ttl * 1000);
    expect(session.signal.aborted ? String(session.signal.reason) : 'alive').toBe('alive');
    expect(lock.signal.aborted).toBe(false);
    const moved = await keepAliveMember();
    expect(moved && moved !== victim).toBe(true);
    const admin = etcd.client();
    const { kvs } = await admin.get(lock.key).exec();
    expect(kvs.map((kv) => kv.lease)).toEqual([session.leaseId]);
    await lock.release();
  } finally {
    await session.close();
    await victim!.restart();
    await etcd.leader();
  }
});
