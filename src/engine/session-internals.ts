/**
 * What the primitives need from a Session that users must not touch: kept in a WeakMap so that the
 * public class has no such members.
 */
import type { EtcdOps } from '../transport/etcd.js';
import type { LocalQueue } from './local-queue.js';
import { show } from './validate.js';

/** What the engine sees of a Session (the public class lives above the engine). */
export interface SessionLike {
  /** etcd's decimal lease id. */
  readonly leaseId: string;
  /** The lease id in lower-case hex. */
  readonly leaseHex: string;
  /** Aborts when the session ends, with its reason. */
  readonly signal: AbortSignal;
  /** True while neither lost nor closed and within the validity deadline (checking it may lose it). */
  readonly alive: boolean;
}

export interface SessionInternals {
  /** etcd calls with this session's deadline and retry policy. */
  ops: EtcdOps;
  /** FIFO of local acquisitions per key, so two acquisitions never share one key. */
  local: LocalQueue;
  /** True when the session adopted an existing lease (`leaseId`): its keys may predate this process. */
  adopted: boolean;
  /** Marks the session lost (final). */
  lost(cause?: unknown): void;
  /** Keeps a background cleanup (e.g. deleting an abandoned queue key) for `close()` to await. */
  track(p: Promise<unknown>): void;
  /** Asks etcd whether the lease still exists; marks the session lost when it does not. */
  checkLease(): Promise<boolean>;
  /**
   * Calls `fn` once when the session ends (at once if it has), with the session's reason; returns the
   * way to unsubscribe. One registry instead of an `abort` listener per handle on `session.signal`
   * (11 of those already print `MaxListenersExceededWarning`).
   */
  onEnd(fn: (reason: unknown) => void): () => void;
}

const map = new WeakMap<object, SessionInternals>();

export function register(session: object, internals: SessionInternals): void {
  map.set(session, internals);
}

/** The internals of `session`; `where` names the caller in the TypeError thrown for anything else. */
export function internals(session: unknown, where = 'a primitive'): SessionInternals {
  const found = typeof session === 'object' && session !== null ? map.get(session) : undefined;
  if (!found) throw new TypeError(`Expected \`session\` of ${where} to be a leasehold Session, got ${show(session)}`);
  return found;
}
