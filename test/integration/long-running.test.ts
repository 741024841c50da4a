// A worker that runs for months: its acquisitions must leave nothing behind on the signals that live
// as long as it does — the session's and the caller's stop signal. `AbortSignal.any` would: in Node
// 20–24 each signal it combines keeps a reference to every signal derived from it (nodejs/node#55351),
// so both grew by one entry per acquisition. This reads Node's own record of those references
// (the `kDependantSignals` set) and the abort listeners, before and after hundreds of acquisitions.
import { getEventListeners } from 'node:events';
import { describe, expect, test } from 'vitest';
import { DoubleBarrier, Election, MultiLock, Mutex, SessionSource } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { uniqueName } from '../helpers.js';

const fx = etcdForFile();

/** What a signal holds for the signals derived from it: Node's dependant set and its abort listeners. */
function held(signal: AbortSignal): { dependants: number; listeners: number } {
  const symbol = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  const set = symbol && (signal as unknown as Record<symbol, Set<unknown> | undefined>)[symbol];
  return { dependants: set?.size ?? 0, listeners: getEventListeners(signal, 'abort').length };
}

describe('a long-running worker', () => {
  test('the Node version has the dependant set this test reads (else the leak check below would read nothing)', () => {
    const source = new AbortController();
    AbortSignal.any([source.signal, new AbortController().signal]);
    expect(held(source.signal).dependants).toBe(1);
  });

  test('300 acquisitions (Mutex.withLock, MultiLock.withLock, proclaim, DoubleBarrier rounds) leave nothing on the session\'s or the stop signal', async () => {
    await using sessions = new SessionSource(fx.etcd.client(), { ttl: 10 });
    const session = await sessions.current();
    const stopping = new AbortController();
    const name = uniqueName('long-running');
    const mutex = new Mutex(sessions, `${name}/m`);
    const multi = new MultiLock(sessions, [`${name}/a`, `${name}/b`]);
    const leadership = await new Election(sessions, `${name}/e`).campaign('0');
    const barrier = new DoubleBarrier(sessions, `${name}/d`, { count: 1 });
    const before = { session: held(session.signal), stop: held(stopping.signal) };
    for (let i = 0; i < 75; i++) {
      await mutex.withLock(async () => undefined, { signal: stopping.signal, requeue: true });
      await multi.withLock(async () => undefined, { signal: stopping.signal, requeue: true });
      await leadership.proclaim(String(i), { signal: stopping.signal });
      await barrier.enter({ signal: stopping.signal });
      await barrier.leave({ signal: stopping.signal });
    }
    expect({ session: held(session.signal), stop: held(stopping.signal) }).toEqual(before);
    expect(sessions.session).toBe(session); // one lease throughout: the same signal was measured
    await leadership.resign();
  });
});
