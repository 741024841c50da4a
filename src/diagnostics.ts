/**
 * leasehold's `node:diagnostics_channel` channels: the zero-dependency way for APM tools, metrics and
 * logs to see waits, holds, losses and leader changes. Nothing is published — not even a context
 * object built — while a channel has no subscriber. What is held and waited for *now* is kept apart,
 * in the live state (`live-state.ts`), which gauges read instead of counting these events.
 *
 * - `leasehold:acquire` (a `TracingChannel`): every wait of `Mutex`, `MultiLock`, `ReadWriteLock` and
 *   `Semaphore` (`lock`, `readLock`/`writeLock`, `acquire`, and their `try…` forms) and `Barrier.hold`, with `start`, `end`,
 *   `asyncStart`, `asyncEnd` and `error`; the context is an {@link AcquireContext}.
 * - `leasehold:campaign` (a `TracingChannel`): every `Election.campaign` (and so every
 *   `LeaderElector` term); the context is an {@link AcquireContext} with `primitive: 'election'`.
 * - `leasehold:release` — a holding ended ({@link ReleaseMessage}): released, or lost with its lease
 *   (a MultiLock's holding is one per name: one message for each).
 * - `leasehold:session:lost` — a Session lost its lease ({@link SessionLostMessage}).
 * - `leasehold:session:closed` — a live Session was closed ({@link SessionClosedMessage}).
 * - `leasehold:session:regranted` — a SessionSource was granted a new lease after losing one
 *   ({@link SessionRegrantedMessage}).
 * - `leasehold:session:keepalive` — a keep-alive succeeded ({@link KeepAliveMessage}).
 * - `leasehold:leader` — a leader change seen by `Election.observe()` or a `LeaderElector`
 *   ({@link LeaderMessage}).
 *
 * Payloads carry names, keys, lease ids, tokens and timings — never a password, token or value of
 * yours (an election's value is the one exception: it is the leader's public identity).
 */
import { channel, tracingChannel, type TracingChannel } from 'node:diagnostics_channel';
import { isLeaseLostError, isSessionClosedError } from './errors.js';
import type { LeaderState } from './engine/observe.js';
import { liveHoldings, liveWaits, type HoldingEntry, type LiveHolding } from './live-state.js';

/** The names of leasehold's channels. */
export const channels = {
  /** A `TracingChannel`: every wait of `Mutex`, `MultiLock`, `ReadWriteLock` and `Semaphore`, and `Barrier.hold` (which never waits); the context is an {@link AcquireContext}. */
  acquire: 'leasehold:acquire',
  /** A `TracingChannel`: every `Election.campaign`; the context is an {@link AcquireContext} with `primitive: 'election'`. */
  campaign: 'leasehold:campaign',
  /** A holding ended: released, or lost with its lease ({@link ReleaseMessage}). */
  release: 'leasehold:release',
  /** A Session lost its lease ({@link SessionLostMessage}). */
  sessionLost: 'leasehold:session:lost',
  /** A live Session was closed ({@link SessionClosedMessage}). */
  sessionClosed: 'leasehold:session:closed',
  /** A SessionSource was granted a new lease after losing one ({@link SessionRegrantedMessage}). */
  sessionRegranted: 'leasehold:session:regranted',
  /** A keep-alive succeeded ({@link KeepAliveMessage}). */
  keepAlive: 'leasehold:session:keepalive',
  /** A leader change seen by `Election.observe()` or a `LeaderElector` ({@link LeaderMessage}). */
  leader: 'leasehold:leader',
} as const;

/** Which primitive a message is about. */
export type PrimitiveKind = 'mutex' | 'rwlock' | 'semaphore' | 'election' | 'barrier' | 'multilock';

/** How a wait ended. */
export type AcquireOutcome = 'granted' | 'busy' | 'aborted' | 'lost' | 'error';

