// The h2 transport on a real 3-member cluster: failover when a member is killed or paused (the silent
// member is remembered), HTTP/2 pings that end streams on a paused member, GOAWAY from a member that
// shuts down, and require-leader streams that end when their member loses the quorum.
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startEtcd, type EtcdCluster, type EtcdMember } from '../../src/testing/index.js';
import { H2Transport } from '../../src/transport/h2/transport.js';
import { TransportError, type CallOptions } from '../../src/transport/port.js';
import { eventually } from '../helpers.js';

let etcd: EtcdCluster;
const key = Buffer.from(`h2-cluster/${process.pid}`);
const endpointOf = (m: EtcdMember): string => m.clientUrl.replace('http://', '');

beforeAll(async () => {
  // Pings every second are allowed (etcd's default minimum is 5 s, and it answers more with GOAWAY).
  etcd = await startEtcd({ members: 3, extraArgs: ['--grpc-keepalive-min-time=500ms'] });
}, 60_000);
afterAll(async () => {
  await etcd?.stop();
});

/** `n` reads, each retried (as leasehold's policy would) while it fails transiently; the failures seen. */
async function readsThrough(t: H2Transport, n: number, options: CallOptions): Promise<TransportError[]> {
  const failures: TransportError[] = [];
  for (let i = 0; i < n; i++) {
    for (let attempt = 1; ; attempt++) {
      try {
        await t.range({ key }, options);
        break;
      } catch (error) {
        if (!(error instanceof TransportError) || error.kind !== 'transient' || attempt === 10) throw error;
        failures.push(error);
        await delay(25);
      }
    }
  }
  return failures;
}

async function restartAll(): Promise<void> {
  for (const m of etcd.members) {
    if (m.paused) await m.resume();
    if (!m.running) await m.restart();
  }
  await etcd.leader();
}

/**
 * A member that is not the raft leader: killing or pausing the leader would make the others answer
 * "no leader" during the election, failures that are not the ones these tests count.
 */
async function follower(): Promise<EtcdMember> {
  const leader = await etcd.leader();
  return etcd.members.find((m) => m !== leader)!;
}

const described = (failures: TransportError[]): string =>
  failures.map((f) => `${f.code} at ${f.endpoint}: ${f.message}`).join('; ');

describe('failover', () => {
  test('a killed member: calls go on through the others, and it is tried again only after its silence is forgotten', async () => {
    const t = new H2Transport({ hosts: [...etcd.endpoints], silenceMemoryMs: 60_000 });
    const victim = await follower();
    try {
      await readsThrough(t, 6, { timeoutMs: 2000 });
      await victim.kill();
      const failures = await readsThrough(t, 30, { timeoutMs: 2000 });
      // Each failure names the killed member; after one, it is avoided (random choice would hit it ~10 times).
      expect(failures.map((f) => f.endpoint), described(failures)).toEqual(failures.length === 0 ? [] : [endpointOf(victim)]);
    } finally {
      t.close();
      await restartAll();
    }
  });

  test('a paused member: a call to it times out at its deadline, the next ones avoid it; streams on it end by ping', async () => {
    const victim = await follower();
    const t = new H2Transport({ hosts: [...etcd.endpoints], silenceMemoryMs: 60_000 });
    const only = new H2Transport({ hosts: [victim.clientUrl], pingIntervalMs: 1000, pingTimeoutMs: 1000 });
    const ended: TransportError[] = [];
    try {
      const stream = await only.watch({ message: () => undefined, end: (e) => ended.push(e) });
      stream.send({ create: { key, watchId: 1 } });
      await readsThrough(t, 6, { timeoutMs: 2000 });
      await delay(300);
      await victim.pause();
      const failures = await readsThrough(t, 20, { timeoutMs: 500 });
      expect(failures.map((f) => [f.code, f.endpoint]), described(failures)).toEqual(failures.length === 0 ? [] : [['DEADLINE_EXCEEDED', endpointOf(victim)]]);
      // Without the ping the watch would wait on the frozen member for ever.
      await eventually(() => ended.length === 1, 6000, 'the stream on the paused member ended');
      expect([ended[0]!.kind, ended[0]!.endpoint]).toEqual(['transient', endpointOf(victim)]);
      expect(ended[0]!.message).toMatch(/ping/);
    } finally {
      t.close();
      only.close();
      await restartAll();
    }
  });
});

test('a member shutting down ends the streams on it (transient); after its restart, new calls reach it on a new connection', async () => {
  const victim = etcd.members[0]!;
  const only = new H2Transport({ hosts: [victim.clientUrl] });
  const ended: TransportError[] = [];
  try {
    const stream = await only.watch({ message: () => undefined, end: (e) => ended.push(e) });
    stream.send({ create: { key, watchId: 1 } });
    await only.range({ key }, { timeoutMs: 2000 });
    const channel = only.members[0]!.channel;
    expect(channel.connections).toBe(1);
    await victim.stop(); // SIGTERM (etcd 3.4 resets its streams rather than sending a GOAWAY)
    await eventually(() => ended.length === 1, 5000, 'the stream ended');
    expect([ended[0]!.kind, ended[0]!.endpoint]).toEqual(['transient', endpointOf(victim)]);
    await victim.restart();
    await only.range({ key }, { timeoutMs: 5000 });
    expect(channel.connections).toBe(2);
  } finally {
    only.close();
    await restartAll();
  }
});

test('GOAWAY: etcd drops a connection that pings too often; its stream ends, and calls go on over a new connection', async () => {
  // A member of its own with etcd's default ping policy (at most one every 5 s), and a client pinging every second.
  await using strict = await startEtcd();
  const t = new H2Transport({ hosts: [...strict.endpoints], pingIntervalMs: 1000 });
  const ended: TransportError[] = [];
  try {
    const stream = await t.watch({ message: () => undefined, end: (e) => ended.push(e) });
    stream.send({ create: { key, watchId: 1 } });
    await t.range({ key }, { timeoutMs: 2000 });
    const channel = t.members[0]!.channel;
    await eventually(() => channel.goaways === 1 && ended.length === 1, 15_000, 'a GOAWAY, and the stream ended');
    expect(ended[0]!.kind).toBe('transient');
    await t.range({ key }, { timeoutMs: 2000 });
    expect(channel.connections).toBe(2);
  } finally {
    t.close();
  }
});

test('require-leader: a stream on a member that lost its quorum ends; one without the metadata stays open', async () => {
  const [kept, ...others] = etcd.members;
  const only = new H2Transport({ hosts: [kept!.clientUrl] });
  const ended: Record<string, TransportError[]> = { required: [], plain: [] };
  try {
    for (const kind of ['required', 'plain'] as const) {
      const stream = await only.watch({ message: () => undefined, end: (e) => ended[kind]!.push(e) }, { requireLeader: kind === 'required' });
      stream.send({ create: { key, watchId: 1 } });
    }
    await only.range({ key }, { timeoutMs: 2000 });
    for (const m of others) await m.kill();
    await eventually(() => ended['required']!.length === 1, 8000, 'the require-leader stream ended');
    expect([ended['required']![0]!.kind, ended['required']![0]!.message]).toEqual(['transient', expect.stringMatching(/no leader/)]);
    await delay(1500);
    expect(ended['plain']).toEqual([]);
  } finally {
    only.close();
    await restartAll();
  }
});
