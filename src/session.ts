import type { Namespace } from 'etcd3';
import { publishKeepAlive, publishSessionClosed, publishSessionLost } from './diagnostics.js';
import { LeaseLostError, SessionClosedError } from './errors.js';
import { liveSessions } from './live-state.js';
import { clampDelay } from './transport/abort.js';
import type { EtcdOps } from './transport/etcd.js';
import { KeepAlive } from './transport/keep-alive.js';
import { grantLease, leaseGone, type GrantedLease } from './engine/grant.js';
import { leaseHex } from './engine/keys.js';
import { LocalQueue } from './engine/local-queue.js';
import { register, type SessionInternals } from './engine/session-internals.js';
import { sessionDefaults, type SessionOptions } from './session-options.js';

export { sessionDefaults, type SessionOptions };

/**
 * One etcd lease, kept alive, that every lock, semaphore and election of this process can share.
 *
 * The session tracks a validity deadline on the local monotonic clock: each keep-alive that succeeds
 * moves it to `sendTime + TTL − safetyMargin`. When the deadline passes without a newer success, or
 * etcd says the lease is gone, the session is lost: `signal` aborts with {@link LeaseLostError},
 * every handle taken on it aborts too, and nothing reports "held" on that lease again. Lost is final;
 * create a new Session to go on.
 *
 * @example
 * ```ts
 * await using session = await Session.create(etcd, { ttl: 10 });
 * session.signal.addEventListener('abort', () => {
 *   if (isLeaseLostError(session.signal.reason)) console.error('lease lost: stop, then start over');
 * });
 * ```
 */
export class Session implements AsyncDisposable {
  /** The lease id as etcd's decimal string. */
  readonly leaseId: string;
  /** The lease id in lower-case hex: the suffix of this session's keys (`name/<leaseHex>`), and how errors show it. */
  readonly leaseHex: string;
  /** The lease TTL in seconds, as granted by etcd. */
  readonly ttl: number;
  /** The etcd client (or namespace) this session's keys live in. */
  readonly client: Namespace;

  readonly #controller = new AbortController();
  readonly #ops: EtcdOps;
  readonly #margin: number;
  readonly #keepAlive: KeepAlive;
  #deadline: number;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  readonly #cleanups = new Set<Promise<unknown>>();
  /** Called once when the session ends (instead of one `abort` listener per handle on `signal`). */
  readonly #dependents = new Set<(reason: unknown) => void>();

