// The diagnostics channels against a real etcd: what a subscriber sees for a wait, a hold, a loss, a
// keep-alive and a leader change — and that nothing is built while nobody subscribes.
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { afterEach, describe, expect, test, vi } from 'vitest';
import {
  channels,
  Election,
  LeaseLostError,
  liveState,
  Mutex,
  ReadWriteLock,
  Semaphore,
  type Session,
  type AcquireContext,
  type KeepAliveMessage,
  type LeaderMessage,
  type ReleaseMessage,
  type SessionClosedMessage,
  type SessionLostMessage,
} from '../../src/index.js';
import { acquireChannel } from '../../src/diagnostics.js';
import { etcdForFile } from '../fixture.js';
import { uniqueName } from '../helpers.js';

const fx = etcdForFile(5);

/** Subscribes to every event of a tracing channel; returns the recorded [event, context] pairs. */
function recordTracing(name: string): { events: [string, AcquireContext][]; stop: () => void } {
  const events: [string, AcquireContext][] = [];
  const handlers = {
    start: (c: unknown) => events.push(['start', { ...(c as AcquireContext) }]),
    end: (c: unknown) => events.push(['end', { ...(c as AcquireContext) }]),
    asyncStart: (c: unknown) => events.push(['asyncStart', { ...(c as AcquireContext) }]),
    asyncEnd: (c: unknown) => events.push(['asyncEnd', { ...(c as AcquireContext) }]),
    error: (c: unknown) => events.push(['error', { ...(c as AcquireContext) }]),
  };
  const tc = tracingChannel(name);
  tc.subscribe(handlers);
  return { events, stop: () => tc.unsubscribe(handlers) };
}

function record<T>(name: string): { messages: T[]; stop: () => void } {
  const messages: T[] = [];
  const onMessage = (m: unknown): void => void messages.push(m as T);
  channel(name).subscribe(onMessage);
  return { messages, stop: () => channel(name).unsubscribe(onMessage) };
}

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