/**
 * The context object of `leasehold:acquire` and `leasehold:campaign`: filled in as the wait goes
 * (`token`, `waitedMs` and `outcome` are set before `asyncEnd`; `error` by the channel on failure).
 */
export interface AcquireContext {
  /** Which primitive is waiting. */
  primitive: PrimitiveKind;
  /** The primitive's name (a MultiLock's names joined by `, `). */
  name: string;
  /** A MultiLock's names, each as it is: metrics count the wait once per name. */
  names?: string[];
  /** `read` or `write` for a ReadWriteLock. */
  mode?: 'read' | 'write';
  /** A Semaphore's total permits. */
  permits?: number;
  /** The number of a Semaphore's permits asked for. */
  weight?: number;
  /** The session's lease, in hex. */
  lease: string;
  /** `false` for `tryLock`/`tryAcquire` (no waiting). */
  blocking: boolean;
  /** The fencing token (for an election, the term), once granted. */
  token?: bigint;
  /** How long the call took, in ms. */
  waitedMs?: number;
  /** How it ended: granted; `busy` (a `try…` that found it taken); aborted by the caller; lost with the lease; another error. */
  outcome?: AcquireOutcome;
  /** Set by the channel when the call rejects. */
  error?: unknown;
  /** Set by the channel when the call resolves. */
  result?: unknown;
}

/** A `leasehold:release` message: a holding ended (its fields as in `liveState()`, `heldMs` up to the end). */
export interface ReleaseMessage extends LiveHolding {
  /** `released` by `release()`/`resign()`, `lost` with the lease, `closed` with the session. */
  outcome: 'released' | 'lost' | 'closed';
}

/** A `leasehold:session:regranted` message: a SessionSource replaced a lost lease. */
export interface SessionRegrantedMessage {
  /** The new lease, in hex. */
  lease: string;
  /** The lease it replaces (lost, or closed by someone else), in hex. */
  previous: string;
  /** How long the source was without a live session: from the loss to this grant, in ms. */
  withoutSessionMs: number;
}

/** A `leasehold:session:closed` message: `close()` ended a session that was alive (a lost one was told on `leasehold:session:lost`). */
export interface SessionClosedMessage {
  /** The lease, in hex. */
  lease: string;
}

/** A `leasehold:session:lost` message. */
export interface SessionLostMessage {
  /** The lease, in hex. */
  lease: string;
  /** The `LeaseLostError`. */
  reason: unknown;
}

/** A `leasehold:session:keepalive` message: a keep-alive succeeded. */
export interface KeepAliveMessage {
  /** The session's lease, in hex. */
  lease: string;
  /** From sending the keep-alive to its answer, in ms. */
  roundTripMs: number;
  /** How long the session's validity now lasts, in ms (its deadline minus now). */
  validityMs: number;
}

/** A `leasehold:leader` message: the leader of an election changed, as seen by this process. */
export interface LeaderMessage {
  /** The election's name. */
  name: string;
  /** The new leader, or `null` while nobody leads. */
  leader: LeaderState | null;
  /** True when the leader is this process (the observing session's lease, or this LeaderElector). */
  self: boolean;
  /** Who saw it. */
  source: 'observe' | 'elector';
}

export const acquireChannel: TracingChannel<unknown, AcquireContext> = tracingChannel(channels.acquire);
export const campaignChannel: TracingChannel<unknown, AcquireContext> = tracingChannel(channels.campaign);
const releaseChannel = channel(channels.release);
const sessionLostChannel = channel(channels.sessionLost);
const sessionClosedChannel = channel(channels.sessionClosed);
const sessionRegrantedChannel = channel(channels.sessionRegranted);
const keepAliveChannel = channel(channels.keepAlive);
const leaderChannel = channel(channels.leader);

/** How a failed wait is told: the caller's abort, the lease (or session) gone, or another error. */
function outcomeOf(error: unknown, caller: AbortSignal | undefined): AcquireOutcome {
  if (caller?.aborted && error === caller.reason) return 'aborted';
  if (isLeaseLostError(error) || isSessionClosedError(error)) return 'lost';
  return 'error';
}

