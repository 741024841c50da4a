import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ExponentialBackoff, type IBackoff, type IBackoffFactory } from 'cockatiel';
import type { Namespace } from 'etcd3';
import { publishSessionRegranted } from './diagnostics.js';
import { isAuthenticationError, isLeaseLostError, isPermissionDeniedError, isTlsError, LeaseholdError, SessionClosedError } from './errors.js';
import { liveSources } from './live-state.js';
import { checkClient, checkSessionOptions, opsFor, timings } from './engine/session-options.js';
import { checkBackoff, checkMs, checkOptions, signalOption } from './engine/validate.js';
import { emitSafely, probeHandler, sourceHealth, type SessionSourceHealth, type SessionSourceState } from './health.js';
import { Session } from './session.js';
import { sessionDefaults, sessionSourceDefaults, type SessionOptions, type SessionSourceOptions } from './session-options.js';
import { registerSource, SessionWaiters } from './sessions.js';
import { sleep } from './transport/abort.js';
import { isTransientError } from './transport/retry.js';

export { sessionSourceDefaults, type SessionSourceOptions, type SessionSourceHealth, type SessionSourceState };

/** etcd refused this process's credentials, certificate or permissions: a restart (re-reading a rotated secret) may cure it. */
function isConfigurationRefusal(error: unknown): boolean {
  return isAuthenticationError(error) || isTlsError(error) || isPermissionDeniedError(error);
}

const sourceOptionNames = ['ttl', 'keepAliveInterval', 'safetyMargin', 'requestTimeout', 'retryPolicy', 'backoff', 'livenessGrace'] as const;

/** Events of {@link SessionSource}. Listeners must not throw (an error they throw is printed as a warning). */
export interface SessionSourceEvents {
  /** A session was granted: the first one, or the next one after a loss. */
  session: [
    session: Session,
    info: {
      /** The session it replaces (lost or closed), or `undefined` for the first one. */
      previous: Session | undefined;
      /** How long the source was without a live session before this grant, in ms. */
      withoutSessionMs: number;
    },
  ];
  /** The current session ended without `close()` of the source (lost, or closed by someone); the next grant starts. */
  lost: [session: Session, reason: unknown];
  /** A grant failed (etcd unreachable, too slow, or refusing); the next attempt starts after `delay` ms. */
  retry: [
    info: {
      /** Why the grant failed: `Session.create`'s error. */
      error: unknown;
      /** How long until the next attempt, in milliseconds (from the `backoff` option). */
      delay: number;
    },
  ];
}

/**
 * Keeps one live Session for a process that runs for months: every acquisition made through it takes
 * the Session current at that moment, and after a loss the source grants a new lease at once — with
 * backoff while etcd cannot be reached — so the next acquisition works again without a restart.
 *
 * Nothing held is carried over: what was held or queued on a lost lease stays lost (its handle's
 * `signal` aborts with {@link LeaseLostError}, a waiter rejects with it), and a section that started
 * never re-runs by itself. Pass the source wherever a Session goes — `new Mutex(sessions, 'jobs')`,
 * `new LeaderElector(etcd, 'scheduler', { source: sessions })` — and close it on shutdown. Use a
 * fixed {@link Session} instead where a loss should end the work (a script, a test, a CLI command).
 *
 * @example
 * ```ts
 * import { SessionSource } from 'leasehold';
 * await using sessions = new SessionSource(etcd, { ttl: 10 });
 * const pool = new Semaphore(sessions, 'transcoders', { permits: 4 });
 * await pool.withPermit(async (permit) => transcode(file, { signal: permit.signal }), { requeue: true });
 * ```
 */
export class SessionSource extends EventEmitter<SessionSourceEvents> implements AsyncDisposable {
  /** The etcd client (or namespace) the sessions' keys live in. */
  readonly client: Namespace;
  /** The lease TTL of every session, in seconds. */
  readonly ttl: number;

  readonly #options: SessionOptions;
  readonly #backoff: IBackoffFactory<unknown>;
  readonly #grace: number;
  readonly #closed = new AbortController();
  #session: Session | undefined;
  #granting: Promise<void> | undefined;
  readonly #waiters = new SessionWaiters();
  #delay: IBackoff<unknown> | undefined;
  /** Since when (performance.now()) the source has had no live session; undefined while it has one. */
  #withoutSince: number | undefined = performance.now();
  /** Whether etcd's latest answer to a grant was a refusal of this process's credentials, certificate or permissions (see {@link health}). */
  #refused = false;
  #lastError: unknown;

