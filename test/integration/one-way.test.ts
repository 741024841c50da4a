// A one-way loss: the network loses a client's requests to the member that serves its watch stream,
// but not that member's answers — the events of watches created before keep arriving. On each
// transport the client must stop trusting that member: a new wait's watch, never created there, is
// moved to another member and wakes at the release, not at the wait's periodic re-read (every 10 s
// with a 30 s TTL). (Found by the network fault test N5: events that kept arriving on the stream
// answered its progress request and marked the member "answered", so the stream stayed where no
// creation arrived and calls kept going there.)
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Election, Mutex, Session } from '../../src/index.js';
import { startEtcd, startProxy, type EtcdCluster, type TcpProxy } from '../../src/testing/index.js';
import { eventually, openStreams, uniqueName } from '../helpers.js';

let etcd: EtcdCluster;
let proxies: TcpProxy[];
beforeAll(async () => {
  etcd = await startEtcd({ members: 3 });
  proxies = await Promise.all(etcd.members.map(async (m) => startProxy(m.clientUrl)));
}, 60_000);
afterAll(async () => {
  await Promise.all((proxies ?? []).map(async (p) => p.close()));
  await etcd?.stop();
});

/** Open Watch streams per member (etcd's own count: started minus handled). */
async function watchStreams(): Promise<number[]> {
  return Promise.all(etcd.members.map(async (m) => openStreams(etcd, m, 'Watch')));
}

test.each(['h2', 'etcd3'] as const)('%s: requests to the member serving the watch stream are lost while its events still arrive: a new wait wakes at the release, on another member', async (transport) => {
  const client = etcd.client({ hosts: proxies.map((p) => p.url) });
  const direct = etcd.client();
  const session = await Session.create(client, { ttl: 30, transport, requestTimeout: 1000 });
  const other = await Session.create(direct, { ttl: 30, transport });
  const stop = new AbortController();
  try {
    // A flow of events on the client's one watch stream: it observes an election whose leader proclaims every 50 ms.
    const name = uniqueName('one-way');
    const leader = await new Election(other, `${name}/election`).campaign('v0');
    const before = await watchStreams();
    let seen = 0;
    const observing = (async () => {
      for await (const state of new Election(session, `${name}/election`).observe({ signal: stop.signal })) if (state) seen++;
    })().catch(() => undefined);
    await eventually(() => seen > 0, 10_000, 'the observer saw the leader');
    let n = 0;
    const proclaiming = setInterval(() => void leader.proclaim(`v${++n}`).catch(() => undefined), 50);
    try {
      const after = await watchStreams();
      // The client's stream is on one of the members that gained a stream (the leader's client, not
      // behind a proxy, may have opened one too): the client's requests to each of them are lost.
      const serving = after.flatMap((count, i) => (count > before[i]! ? [i] : []));
      expect(serving.length, 'members with a new watch stream').toBeGreaterThanOrEqual(1);
      expect(serving.length, 'a member left healthy').toBeLessThan(3);
      for (const i of serving) proxies[i]!.blackhole('toTarget');
      const seenAtCut = seen;

      const held = await new Mutex(other, `${name}/lock`).lock();
      const waiting = new Mutex(session, `${name}/lock`).lock();
      await delay(2000);
      const releasedAt = performance.now();
      await held.release();
      const lock = await waiting;
      const woke = performance.now() - releasedAt;
      console.log(`[one-way ${transport}] members ${serving.join(', ')} lost requests; the wait woke ${woke.toFixed(0)} ms after the release; ${seen - seenAtCut} leaders seen meanwhile`);
      expect(seen, 'events kept arriving').toBeGreaterThan(seenAtCut);
      // Its periodic re-read would have come 10 s after the wait began, 8 s after the release.
      expect(woke, 'ms from the release to the wake').toBeLessThan(5000);
      await lock.release();
    } finally {
      clearInterval(proclaiming);
      for (const p of proxies) p.heal();
    }
    stop.abort();
    await observing;
    await leader.resign();
  } finally {
    stop.abort();
    await session.close();
    await other.close();
    client.close();
    direct.close();
  }
});