/**
 * Runs an acquisition call: in the live state while it is in progress (`make` is called only by a
 * reader of that state), and through `tracing` with the context `make()` builds — only when someone
 * subscribes, so an unobserved call costs one property read and one set entry. `tokenOf` reads the
 * token from the result (null: busy).
 */
export function traced<T>(
  tracing: TracingChannel<unknown, AcquireContext>,
  make: () => AcquireContext,
  caller: AbortSignal | undefined,
  fn: () => Promise<T>,
  tokenOf: (result: T) => bigint | undefined,
): Promise<T> {
  const wait = { describe: make, since: performance.now() };
  const settled = (): void => void liveWaits.delete(wait);
  liveWaits.add(wait);
  try {
    const call = tracing.hasSubscribers ? trace(tracing, make(), caller, fn, tokenOf) : fn();
    void call.then(settled, settled);
    return call;
  } catch (error) {
    settled();
    throw error;
  }
}

/** {@link traced} for subscribers: fills in `context` as the call goes. */
function trace<T>(tracing: TracingChannel<unknown, AcquireContext>, context: AcquireContext, caller: AbortSignal | undefined, fn: () => Promise<T>, tokenOf: (result: T) => bigint | undefined): Promise<T> {
  const started = performance.now();
  return tracing.tracePromise(async () => {
    try {
      const result = await fn();
      const token = tokenOf(result);
      context.outcome = token === undefined ? 'busy' : 'granted';
      if (token !== undefined) context.token = token;
      return result;
    } catch (error) {
      context.outcome = outcomeOf(error, caller);
      throw error;
    } finally {
      context.waitedMs = performance.now() - started;
    }
  }, context);
}

/**
 * A holding from its grant to its end: in the live state while it lasts, and told on
 * `leasehold:release` when it ends — both in this one place, so they cannot disagree.
 */
export class Holding implements HoldingEntry {
  readonly since = performance.now();

  constructor(
    readonly primitive: PrimitiveKind,
    readonly name: string,
    readonly key: string,
    readonly token: bigint,
    readonly lease: string,
  ) {
    liveHoldings.add(this);
  }

  /** Ends the holding: out of the live state, and told on `leasehold:release`. Once; later calls do nothing. */
  end(outcome: ReleaseMessage['outcome']): void {
    if (!liveHoldings.delete(this)) return;
    publishRelease(() => ({
      primitive: this.primitive,
      name: this.name,
      key: this.key,
      token: this.token,
      lease: this.lease,
      heldMs: performance.now() - this.since,
      outcome,
    }));
  }
}

/** Publishes on `leasehold:release`, building the message only for subscribers. */
function publishRelease(make: () => ReleaseMessage): void {
  if (releaseChannel.hasSubscribers) releaseChannel.publish(make());
}

/** Publishes on `leasehold:session:lost`. */
export function publishSessionLost(make: () => SessionLostMessage): void {
  if (sessionLostChannel.hasSubscribers) sessionLostChannel.publish(make());
}

/** Publishes on `leasehold:session:closed`. */
export function publishSessionClosed(make: () => SessionClosedMessage): void {
  if (sessionClosedChannel.hasSubscribers) sessionClosedChannel.publish(make());
}

/** Publishes on `leasehold:session:regranted`. */
export function publishSessionRegranted(make: () => SessionRegrantedMessage): void {
  if (sessionRegrantedChannel.hasSubscribers) sessionRegrantedChannel.publish(make());
}

/** Publishes on `leasehold:session:keepalive`. */
export function publishKeepAlive(make: () => KeepAliveMessage): void {
  if (keepAliveChannel.hasSubscribers) keepAliveChannel.publish(make());
}

/** Publishes on `leasehold:leader`. */
export function publishLeader(make: () => LeaderMessage): void {
  if (leaderChannel.hasSubscribers) leaderChannel.publish(make());
}