  /**
   * A source of sessions on `client`; it starts granting the first lease at once. Options are those
   * of {@link Session.create} (without `leaseId`), plus `backoff` and `livenessGrace`.
   * @throws TypeError/RangeError when `client` or an option is invalid, naming the value.
   */
  constructor(client: Namespace, options?: SessionSourceOptions) {
    super();
    checkClient(client, 'SessionSource');
    const { backoff, livenessGrace, ...rest } = checkOptions(options, 'SessionSource', sourceOptionNames);
    const checked = checkSessionOptions(rest, 'SessionSource', sessionDefaults);
    timings(checked.ttl!, checked);
    this.client = client;
    this.ttl = checked.ttl!;
    this.#options = { ...rest, ttl: this.ttl };
    this.#backoff = checkBackoff(backoff, () => new ExponentialBackoff({ initialDelay: sessionSourceDefaults.initialDelay, maxDelay: sessionSourceDefaults.maxDelay }));
    this.#grace = checkMs('livenessGrace', livenessGrace ?? sessionSourceDefaults.livenessGraceTtls * this.ttl * 1000);
    const ops = opsFor(client, checked);
    registerSource(this, {
      ops,
      renews: true,
      peek: () => this.session,
      current: async (signal) => this.current(signal && { signal }),
      attempt: async () => this.#attempt(),
    });
    liveSources.add(this); // until close(): what the time-without-a-session gauge reads
    this.#grant(false);
  }

  /** The live session now, or `undefined` while the source is granting one (or closed). */
  get session(): Session | undefined {
    const s = this.#session;
    return s?.alive ? s : undefined;
  }

