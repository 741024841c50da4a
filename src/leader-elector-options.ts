/**
 * The options, events and context types of `LeaderElector` and their defaults (the elector itself is in
 * leader-elector.ts), and the checks of what only the constructor needs.
 */
import type { IBackoffFactory } from 'cockatiel';
import type { Namespace } from 'etcd3';
import type { LeaderState } from './engine/observe.js';
import { show } from './engine/validate.js';
import type { Leadership } from './leadership.js';
import type { Session, SessionOptions } from './session.js';
import { SessionSource } from './session-source.js';

/** Options of {@link LeaderElector}. */
export interface LeaderElectorOptions {
  /**
   * The value this candidate campaigns with: what `leader` and `etcdctl elect -l NAME` show while
   * it leads. In Kubernetes, the pod name (`HOSTNAME`) is a good choice.
   * @default `${os.hostname()}-${process.pid}`
   */
  identity?: string;
  /**
   * Lease TTL of each session, in whole seconds: how long a leader that vanishes without resigning
   * (killed, frozen, partitioned) keeps the others waiting. Not with `source` (its TTL is used).
   * @default 10
   */
  ttl?: number;
  /**
   * Delays between attempts after a failure: a campaign that failed, a callback that threw — and, on
   * the elector's own SessionSource, a lease that could not be granted. Restarts from its first delay
   * after a term whose callback returned normally or lasted at least one TTL. A lost lease is no
   * failure of the elector: it campaigns again at once, on the source's next session (the source
   * backs off its grants while etcd cannot be reached).
   * @default cockatiel `new ExponentialBackoff({ initialDelay: 250, maxDelay: 10_000 })`
   */
  backoff?: IBackoffFactory<unknown>;
  /**
   * After {@link LeaderElector.stop}, how long to wait for the callback to return before resigning
   * anyway, in milliseconds. The callback's `signal` aborts at once; a callback that honours it
   * returns within milliseconds, so the handover takes one round trip. Waiting first means a
   * well-behaved old leader has stopped before the next one starts.
   * @default 5000
   */
  stopTimeout?: number;
  /**
   * After a term whose callback returned by itself (rather than being ended by a loss or `stop()`),
   * how long to wait before campaigning again, in milliseconds. A callback that returns at once would
   * otherwise re-campaign in a tight loop; meanwhile another candidate can take over.
   * @default 1000
   */
  recampaignDelay?: number;
  /**
   * Options of every session the elector's own SessionSource grants (`ttl` comes from above). Checked
   * in the constructor, against `ttl`, so that a bad value is an error at once rather than a retry
   * loop. Not with `source`.
   */
  session?: Omit<SessionOptions, 'ttl' | 'leaseId' | 'signal'>;
  /**
   * The SessionSource to campaign on — the one the rest of the process uses, so that one lease and
   * one keep-alive serve the elector and every lock (made on the same `client`). `stop()` then resigns
   * but leaves the source open. Without it the elector makes a SessionSource of its own on `run()`
   * and closes it on `stop()` (revoking its lease).
   */
  source?: SessionSource;
}

/** The defaults of {@link LeaderElectorOptions} that do not depend on the process. */
export const leaderElectorDefaults = {
  /** {@link LeaderElectorOptions.ttl}: the lease TTL of each session, in seconds. */
  ttl: 10,
  /** {@link LeaderElectorOptions.stopTimeout}: how long `stop()` waits for the callback before resigning, in milliseconds. */
  stopTimeout: 5000,
  /** {@link LeaderElectorOptions.recampaignDelay}: the pause before campaigning again after a callback returned, in milliseconds. */
  recampaignDelay: 1000,
} as const;

/** How long past its term or its validity a leader may still act before {@link LeaderElector.health} calls it unhealthy, in ms. */
export const defaultTolerance = 10_000;

export const electorOptionNames = ['identity', 'ttl', 'backoff', 'stopTimeout', 'recampaignDelay', 'session', 'source'] as const;
export const electorSessionOptionNames = ['keepAliveInterval', 'safetyMargin', 'requestTimeout', 'retryPolicy'] as const;