  private constructor(init: GrantedLease) {
    this.client = init.client;
    this.leaseId = init.leaseId;
    this.leaseHex = leaseHex(init.leaseId);
    this.ttl = init.ttl;
    this.#deadline = init.deadline;
    this.#margin = init.margin;
    this.#ops = init.ops;
    const internals: SessionInternals = {
      ops: this.#ops,
      local: new LocalQueue(),
      adopted: init.adopted,
      lost: (cause) => this.#lose(cause),
      track: (p) => this.#track(p),
      checkLease: () => this.#checkLease(),
      onEnd: (fn) => this.#onEnd(fn),
    };
    register(this, internals);
    this.#armDeadline();
    liveSessions.add(this); // until #stop: what the validity gauge reads
    this.#keepAlive = new KeepAlive({
      transport: init.ops.transport,
      leaseId: init.leaseId,
      interval: init.interval,
      // Half an interval leaves the next tries time before the deadline; 250 ms keeps a tiny TTL under
      // load from giving up on answers that are merely slow (they still count when they come).
      stallMs: Math.min(init.ops.requestTimeout, Math.max(init.interval / 2, Math.min(250, init.interval))),
      requestTimeout: init.ops.requestTimeout,
      renewed: (sentAt, ttl) => this.#renewed(sentAt, ttl),
      gone: (cause) => this.#lose(cause),
    });
  }

  /**
   * Grants a lease (or adopts `options.leaseId`) and starts keeping it alive.
   * Aborting `options.signal` rejects with its reason and revokes a lease granted meanwhile.
   * @throws TypeError/RangeError when an option is invalid or unknown, naming it and the value.
   * @throws LeaseLostError when `options.leaseId` names a lease that does not exist, or when etcd
   * answered so late that the lease's validity had already run out (it is revoked).
   * @throws EtcdUnavailableError when etcd cannot be reached for as long as the retry policy tries.
   */
  static async create(client: Namespace, options: SessionOptions = {}): Promise<Session> {
    return new Session(await grantLease(client, options, sessionDefaults));
  }

  /**
   * Aborts when the session ends: with {@link LeaseLostError} when the lease is lost, with
   * {@link SessionClosedError} after {@link close}. Every handle's `signal` follows it.
   */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /**
   * The validity deadline on the `performance.now()` clock: the lease is certainly alive before it.
   */
  get deadline(): number {
    return this.#deadline;
  }

  /** True while the session is neither lost nor closed and its validity deadline has not passed. */
  get alive(): boolean {
    if (this.#controller.signal.aborted) return false;
    if (performance.now() >= this.#deadline) {
      this.#lose();
      return false;
    }
    return true;
  }

  /**
   * Revokes the lease and ends the session: every lock, permit and leadership taken on it is released
   * at once and their signals abort. Idempotent; bounded by the request timeout (after a loss, by the
   * TTL: the lost lease's revoke is retried that long); never rejects because the lease is already gone.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Calls {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    const wasAlive = !this.#controller.signal.aborted;
    this.#stop(new SessionClosedError(`session with lease ${this.leaseHex} is closed`, { leaseId: this.leaseId }));
    if (wasAlive) publishSessionClosed(() => ({ lease: this.leaseHex }));
    await Promise.allSettled([...this.#cleanups]);
    // A lost session already revoked in the background (a tracked cleanup awaited above).
    if (wasAlive) await this.#ops.leaseRevoke(this.leaseId);
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.#cleanups.delete(tracked));
    this.#cleanups.add(tracked);
  }

  #onEnd(fn: (reason: unknown) => void): () => void {
    if (this.#controller.signal.aborted) {
      fn(this.#controller.signal.reason);
      return () => undefined;
    }
    this.#dependents.add(fn);
    return () => this.#dependents.delete(fn);
  }

  #stop(reason: Error): void {
    clearTimeout(this.#deadlineTimer);
    this.#keepAlive.stop();
    liveSessions.delete(this);
    if (this.#controller.signal.aborted) return;
    this.#controller.abort(reason);
    const dependents = [...this.#dependents];
    this.#dependents.clear();
    for (const fn of dependents) fn(reason);
  }

  #lose(cause?: unknown): void {
    if (this.#controller.signal.aborted) return;
    const message =
      cause === undefined
        ? `lease ${this.leaseHex} lost: no keep-alive succeeded before its validity deadline`
        : `lease ${this.leaseHex} lost: etcd reports it expired or revoked`;
    const reason = new LeaseLostError(message, { leaseId: this.leaseId, ...(cause === undefined ? {} : { cause }) });
    this.#stop(reason);
    publishSessionLost(() => ({ lease: this.leaseHex, reason }));
    // Make the loss final on the server too, so nothing waits out the rest of the TTL for us — retried
    // for up to a TTL, since a loss often comes while etcd has no leader (a partition, an election).
    this.#track(this.#ops.leaseRevoke(this.leaseId, this.ttl * 1000));
  }

  async #checkLease(): Promise<boolean> {
    const gone = this.alive ? await leaseGone(this.#ops, this.leaseId, this.signal) : undefined;
    if (gone !== undefined) this.#lose(gone);
    return this.alive;
  }

  #renewed(sentAt: number, ttl: number): void {
    if (this.#controller.signal.aborted) return;
    const deadline = sentAt + ttl * 1000 - this.#margin;
    if (deadline > this.#deadline) {
      this.#deadline = deadline;
      this.#armDeadline();
    }
    publishKeepAlive(() => {
      const now = performance.now();
      return { lease: this.leaseHex, roundTripMs: now - sentAt, validityMs: this.#deadline - now };
    });
  }

  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    const wait = Math.max(0, this.#deadline - performance.now());
    // A deadline further away than a timer can wait re-arms when the clamped timer fires.
    this.#deadlineTimer = setTimeout(() => {
      if (performance.now() >= this.#deadline) this.#lose();
      else this.#armDeadline();
    }, clampDelay(wait + 1));
    // The deadline timer keeps the process alive while the session is: it is the one that reports loss.
  }
}