  /** `live` while it has a live session, `granting` while it has none, `closed` after {@link close}. */
  get state(): SessionSourceState {
    if (this.#closed.signal.aborted) return 'closed';
    return this.session ? 'live' : 'granting';
  }

  /**
   * The live session, waiting for the next grant when there is none. Never a lost one: checking it
   * may find its validity deadline passed, which loses it and starts the next grant.
   * Aborting `options.signal` rejects with its reason.
   * @throws the grant's error when etcd refuses to grant a lease (authentication, permission, TLS, a
   * refused request): waiting cannot fix that. While etcd is merely unreachable it keeps waiting.
   * @throws SessionClosedError (LeaseholdError before any lease was granted) after {@link close}.
   */
  async current(options?: { signal?: AbortSignal }): Promise<Session> {
    const signal = signalOption(options, 'SessionSource.current');
    signal?.throwIfAborted();
    if (this.#closed.signal.aborted) throw this.#closedError();
    const live = this.session;
    if (live) return live;
    this.#grant(false); // no-op while a grant is under way
    return this.#waiters.wait(true, signal);
  }

  /**
   * The source's health for probes (docs/session.md explains the rule):
   * - `ready` while it has a live session; it depends on nothing another process holds, so a new
   *   replica of a rolling update becomes ready on its own lease.
   * - `live` is false only after `livenessGrace` (3 × TTL) without a session while etcd's latest answer
   *   to a grant refused this process's credentials, certificate or permissions (a fault a restart,
   *   re-reading a rotated secret, may cure). An unreachable etcd never makes it not live: a
   *   restart cannot bring etcd back, and restarting the whole fleet at once would put it into
   *   crash-loop backoff, back minutes after etcd. Closed: live (shutting down), not ready.
   */
  health(): SessionSourceHealth {
    const withoutSessionMs = this.#withoutSince === undefined ? 0 : performance.now() - this.#withoutSince;
    const lease = this.session?.leaseHex;
    return sourceHealth({ state: this.state, withoutSessionMs, refused: this.#refused, grace: this.#grace, lastError: this.#lastError, ...(lease && { lease }) });
  }

  /** A `node:http` handler for a liveness probe: 200 while {@link health} says live, else 503, with the health as JSON. */
  livenessHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return probeHandler(() => this.health(), (h) => h.live);
  }

  /** A `node:http` handler for a readiness probe: 200 while the source has a live session, else 503. */
  readinessHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return probeHandler(() => this.health(), (h) => h.ready);
  }

  /**
   * Stops granting and closes the current session (revoking its lease: everything held on it is
   * released at once). Waiting acquisitions reject. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#closed.signal.aborted) {
      liveSources.delete(this);
      this.#closed.abort(this.#closedError());
      this.#waiters.failed(this.#closedError(), true);
    }
    await this.#granting;
    await this.#session?.close();
  }

  /** Calls {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #attempt(): Promise<Session> {
    if (this.#closed.signal.aborted) throw this.#closedError();
    if (this.session) return this.session;
    this.#grant(false); // no-op while a grant is under way
    return this.#waiters.wait(false);
  }

  #closedError(): Error {
    const last = this.#session;
    if (!last) return new LeaseholdError('SessionSource is closed (it never had a lease)');
    return new SessionClosedError(`SessionSource is closed (its last lease was ${last.leaseHex})`, { leaseId: last.leaseId });
  }

  /** Starts the grant loop unless it runs; `afterShortLife` waits the next backoff delay first. */
  #grant(afterShortLife: boolean): void {
    if (this.#granting) return;
    const granting: Promise<void> = this.#loop(afterShortLife)
      .catch((error: unknown) => {
        // Only a bug gets here (a `backoff` that throws or gives no delay): those waiting get it, and
        // the next acquisition that asks starts the loop again.
        this.#lastError = error;
        this.#waiters.failed(error, true);
      })
      .finally(() => {
        if (this.#granting === granting) this.#granting = undefined;
      });
    this.#granting = granting;
  }

  /** The next backoff delay in ms, checked: a custom `backoff` must give a finite number >= 0. */
  #nextDelay(): number {
    this.#delay = this.#delay ? this.#delay.next(undefined) : this.#backoff.next(undefined);
    const ms: unknown = this.#delay?.duration;
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      this.#delay = undefined;
      throw new TypeError(`SessionSource: the backoff option gave a delay of ${String(ms)}; expected a finite number of milliseconds >= 0`);
    }
    return ms;
  }

  async #loop(wait: boolean): Promise<void> {
    const closed = this.#closed.signal;
    for (let first = true; !closed.aborted; first = false) {
      if (wait || !first) {
        const delay = this.#nextDelay();
        if (!first) emitSafely(this, 'retry', { error: this.#lastError, delay });
        await sleep(delay, closed).catch(() => undefined);
        if (closed.aborted) return;
      }
      try {
        const session = await Session.create(this.client, { ...this.#options, signal: closed });
        if (closed.aborted) {
          // close() came while etcd's answer was on its way: nothing is announced after close().
          await session.close();
          return;
        }
        // The loop is over before the session is announced: a listener, or a loss in the same tick,
        // that asks for the next grant must start a new loop, not find this one still running.
        this.#granting = undefined;
        this.#install(session);
        return;
      } catch (error) {
        if (closed.aborted) return; // Session.create revoked a lease granted meanwhile
        this.#lastError = error;
        // etcd answered, and said no: waiting for the next attempt cannot help those who wait now.
        const refused = !isTransientError(error) && !isLeaseLostError(error);
        // Liveness counts only a refusal a restart may cure (credentials, certificates, permissions),
        // and only while it is the latest answer: a full database or an outage after it is no reason
        // to restart every replica at once.
        this.#refused = isConfigurationRefusal(error);
        this.#waiters.failed(error, refused);
        // A TypeError or RangeError is a bug (a custom retry policy's, say), not an outage: trying
        // again cannot fix it, so the loop ends; the next acquisition that asks starts it again.
        if (error instanceof TypeError || error instanceof RangeError) return;
      }
    }
  }

  #install(session: Session): void {
    const previous = this.#session;
    const withoutSessionMs = this.#withoutSince === undefined ? 0 : performance.now() - this.#withoutSince;
    const grantedAt = performance.now();
    this.#session = session;
    this.#withoutSince = undefined;
    this.#refused = false;
    this.#lastError = undefined;
    session.signal.addEventListener('abort', () => this.#ended(session, grantedAt), { once: true });
    emitSafely(this, 'session', session, { previous, withoutSessionMs });
    if (previous) publishSessionRegranted(() => ({ lease: session.leaseHex, previous: previous.leaseHex, withoutSessionMs }));
    this.#waiters.granted(session);
  }

  #ended(session: Session, grantedAt: number): void {
    if (this.#closed.signal.aborted || this.#session !== session) return;
    this.#withoutSince = performance.now();
    emitSafely(this, 'lost', session, session.signal.reason);
    const shortLife = performance.now() - grantedAt < this.ttl * 1000;
    if (!shortLife) this.#delay = undefined;
    this.#grant(shortLife);
  }
}
