// SessionSource against a real etcd: options, what current() hands out (never a lost session), its
// events and state, close(), and its health — not live only while etcd answers and refuses, never for
// an etcd that cannot be reached.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConstantBackoff, noop } from 'cockatiel';
import type { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, test } from 'vitest';
import {
  AuthenticationError,
  LeaderElector,
  LeaseLostError,
  Mutex,
  Session,
  SessionClosedError,
  SessionSource,
  channels,
  isLeaseLostError,
  liveState,
  sessionSourceDefaults,
  type SessionRegrantedMessage,
} from '../../src/index.js';
import { registerLeaseholdMetrics } from '../../src/prometheus.js';
import { startEtcd } from '../../src/testing/index.js';
import { etcdForFile } from '../fixture.js';
import { eventually, uniqueName } from '../helpers.js';

const fx = etcdForFile();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function source(client: Etcd3, options: ConstructorParameters<typeof SessionSource>[1] = {}): SessionSource {
  const sessions = new SessionSource(client, { ttl: 2, ...options });
  cleanups.push(async () => sessions.close());
  return sessions;
}

/** GETs `handler` once through a real HTTP server: status and JSON body. */
async function probe(handler: Parameters<typeof createServer>[1]): Promise<{ status: number; body: Record<string, unknown> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('SessionSource', () => {
  test('bad options are rejected with errors that name the value', () => {
    const c = fx.etcd.client();
    expect(() => new SessionSource({} as Etcd3)).toThrow('Expected `client` of SessionSource to be an etcd3 Etcd3 or Namespace, got an object');
    expect(() => new SessionSource(c, { ttl: 0 })).toThrow('Expected `ttl` to be an integer from 1 to 9000000000, got `0`');
    expect(() => new SessionSource(c, { ttl: 2, safetyMargin: 2000 })).toThrow(RangeError);
    expect(() => new SessionSource(c, { leaseId: '1' } as never)).toThrow(/Unknown option `leaseId` of SessionSource/);
    expect(() => new SessionSource(c, { backoff: 5 as never })).toThrow('Expected `backoff` to be a cockatiel IBackoffFactory, got `5`');
    expect(() => new SessionSource(c, { livenessGrace: -1 })).toThrow('Expected `livenessGrace` to be a finite number of milliseconds > 0, got `-1`');
    expect(() => new Mutex(c as never, 'x')).toThrow('Expected `session` of Mutex to be a leasehold Session or SessionSource, got an instance of Etcd3');
  });

  test('hands out one live session to every acquisition, and a new one — never the lost one — after a loss', async () => {
    const registry = new Registry();
    const metrics = registerLeaseholdMetrics(registry);
    cleanups.push(async () => metrics.unregister());
    const regrants: SessionRegrantedMessage[] = [];
    const onRegrant = (m: unknown): void => void regrants.push(m as SessionRegrantedMessage);
    subscribe(channels.sessionRegranted, onRegrant);
    cleanups.push(async () => unsubscribe(channels.sessionRegranted, onRegrant));
    const sessions = source(fx.etcd.client(), { ttl: 5 });
    expect(sessions.state).toBe('granting');
    const granted: { session: Session; previous: Session | undefined }[] = [];
    const lost: unknown[] = [];
    sessions.on('session', (session, { previous }) => granted.push({ session, previous }));
    sessions.on('lost', (_session, reason) => lost.push(reason));
    const first = await sessions.current();
    expect(await sessions.current()).toBe(first);
    expect(sessions.session).toBe(first);
    expect(sessions.state).toBe('live');
    const lock = await new Mutex(sessions, uniqueName('shared')).lock();
    expect(lock.session).toBe(first);

    await fx.admin.leaseClient.leaseRevoke({ ID: first.leaseId }); // as if it had expired
    await eventually(() => first.signal.aborted, 5000, 'the loss noticed');
    const second = await sessions.current();
    expect(second).not.toBe(first);
    expect(second.alive).toBe(true);
    expect(second.leaseId).not.toBe(first.leaseId);
    expect(lock.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(lost.map(isLeaseLostError)).toEqual([true]);
    expect(granted.map((g) => [g.session, g.previous])).toEqual([[first, undefined], [second, first]]);
    // Told on leasehold:session:regranted (the first grant is no re-grant), counted by the metrics.
    expect(regrants).toEqual([{ lease: second.leaseHex, previous: first.leaseHex, withoutSessionMs: expect.any(Number) }]);
    expect(regrants[0]!.withoutSessionMs).toBeGreaterThanOrEqual(0);
    const metric = async (name: string): Promise<number | undefined> => {
      const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(await registry.metrics());
      return line ? Number(line[1]) : undefined;
    };
    expect(await metric('leasehold_session_regrant_gap_seconds_count')).toBe(1);
    expect(await metric('leasehold_session_without_seconds')).toBe(0);
  });

  test('close() closes the current session (revoking its lease), ends waits and refuses later calls', async () => {
    await using own = await startEtcd();
    const sessions = source(own.client({ faultHandling: { host: () => noop, global: noop } }), { requestTimeout: 300 });
    const session = await sessions.current();
    const held = await new Mutex(sessions, 'm').lock();
    await own.members[0]!.pause(); // etcd frozen: the session is lost, the next grant waits
    await eventually(() => !session.alive, 5000, 'the loss');
    const waiting = sessions.current().catch((e: unknown) => e);
    const closing = sessions.close();
    expect(sessions.state).toBe('closed');
    expect(await waiting).toBeInstanceOf(SessionClosedError);
    await expect(sessions.current()).rejects.toThrow(`SessionSource is closed (its last lease was ${session.leaseHex})`);
    expect(held.signal.reason).toBeInstanceOf(LeaseLostError);
    await own.members[0]!.resume();
    await closing;
    expect(Number((await own.client().leaseClient.leaseTimeToLive({ ID: session.leaseId })).TTL)).toBe(-1);
    expect(sessions.state).toBe('closed');
  });

  test('health: ready with a live session; an unreachable etcd keeps it live however long; the probes answer JSON', async () => {
    await using own = await startEtcd();
    const sessions = source(own.client({ faultHandling: { host: () => noop, global: noop } }), { requestTimeout: 300, livenessGrace: 500 });
    await sessions.current();
    expect(await probe(sessions.readinessHandler())).toMatchObject({ status: 200, body: { ready: true, live: true, state: 'live' } });
    await own.members[0]!.kill();
    await eventually(() => sessions.state === 'granting', 5000, 'the loss');
    await eventually(() => sessions.health().withoutSessionMs > 3000, 10_000, 'three seconds without a session');
    const h = sessions.health();
    expect(h).toMatchObject({ live: true, ready: false, state: 'granting' });
    const { sources } = liveState();
    expect(sources).toEqual([{ state: 'granting', withoutSessionMs: expect.any(Number) }]);
    expect(sources[0]!.withoutSessionMs).toBeGreaterThan(3000);
    const registry = new Registry();
    const metrics = registerLeaseholdMetrics(registry);
    const without = (await registry.getSingleMetric('leasehold_session_without_seconds')!.get()).values[0]!.value;
    metrics.unregister();
    expect(without).toBeGreaterThan(3);
    expect((await probe(sessions.readinessHandler())).status).toBe(503);
    expect(await probe(sessions.livenessHandler())).toMatchObject({ status: 200, body: { live: true } });
    await own.members[0]!.restart();
    await eventually(() => sessions.state === 'live', 10_000, 'a session after the restart');
    expect(sessions.health()).toMatchObject({ live: true, ready: true, withoutSessionMs: 0 });
  });

  test('health: not live after livenessGrace without a session while etcd answers and refuses; acquisitions reject with the refusal', async () => {
    await using own = await startEtcd({ auth: true });
    const refused = own.client({ auth: { username: 'root', password: 'not-the-password' } });
    // TTL 1: the default livenessGrace is then 3 s (no lease is ever granted here).
    const sessions = source(refused, { ttl: 1, backoff: new ConstantBackoff(100) });
    await expect(new Mutex(sessions, 'm').lock()).rejects.toBeInstanceOf(AuthenticationError);
    expect(sessions.health()).toMatchObject({ live: true, ready: false });
    let flipped = 0;
    await eventually(() => !sessions.health().live || ((flipped = sessions.health().withoutSessionMs), false), 10_000, 'not live');
    expect(flipped).toBeLessThanOrEqual(sessionSourceDefaults.livenessGraceTtls * 1000 + 50);
    expect(sessions.health().withoutSessionMs).toBeGreaterThan(sessionSourceDefaults.livenessGraceTtls * 1000);
    const { status, body } = await probe(sessions.livenessHandler());
    expect(status).toBe(503);
    expect(body['reason']).toMatch(/although etcd answers: it refused the grant \(AuthenticationError/);
    expect(JSON.stringify(body)).not.toContain('not-the-password');
  });


  test('LeaderElector on a shared source: one lease for the elector and the locks; stop() leaves the source open', async () => {
    const client = fx.etcd.client();
    const sessions = source(client, { ttl: 5 });
    expect(() => new LeaderElector(client, 'x', { source: sessions, ttl: 5 })).toThrow('Options `ttl` and `session` of LeaderElector exclude `source`');
    expect(() => new LeaderElector(fx.etcd.client(), 'x', { source: sessions })).toThrow(/Expected `source` of LeaderElector to be on the elector's own `client`/);
    const elector = new LeaderElector(client, uniqueName('shared'), { source: sessions });
    expect(elector.ttl).toBe(5);
    const lock = await new Mutex(sessions, uniqueName('lock')).lock();
    let leaseOfTerm: string | undefined;
    const running = elector.run(async ({ session, signal }) => {
      leaseOfTerm = session.leaseId;
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    });
    await eventually(() => leaseOfTerm !== undefined, 5000, 'elected');
    expect(leaseOfTerm).toBe(lock.leaseId);
    expect(elector.health()).toMatchObject({ ready: true, healthy: true, leading: true });
    await elector.stop();
    await running;
    expect(sessions.state).toBe('live');
    expect(lock.held).toBe(true);
    await lock.release();
  });
});
