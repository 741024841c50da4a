/**
 * A real `etcd3` client whose every call goes through the in-memory fake of the port, through the
 * test-only seam `bindTransport` (src/transport/select.ts): sessions, primitives and static reads
 * made on it run in memory. Its own pool points at a port nothing listens on, so a call that bypassed
 * the port would fail rather than reach some etcd.
 */
import { Etcd3 } from 'etcd3';
import { Session, type SessionOptions } from '../../src/index.js';
import { bindTransport } from '../../src/transport/select.js';
import { FakeTransport } from './fake-transport.js';

export interface OnFake extends Disposable {
  client: Etcd3;
  fake: FakeTransport;
}

/** A fresh fake and a client bound to it; dispose (`using`) closes both. */
export function onFake(): OnFake {
  const fake = new FakeTransport();
  const client = new Etcd3({ hosts: '127.0.0.1:9' });
  bindTransport(client, fake);
  return {
    client,
    fake,
    [Symbol.dispose]: () => {
      fake.close();
      client.close();
    },
  };
}

/** Lets the fake and the engine run what they have queued (the fake answers in microtasks). */
export async function settle(ms = 10): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** A promise's state, read without waiting: for "this acquisition still waits". */
export function track<T>(p: Promise<T>): { readonly state: 'pending' | 'resolved' | 'rejected'; readonly promise: Promise<T> } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  return {
    promise: p,
    get state() {
      return state;
    },
  };
}

/** `n` Sessions on `client`, created one after another (so their lease ids ascend); dispose closes them. */
export async function sessionsOn(client: Etcd3, n: number, options: SessionOptions = {}): Promise<Session[] & AsyncDisposable> {
  const sessions: Session[] = [];
  for (let i = 0; i < n; i++) sessions.push(await Session.create(client, { ttl: 5, ...options }));
  return Object.assign(sessions, { [Symbol.asyncDispose]: async () => void (await Promise.all(sessions.map(async (s) => s.close()))) });
}

/** The reason `signal` aborts with; `'not aborted'` when it has not after `ms`. */
export async function abortReason(signal: AbortSignal, ms = 2000): Promise<unknown> {
  return Promise.race([
    new Promise((resolve) => (signal.aborted ? resolve(signal.reason) : signal.addEventListener('abort', () => resolve(signal.reason), { once: true }))),
    new Promise((resolve) => setTimeout(resolve, ms, 'not aborted').unref()),
  ]);
}

/** Resolves once `condition()` holds, polling every few ms; rejects after `ms` (a generous liveness bound). */
export async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`not within ${ms} ms: ${condition.toString()}`);
    await settle(5);
  }
}

/** For {@link until}: whether exactly `keys` are being watched on the fake. */
export function watching(f: OnFake, keys: string[]): () => boolean {
  return () => JSON.stringify(f.fake.watched()) === JSON.stringify([...keys].sort());
}