/** A programming error (bad input) is never retried: retrying cannot fix it. */
export function isProgrammingError(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError;
}

/** What the callback of {@link LeaderElector.run} gets for one term. */
export interface LeaderContext {
  /**
   * Aborts when this term ends: lease lost ({@link LeaseLostError}), campaign key deleted by someone
   * else ({@link NotLeaderError}), or {@link LeaderElector.stop} ({@link NotLeaderError}). Return soon after.
   */
  signal: AbortSignal;
  /** The term: larger for every later leader, a fencing token for writes outside etcd. */
  term: bigint;
  /** The leadership itself: `proclaim`, guarded `commit`/`txn` of etcd writes. */
  leadership: Leadership;
  /** The session the leadership is bound to (on a SessionSource, the one current at the campaign). */
  session: Session;
}

/** Events of {@link LeaderElector}. Listeners must not throw (an error they throw is printed as a warning). */
export interface LeaderElectorEvents {
  /** This candidate became leader; the callback starts right after. */
  elected: [
    info: {
      /** The new term: larger for every later leader, a fencing token for writes outside etcd. */
      term: bigint;
      /** The campaign key in etcd (relative to the namespace), `${name}/${leaseHex}`. */
      key: string;
      /** The lease the campaign key is bound to (etcd's decimal string). */
      leaseId: string;
      /** The value this candidate campaigned with ({@link LeaderElectorOptions.identity}). */
      identity: string;
    },
  ];
  /** This candidate's term ended: resigned, lease lost, or key deleted. */
  demoted: [
    info: {
      /** The term that ended. */
      term: bigint;
      /**
       * Why it ended: the leadership's `signal.reason` — {@link NotLeaderError} when it resigned or its
       * key was deleted, {@link LeaseLostError} when the lease was lost, {@link SessionClosedError} when
       * the session was closed.
       */
      reason: unknown;
    },
  ];
  /**
   * The election's leader (anyone's) as reported by `leader` changed: the new leader, or `null` while
   * nobody leads or while this elector has no live session (it cannot know who leads).
   */
  leaderChanged: [state: LeaderState | null];
  /**
   * Something failed (campaign, lease grant of its own source, callback) or the lease was lost; the
   * next attempt starts after `delay` ms (0 after a lost lease: the next campaign waits for the
   * source's next session).
   */
  retry: [
    info: {
      /** What failed: the campaign's, session's or callback's error, or why a term's leadership was lost. */
      error: unknown;
      /** How long the elector waits before the next attempt, in milliseconds (from {@link LeaderElectorOptions.backoff}). */
      delay: number;
    },
  ];
}

/** What {@link LeaderElector.health} reports. */
export interface LeaderHealth {
  /** False when this process acts as leader although it should not (see {@link LeaderElector.health}). */
  healthy: boolean;
  /** True while the elector runs and its SessionSource has a live session: connected, campaigning or leading. */
  ready: boolean;
  /** True while this process leads. */
  leading: boolean;
  /** The current term, while in one. */
  term?: bigint;
  /** Why it is unhealthy. */
  reason?: string;
}

/** Options of {@link LeaderElector.run}. */
export interface LeaderElectorRunOptions {
  /** Aborting it stops the elector like {@link LeaderElector.stop}; `run` then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** `options.source` of LeaderElector, checked: a SessionSource on `client`, without `ttl` or `session`. */
export function checkSource(options: LeaderElectorOptions, client: Namespace): SessionSource | undefined {
  const { source } = options;
  if (source === undefined) return undefined;
  if (!(source instanceof SessionSource)) throw new TypeError(`Expected \`source\` of LeaderElector to be a SessionSource, got ${show(source)}`);
  if (options.ttl !== undefined || options.session !== undefined) {
    throw new TypeError('Options `ttl` and `session` of LeaderElector exclude `source`: the source grants the sessions, with its own');
  }
  if (source.client !== client) throw new TypeError('Expected `source` of LeaderElector to be on the elector\'s own `client` (its campaign keys and the leader watch must share a keyspace)');
  return source;
}
