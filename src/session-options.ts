/** The options of `Session.create` and their defaults (the Session itself is in session.ts). */
import type { IBackoffFactory, IPolicy } from 'cockatiel';

/** Options of {@link Session.create}. */
export interface SessionOptions {
  /**
   * Lease TTL in whole seconds. etcd's smallest TTL is ceil(1.5 × election timeout): 2 s with etcd's
   * default 1000 ms election timeout.
   * @default 60
   */
  ttl?: number;
  /**
   * Reuse this existing lease (decimal string or bigint) instead of granting a new one: its TTL comes
   * from etcd, and keys it already owns (for example `name/<lease>` from an earlier process) are
   * resumed by the primitives.
   */
  leaseId?: string | bigint;
  /**
   * How often to send a keep-alive, in milliseconds.
   * @default ttl × 1000 / 3
   */
  keepAliveInterval?: number;
  /**
   * How much earlier than etcd the session gives the lease up, in milliseconds: the session's validity
   * deadline is `sendTime + TTL − safetyMargin` of the last keep-alive that succeeded, on the local
   * monotonic clock. Covers clock-rate drift and the time between checking `signal` and acting.
   * @default ttl × 100 (a tenth of the TTL)
   */
  safetyMargin?: number;
  /**
   * Deadline of every etcd call, in milliseconds; an unanswered call fails and is retried.
   * @default 5000
   */
  requestTimeout?: number;
  /**
   * The cockatiel policy wrapped around every etcd call (leasehold's calls are all idempotent).
   * @default retry of transient errors, 12 retries (13 attempts), exponential backoff 25 ms … 1 s (≈ 6.5 s)
   */
  retryPolicy?: IPolicy;
  /**
   * How leasehold talks to etcd. `'h2'`: its own lean gRPC client on `node:http2`, configured from
   * the etcd3 client's options (`hosts`, `credentials`, `auth`, `grpcOptions`'s
   * `grpc.ssl_target_name_override`), about half the CPU per call; its connections close when the
   * etcd3 client is closed. `'etcd3'`: the etcd3 client's own gRPC connections. One transport per
   * client and kind is shared by every Session on that client (one watch stream, one keep-alive
   * stream per lease). Either way the same calls, guarantees and errors.
   * @default the `LEASEHOLD_TRANSPORT` environment variable when set, else `'h2'`
   */
  transport?: 'h2' | 'etcd3';
  /** Aborts `Session.create` (the lease is revoked if it was granted meanwhile). */
  signal?: AbortSignal;
}

/** The defaults of {@link SessionOptions}; those that derive from the TTL are computed per session. */
export const sessionDefaults = {
  /** {@link SessionOptions.ttl}: the lease TTL, in seconds. */
  ttl: 60,
  /** {@link SessionOptions.requestTimeout}: the deadline of every etcd call, in milliseconds. */
  requestTimeout: 5000,
} as const;

/** Options of {@link SessionSource}: those of every Session it grants, and how it retries and reports. */
export interface SessionSourceOptions extends Omit<SessionOptions, 'leaseId' | 'signal'> {
  /**
   * Delays between attempts to grant a lease after one failed (etcd unreachable, too slow, or refusing).
   * The first attempt after a loss goes at once when the lost session had lived at least one TTL;
   * after a shorter life it waits the next delay, so a lease that keeps being lost is not re-granted
   * in a tight loop.
   * @default cockatiel `new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 })`
   */
  backoff?: IBackoffFactory<unknown>;
  /**
   * How long the source may be without a session while etcd answers it (refusing the grants) before
   * its health reports it not live, in milliseconds. An etcd that cannot be reached never makes it
   * not live (see `SessionSource.health`).
   * @default 3 × ttl × 1000
   */
  livenessGrace?: number;
}

/** The defaults of {@link SessionSourceOptions} that do not derive from the TTL. */
export const sessionSourceDefaults = {
  /** {@link SessionSourceOptions.backoff}: the first delay between failed grants, in milliseconds. */
  initialDelay: 100,
  /** {@link SessionSourceOptions.backoff}: the longest delay between failed grants, in milliseconds. */
  maxDelay: 2000,
  /** {@link SessionSourceOptions.livenessGrace}: in TTLs. */
  livenessGraceTtls: 3,
} as const;
