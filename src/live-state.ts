/**
 * What this process holds, waits for and keeps alive now: the state that gauges are read from.
 *
 * A gauge counted from events (+1 on a grant, −1 on a release) is wrong for everything that began
 * before it subscribed: it goes below zero when the release comes, and a second registration, or
 * another subscriber that made the channels trace a start this one did not see, does the same. So the
 * gauges of `leasehold/prometheus` read this state at scrape time instead, and {@link liveState} lets
 * any other exporter do so too.
 *
 * The state is kept whether or not anyone reads it — one `Set` insertion when a holding, a wait or a
 * session begins and one deletion when it ends (released, lost, closed, settled), so nothing outlives
 * what it describes — and it is process-wide: the sets hang off `globalThis` under `Symbol.for` keys, so
 * two installed copies of leasehold share them as they share the diagnostics channels. A new kind of
 * state is one more `processWide` set (its key names a version: change the key when the shape of
 * its entries changes) and one more gauge reading it.
 */
import type { AcquireContext, PrimitiveKind } from './diagnostics.js';

/** One holding of this process, as {@link liveState} reports it. */
export interface LiveHolding {
  /** Which primitive it is of. */
  primitive: PrimitiveKind;
  /** The primitive's name. */
  name: string;
  /** The holder's key in etcd (relative to the namespace). */
  key: string;
  /** Its fencing token (for an election, the term). */
  token: bigint;
  /** The session's lease, in hex. */
  lease: string;
  /** How long it has been held (until now, or until it ended), in ms. */
  heldMs: number;
}

/** One live Session of this process, as {@link liveState} reports it. */
export interface LiveSession {
  /** The lease, in hex. */
  lease: string;
  /** How long the session is certainly valid from now (its validity deadline minus now, at least 0), in ms. */
  validityMs: number;
}

/** One open SessionSource of this process, as {@link liveState} reports it. */
export interface LiveSource {
  /** `live` while it has a live session, `granting` while it has none. */
  state: string;
  /** The live session's lease, in hex. */
  lease?: string;
  /** How long it has been without a live session, in ms (0 while it has one). */
  withoutSessionMs: number;
}

/** What this process holds, waits for and keeps alive, read at one instant by {@link liveState}. */
export interface LiveState {
  /** Every holding: locks, permits, leaderships, raised barriers — one per handle (a MultiLock's: one per name), until it ends. */
  holdings: LiveHolding[];
  /**
   * Every acquisition call in progress (`lock`, `acquire`, `campaign`, their `try…` forms and
   * `Barrier.hold`), as the {@link AcquireContext} the `leasehold:acquire`/`leasehold:campaign`
   * channels would carry, with `waitedMs` so far. `blocking` tells a wait from a `try…`.
   */
  waits: AcquireContext[];
  /** Every Session neither lost nor closed. */
  sessions: LiveSession[];
  /** Every SessionSource not closed: whether it has a session, and for how long it has had none. */
  sources: LiveSource[];
}

/** A holding in the state (a `Holding` of this copy of leasehold, or of another's): `since` is when it began, on the `performance.now()` clock. */
export type HoldingEntry = Readonly<Omit<LiveHolding, 'heldMs'> & { since: number }>;

/** A call in progress: `describe` builds its context — only when someone reads the state. */
export interface WaitEntry {
  readonly describe: () => AcquireContext;
  readonly since: number;
}

/** A live Session (the Session itself: its public `leaseHex` and `deadline`). */
export interface SessionEntry {
  readonly leaseHex: string;
  readonly deadline: number;
}

/** An open SessionSource (the source itself: its public `health()`). */
export interface SourceEntry {
  health(): { state: string; lease?: string; withoutSessionMs: number };
}

/** The process-wide set `kind` (created by whichever copy of leasehold asks first). */
export function processWide<T>(kind: string): Set<T> {
  const slots = globalThis as unknown as Record<symbol, Set<T> | undefined>;
  return (slots[Symbol.for(`leasehold.live.${kind}`)] ??= new Set<T>());
}

/** Holdings: added when a handle is made, removed when it ends. */
export const liveHoldings = processWide<HoldingEntry>('holdings.v1');
/** Acquisition calls: added when one is made, removed when it settles. */
export const liveWaits = processWide<WaitEntry>('waits.v1');
/** Sessions: added when one is granted, removed when it is lost or closed. */
export const liveSessions = processWide<SessionEntry>('sessions.v1');
/** SessionSources: added when one is made, removed when it is closed. */
export const liveSources = processWide<SourceEntry>('sources.v1');

/**
 * Reads what this process holds, waits for and keeps alive now, for every Session of the process —
 * the source for gauges that stay true however late, or how often, an exporter subscribes (counting
 * the channels' events cannot: it misses what began before it). Costs one pass over each set.
 *
 * @example
 * ```ts
 * import { liveState } from 'leasehold';
 *
 * const { holdings, waits } = liveState();
 * console.log(`${holdings.length} held, ${waits.filter((w) => w.blocking).length} waiting`);
 * ```
 */
export function liveState(): LiveState {
  const now = performance.now();
  return {
    holdings: [...liveHoldings].map(({ primitive, name, key, token, lease, since }) => ({ primitive, name, key, token, lease, heldMs: now - since })),
    waits: [...liveWaits].map((w) => ({ ...w.describe(), waitedMs: now - w.since })),
    sessions: [...liveSessions].map((s) => ({ lease: s.leaseHex, validityMs: Math.max(0, s.deadline - now) })),
    sources: [...liveSources].map((source) => {
      const { state, lease, withoutSessionMs } = source.health();
      return { state, withoutSessionMs, ...(lease === undefined ? {} : { lease }) };
    }),
  };
}
