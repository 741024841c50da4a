/**
 * What the primitives need from a Session that users must not touch: kept in a WeakMap so that the
 * public class has no such members.
 */
import type { EtcdOps } from './etcd.js';
import type { LocalQueue } from './local-queue.js';

export interface SessionInternals {
  /** etcd calls with this session's deadline and retry policy. */
  ops: EtcdOps;
  /** FIFO of local acquisitions per key, so two acquisitions never share one key. */
  local: LocalQueue;
  /** Marks the session lost (final). */
  lost(cause?: unknown): void;
  /** Keeps a background cleanup (e.g. deleting an abandoned queue key) for `close()` to await. */
  track(p: Promise<unknown>): void;
  /** Asks etcd whether the lease still exists; marks the session lost when it does not. */
  checkLease(): Promise<boolean>;
}

const map = new WeakMap<object, SessionInternals>();

export function register(session: object, internals: SessionInternals): void {
  map.set(session, internals);
}

export function internals(session: object): SessionInternals {
  const found = map.get(session);
  if (!found) throw new TypeError(`Expected a leasehold Session, got \`${String(session)}\``);
  return found;
}
