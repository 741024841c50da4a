// SessionSource at its edges, against a real etcd: the liveness rule follows etcd's latest answer (a
// refusal followed by an outage is an outage), a custom `backoff` that throws or gives no delay fails
// the waiters instead of killing the grant loop, and a session that ends in the very tick it is
// announced is replaced at once, and close() while a grant is answered announces nothing after it.
import { ConstantBackoff, DelegateBackoff, IterableBackoff, noop } from 'cockatiel';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { AuthenticationError, Session, SessionSource } from '../../src/index.js';
import { startEtcd } from '../../src/testing/index.js';
import { etcdForFile } from '../fixture.js';
import { eventually } from '../helpers.js';

const fx = etcdForFile();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function track(sessions: SessionSource): SessionSource {
  cleanups.push(async () => sessions.close());
  return sessions;
}

describe('SessionSource edges', () => {
  test('liveness follows the latest answer: refused credentials make it not live; an outage after that makes it live again', async () => {
    await using own = await startEtcd({ auth: true });
    const refused = own.client({ auth: { username: 'root', password: 'not-the-password' }, faultHandling: { host: () => noop, global: noop } });
    const sessions = track(new SessionSource(refused, { ttl: 1, requestTimeout: 300, livenessGrace: 300, backoff: new ConstantBackoff(100) }));
    await expect(sessions.current()).rejects.toBeInstanceOf(AuthenticationError);
    await eventually(() => !sessions.health().live, 10_000, 'not live after the grace while etcd refuses');
    // Now etcd cannot be reached at all: a restart cannot help, so the replica must not be restarted.
    await own.members[0]!.kill();
    await eventually(() => sessions.health().live, 10_000, 'live again once the latest grant failed for an outage');
    expect(sessions.health()).toMatchObject({ live: true, ready: false, state: 'granting' });
    expect(sessions.health().withoutSessionMs).toBeGreaterThan(300);
  });

  test.each([
    ['throws', () => new DelegateBackoff((context: { attempt: number }) => context.attempt * 100), /TypeError/],
    ['gives no delay', () => new IterableBackoff([]), /the backoff option gave a delay of undefined/],
  ] as const)('a custom backoff that %s: the waiters reject with a TypeError, no unhandled rejection, and the next call tries again', async (_, backoff, message) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    cleanups.push(async () => process.off('unhandledRejection', onUnhandled));
    // Nothing listens on port 1: every grant fails at once, so the loop reaches its backoff.
    const client = fx.etcd.client({ hosts: '127.0.0.1:1', faultHandling: { host: () => noop, global: noop } });
    const sessions = track(new SessionSource(client, { ttl: 5, retryPolicy: noop, requestTimeout: 200, backoff: backoff() }));
    let retries = 0;
    sessions.on('retry', () => retries++);
    const first = await sessions.current({ signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(TypeError);
    expect(String(first)).toMatch(message);
    expect(retries).toBe(0); // no busy loop of 1 ms timers
    const again = await sessions.current({ signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(TypeError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  });

  test('a session that ends in the tick it is announced is replaced at once (the grant loop is over before the announcement)', async () => {
    const sessions = track(new SessionSource(fx.etcd.client(), { ttl: 5 }));
    let grants = 0;
    sessions.on('session', (s) => {
      grants++;
      if (grants === 1) void s.close();
    });
    // Without a call to current(): an idle source must replace its session by itself.
    await eventually(() => grants === 2 && sessions.state === 'live', 4000, 'the second grant, unasked');
    expect(sessions.health()).toMatchObject({ live: true, ready: true });
  });

  test('close() while a grant is answered: no session event after close(), the granted lease is revoked, current() rejects', async () => {
    const client = fx.etcd.client();
    const create = Session.create.bind(Session);
    let sessions: SessionSource | undefined;
    let closing: Promise<void> | undefined;
    // close() lands after etcd granted the lease and before the source saw the answer.
    const spy = vi.spyOn(Session, 'create').mockImplementation(async (...args) => {
      const session = await create(...args);
      closing = sessions!.close();
      return session;
    });
    try {
      const events: string[] = [];
      sessions = track(new SessionSource(client, { ttl: 5 }));
      sessions.on('session', (s) => events.push(`session ${s.leaseHex}`));
      await eventually(() => closing !== undefined, 5000, 'the grant answered');
      await closing;
      expect(events).toEqual([]);
      expect(sessions.state).toBe('closed');
      await expect(sessions.current()).rejects.toThrow(/SessionSource is closed/);
      const granted = (await spy.mock.results[0]!.value) as Session;
      expect(granted.alive).toBe(false);
      const left = await fx.admin.leaseClient.leaseTimeToLive({ ID: granted.leaseId, keys: false });
      expect(left.TTL).toBe('-1'); // revoked, not left to expire
    } finally {
      spy.mockRestore();
    }
  });
});