describe('diagnostics channels', () => {
  test('leasehold:acquire traces a wait: start/end, then asyncStart/asyncEnd with the token, the wait and the outcome', async () => {
    const rec = recordTracing(channels.acquire);
    stops.push(rec.stop);
    const name = uniqueName('diag-mutex');
    const holder = await new Mutex(await fx.session(), name).lock();
    const waiterSession = await fx.session();
    const waiting = new Mutex(waiterSession, name).lock();
    await new Promise((r) => setTimeout(r, 100));
    await holder.release();
    const second = await waiting;
    const ends = rec.events.filter(([e]) => e === 'asyncEnd').map(([, c]) => c);
    expect(ends).toHaveLength(2);
    expect(ends[1]).toMatchObject({ primitive: 'mutex', name, lease: waiterSession.leaseHex, blocking: true, outcome: 'granted', token: second.token });
    expect(ends[1]!.waitedMs).toBeGreaterThanOrEqual(90);
    expect(rec.events.map(([e]) => e).slice(0, 2)).toEqual(['start', 'end']);
    await second.release();
  });

  test('every kind of outcome: busy, aborted, lost, error; mode, permits and weight', async () => {
    const rec = recordTracing(channels.acquire);
    stops.push(rec.stop);
    const name = uniqueName('diag-outcomes');
    const s = await fx.session();
    const held = await new ReadWriteLock(s, name).writeLock();
    expect(await new ReadWriteLock(await fx.session(), name).tryReadLock()).toBeNull();
    const reason = new Error('enough');
    await expect(new ReadWriteLock(await fx.session(), name).readLock({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const doomed = await fx.session(2);
    const lostWait = new ReadWriteLock(doomed, name).readLock();
    await fx.admin.leaseClient.leaseRevoke({ ID: doomed.leaseId });
    await expect(lostWait).rejects.toBeInstanceOf(LeaseLostError);
    await held.release();
    const sem = new Semaphore(s, uniqueName('diag-sem'), { permits: 3 });
    (await sem.acquire({ weight: 2 })).release().catch(() => undefined);
    const ends = rec.events.filter(([e]) => e === 'asyncEnd').map(([, c]) => c);
    expect(ends.map((c) => [c.mode, c.blocking, c.outcome])).toEqual([
      ['write', true, 'granted'],
      ['read', false, 'busy'],
      ['read', true, 'aborted'],
      ['read', true, 'lost'],
      [undefined, true, 'granted'],
    ]);
    expect(ends[4]).toMatchObject({ primitive: 'semaphore', permits: 3, weight: 2 });
    expect(rec.events.filter(([e]) => e === 'error').map(([, c]) => c.error)).toEqual([reason, expect.any(LeaseLostError)]);
  });

  test('leasehold:release says how each holding ended and how long it lasted; leasehold:session:lost the loss, leasehold:session:closed a close', async () => {
    const releases = record<ReleaseMessage>(channels.release);
    const losses = record<SessionLostMessage>(channels.sessionLost);
    const closes = record<SessionClosedMessage>(channels.sessionClosed);
    stops.push(releases.stop, losses.stop, closes.stop);
    const name = uniqueName('diag-release');
    const s = await fx.session(2);
    const lock = await new Mutex(s, name).lock();
    await new Promise((r) => setTimeout(r, 50));
    await lock.release();
    const lost = await new Mutex(s, `${name}-2`).lock();
    await fx.admin.leaseClient.leaseRevoke({ ID: s.leaseId });
    await expect.poll(() => lost.signal.aborted, { timeout: 5000 }).toBe(true);
    expect(releases.messages.map((m) => [m.name, m.outcome])).toEqual([
      [name, 'released'],
      [`${name}-2`, 'lost'],
    ]);
    expect(releases.messages[0]).toMatchObject({ primitive: 'mutex', key: lock.key, token: lock.token, lease: s.leaseHex });
    expect(releases.messages[0]!.heldMs).toBeGreaterThanOrEqual(45);
    expect(losses.messages).toHaveLength(1);
    expect(losses.messages[0]!.lease).toBe(s.leaseHex);
    expect(losses.messages[0]!.reason).toBe(s.signal.reason);
    // Closing a lost session tells nothing more; a live one is told once, however often it is closed.
    await s.close();
    const t = await fx.session(2);
    await t.close();
    await t.close();
    expect(closes.messages).toEqual([{ lease: t.leaseHex }]);
  });

  test('leasehold:session:keepalive reports the round trip and the validity left', async () => {
    const rec = record<KeepAliveMessage>(channels.keepAlive);
    stops.push(rec.stop);
    const s = await fx.session(2); // a keep-alive every ~667 ms
    await expect.poll(() => rec.messages.filter((m) => m.lease === s.leaseHex).length, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    for (const m of rec.messages.filter((x) => x.lease === s.leaseHex)) {
      expect(m.roundTripMs).toBeGreaterThanOrEqual(0);
      expect(m.roundTripMs).toBeLessThan(1800);
      expect(m.validityMs).toBeGreaterThan(0);
      // The validity left is TTL 2 s − 200 ms margin − the round trip, whatever the machine's load.
      expect(m.validityMs + m.roundTripMs).toBeCloseTo(1800, 6);
    }
  });

  test('leasehold:campaign traces campaigns; leasehold:leader the changes observe() sees, with self', async () => {
    const campaigns = recordTracing(channels.campaign);
    const leaders = record<LeaderMessage>(channels.leader);
    stops.push(campaigns.stop, leaders.stop);
    const name = uniqueName('diag-election');
    const s = await fx.session();
    const election = new Election(s, name);
    const controller = new AbortController();
    const following = (async () => {
      for await (const state of election.observe({ signal: controller.signal })) void state;
    })();
    const leadership = await election.campaign('me');
    await expect.poll(() => leaders.messages.filter((m) => m.name === name && m.leader !== null).length, { timeout: 5000 }).toBe(1);
    await leadership.resign();
    await expect.poll(() => leaders.messages.filter((m) => m.name === name).at(-1)?.leader, { timeout: 5000 }).toBeNull();
    controller.abort();
    await following;
    const seen = leaders.messages.filter((m) => m.name === name);
    expect(seen.find((m) => m.leader !== null)).toMatchObject({ self: true, source: 'observe', leader: { value: 'me', term: leadership.term } });
    const ends = campaigns.events.filter(([e]) => e === 'asyncEnd').map(([, c]) => c);
    expect(ends).toEqual([expect.objectContaining({ primitive: 'election', name, outcome: 'granted', token: leadership.term })]);
  });

  test('liveState() has each holding, wait and session while it lasts, and none after: released, aborted, lost, closed', async () => {
    const of = (session: Session) => {
      const state = liveState();
      const mine = <T extends { lease: string }>(list: T[]) => list.filter((x) => x.lease === session.leaseHex);
      return { holdings: mine(state.holdings), waits: mine(state.waits), sessions: mine(state.sessions) };
    };
    const name = uniqueName('live');
    const [a, b, c] = [await fx.session(2), await fx.session(2), await fx.session(2)];
    const lock = await new Mutex(a, name).lock();
    const permit = await new Semaphore(b, `${name}-sem`, { permits: 1 }).acquire();
    expect(of(a).holdings).toEqual([{ primitive: 'mutex', name, key: lock.key, token: lock.token, lease: a.leaseHex, heldMs: expect.any(Number) }]);
    expect(of(a).sessions).toEqual([{ lease: a.leaseHex, validityMs: expect.any(Number) }]);
    expect(of(a).sessions[0]!.validityMs).toBeGreaterThan(0);
    // A wait is there from the call until it settles: aborted…
    const controller = new AbortController();
    const aborted = new Mutex(b, name).lock({ signal: controller.signal });
    expect(of(b).waits).toEqual([expect.objectContaining({ primitive: 'mutex', name, blocking: true, waitedMs: expect.any(Number) })]);
    controller.abort();
    await expect(aborted).rejects.toBeDefined();
    expect(of(b).waits).toEqual([]);
    // … or lost with its lease, which ends the session's holdings and the session too.
    const lostWait = new Mutex(b, name).lock();
    expect(of(b).waits).toHaveLength(1);
    await fx.admin.leaseClient.leaseRevoke({ ID: b.leaseId });
    await expect(lostWait).rejects.toBeInstanceOf(LeaseLostError);
    expect(permit.signal.aborted).toBe(true);
    expect(of(b)).toEqual({ holdings: [], waits: [], sessions: [] });
    // A try… is there while it runs, a released holding goes, and so does everything of a closed session.
    const busy = new Mutex(c, name).tryLock();
    expect(of(c).waits).toEqual([expect.objectContaining({ blocking: false })]);
    expect(await busy).toBeNull();
    const other = await new Mutex(c, `${name}-c`).lock();
    expect(of(c).holdings).toHaveLength(1);
    await other.release();
    expect(of(c).holdings).toEqual([]);
    await a.close();
    expect(of(a)).toEqual({ holdings: [], waits: [], sessions: [] });
    expect(lock.signal.aborted).toBe(true);
  });

  test('without subscribers nothing is published or traced; with one, the wait is traced', async () => {
    expect(tracingChannel(channels.acquire).hasSubscribers).toBe(false);
    expect(channel(channels.release).hasSubscribers).toBe(false);
    const trace = vi.spyOn(acquireChannel, 'tracePromise');
    const publish = vi.spyOn(channel(channels.release), 'publish');
    try {
      const mutex = new Mutex(await fx.session(), uniqueName('diag-quiet'));
      await (await mutex.lock()).release();
      expect(trace).not.toHaveBeenCalled();
      expect(publish).not.toHaveBeenCalled();
      const rec = recordTracing(channels.acquire);
      stops.push(rec.stop);
      await (await mutex.lock()).release();
      expect(trace).toHaveBeenCalledTimes(1);
    } finally {
      trace.mockRestore();
      publish.mockRestore();
    }
  });
});
