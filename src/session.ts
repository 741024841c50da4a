import type { IPolicy } from 'cockatiel';
import type { ILeaseKeepAliveResponse, Namespace } from 'etcd3';
import { LeaseLostError, SessionClosedError } from './errors.js';
import { raceSignal } from './internal/abort.js';
import { EtcdOps } from './internal/etcd.js';
import { leaseHex } from './internal/keys.js';
import { closeStream } from './internal/streams.js';
import { markSilent, openKeepAlive, type KeepAliveStream } from './internal/host-streams.js';
import { LocalQueue } from './internal/local-queue.js';
import { defaultRetryPolicy, isLeaseNotFound } from './internal/retry.js';
import { register, type SessionInternals } from './internal/session-internals.js';

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
   * @default retry of transient errors, 12 attempts, exponential backoff 25 ms … 1 s (≈ 6.5 s)
   */
  retryPolicy?: IPolicy;
  /** Aborts `Session.create` (the lease is revoked if it was granted meanwhile). */
  signal?: AbortSignal;
}

/** The defaults of {@link SessionOptions}; those that derive from the TTL are computed per session. */
export const sessionDefaults = {
  ttl: 60,
  requestTimeout: 5000,
} as const;


function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`Expected \`${name}\` to be an integer >= ${min}, got \`${String(value)}\``);
  }
  return value;
}

function checkPositive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`Expected \`${name}\` to be a positive number of milliseconds, got \`${String(value)}\``);
  }
  return value;
}

function parseLeaseId(value: unknown): string {
  if (typeof value === 'bigint' && value > 0n) return value.toString();
  if (typeof value === 'string' && /^[1-9][0-9]*$/.test(value)) return value;
  throw new TypeError(`Expected \`leaseId\` to be a positive decimal string or bigint, got \`${String(value)}\``);
}

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
  /** The lease id in lower-case hex: the suffix of this session's keys (`name/<leaseHex>`). */
  readonly leaseHex: string;
  /** The lease TTL in seconds, as granted by etcd. */
  readonly ttl: number;
  /** The etcd client (or namespace) this session's keys live in. */
  readonly client: Namespace;

  readonly #controller = new AbortController();
  readonly #ops: EtcdOps;
  readonly #interval: number;
  readonly #margin: number;
  readonly #timeout: number;
  /** How long a keep-alive may go unanswered before its stream is replaced. */
  readonly #stallMs: number;
  #deadline: number;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #intervalTimer: NodeJS.Timeout | undefined;
  /** The keep-alive stream keep-alives are sent on. */
  #current: KeepAlive | undefined;
  /** Streams replaced because they went silent, still listening for a late answer for a while. */
  readonly #retired = new Set<KeepAlive>();
  /** The last member a keep-alive stream went silent on (an opaque etcd3 host). */
  #silentHost: unknown;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #reconnects = 0;
  #closing: Promise<void> | undefined;
  readonly #cleanups = new Set<Promise<unknown>>();

  private constructor(
    client: Namespace,
    leaseId: string,
    ttl: number,
    deadline: number,
    interval: number,
    margin: number,
    timeout: number,
    policy: IPolicy,
  ) {
    this.client = client;
    this.leaseId = leaseId;
    this.leaseHex = leaseHex(leaseId);
    this.ttl = ttl;
    this.#deadline = deadline;
    this.#interval = interval;
    this.#margin = margin;
    this.#timeout = timeout;
    // Half an interval leaves the next tries time before the deadline; 250 ms keeps a tiny TTL under
    // load from giving up on answers that are merely slow (they still count when they come).
    this.#stallMs = Math.min(timeout, Math.max(interval / 2, Math.min(250, interval)));
    this.#ops = new EtcdOps(client, policy, timeout, Math.min(10_000, Math.max(1000, interval)));
    const internals: SessionInternals = {
      ops: this.#ops,
      local: new LocalQueue(),
      lost: (cause) => this.#lose(cause),
      track: (p) => this.#track(p),
      checkLease: () => this.#checkLease(),
    };
    register(this, internals);
    this.#armDeadline();
    this.#openStream();
    this.#intervalTimer = setInterval(() => this.#sendKeepAlive(), interval);
    this.#intervalTimer.unref();
  }

  /**
   * Grants a lease (or adopts `options.leaseId`) and starts keeping it alive.
   * Aborting `options.signal` rejects with its reason and revokes a lease granted meanwhile.
   * @throws TypeError when an option is invalid, naming the value.
   * @throws LeaseLostError when `options.leaseId` names a lease that does not exist, or when etcd
   * answered so late that the lease's validity had already run out (it is revoked).
   */
  static async create(client: Namespace, options: SessionOptions = {}): Promise<Session> {
    if (client === null || typeof client !== 'object' || !('leaseClient' in client)) {
      throw new TypeError(`Expected \`client\` to be an etcd3 Etcd3 or Namespace, got \`${String(client)}\``);
    }
    const merged = { ...sessionDefaults, ...options };
    const signal = merged.signal;
    signal?.throwIfAborted();
    const timeout = checkPositive('requestTimeout', merged.requestTimeout);
    const policy = merged.retryPolicy ?? defaultRetryPolicy();
    const callOptions = () => ({ deadline: Date.now() + timeout });
    let leaseId: string;
    let ttl: number;
    let remaining: number;
    const sent = performance.now();
    if (merged.leaseId !== undefined) {
      leaseId = parseLeaseId(merged.leaseId);
      const res = await raceSignal(
        policy.execute(() => client.leaseClient.leaseTimeToLive({ ID: leaseId }, callOptions()), signal),
        signal,
      );
      remaining = Number(res.TTL);
      if (remaining <= 0) throw new LeaseLostError(leaseHex(leaseId), `lease ${leaseHex(leaseId)} does not exist`);
      ttl = Number(res.grantedTTL);
    } else {
      ttl = checkInteger('ttl', merged.ttl, 1);
      remaining = ttl;
    }
    const margin =
      merged.safetyMargin === undefined ? ttl * 100 : checkNonNegative('safetyMargin', merged.safetyMargin);
    if (margin >= ttl * 1000) {
      throw new RangeError(`Expected \`safetyMargin\` to be less than the TTL (${ttl * 1000} ms), got \`${margin}\``);
    }
    const interval =
      merged.keepAliveInterval === undefined ? (ttl * 1000) / 3 : checkPositive('keepAliveInterval', merged.keepAliveInterval);
    if (interval >= ttl * 1000 - margin) {
      throw new RangeError(
        `Expected \`keepAliveInterval\` to be less than TTL − safetyMargin (${ttl * 1000 - margin} ms), got \`${interval}\``,
      );
    }
    if (merged.leaseId === undefined) {
      const grant = policy.execute(() => client.leaseClient.leaseGrant({ TTL: ttl }, callOptions()), signal);
      try {
        const res = await raceSignal(grant, signal);
        leaseId = res.ID;
        ttl = Number(res.TTL);
      } catch (error) {
        // A grant that lands after the abort must not be left to run for its whole TTL.
        grant.then(
          (res) => client.leaseClient.leaseRevoke({ ID: res.ID }, callOptions()).catch(() => undefined),
          () => undefined,
        );
        throw error;
      }
    }
    const deadline = sent + remaining * 1000 - margin;
    if (performance.now() >= deadline) {
      // The grant (or look-up) took longer than the lease can be trusted for: hand out no session
      // that is lost on arrival.
      client.leaseClient.leaseRevoke({ ID: leaseId! }, callOptions()).catch(() => undefined);
      throw new LeaseLostError(
        leaseHex(leaseId!),
        `lease ${leaseHex(leaseId!)} was granted after ${Math.round(performance.now() - sent)} ms, past its validity (TTL ${ttl} s − safetyMargin ${margin} ms); etcd is too slow or unreachable`,
      );
    }
    return new Session(client, leaseId!, ttl, deadline, interval, margin, timeout, policy);
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
   * at once and their signals abort. Idempotent; bounded by the request timeout; never rejects because
   * the lease is already gone.
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
    this.#stop(new SessionClosedError(this.leaseHex));
    await Promise.allSettled([...this.#cleanups]);
    // A lost session already revoked in the background (a tracked cleanup awaited above).
    if (wasAlive) await this.#revoke();
  }

  async #revoke(): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: this.leaseId }, { deadline: Date.now() + this.#timeout });
    } catch {
      // Gone already, or etcd unreachable: then the lease expires by itself within its TTL.
    }
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch(() => undefined).finally(() => this.#cleanups.delete(tracked));
    this.#cleanups.add(tracked);
  }

  #stop(reason: Error): void {
    clearInterval(this.#intervalTimer);
    clearTimeout(this.#deadlineTimer);
    clearTimeout(this.#reconnectTimer);
    if (this.#current) this.#closeStream(this.#current);
    for (const ka of this.#retired) this.#closeStream(ka);
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  #lose(cause?: unknown): void {
    if (this.#controller.signal.aborted) return;
    const message =
      cause === undefined
        ? `lease ${this.leaseHex} lost: no keep-alive succeeded before its validity deadline`
        : `lease ${this.leaseHex} lost: etcd reports it expired or revoked`;
    this.#stop(new LeaseLostError(this.leaseHex, message, cause === undefined ? undefined : { cause }));
    // Make the loss final on the server too, so nothing waits out the rest of the TTL for us.
    this.#track(this.#revoke());
  }

  async #checkLease(): Promise<boolean> {
    if (!this.alive) return false;
    try {
      const res = await this.client.leaseClient.leaseTimeToLive(
        { ID: this.leaseId },
        { deadline: Date.now() + this.#timeout },
      );
      if (Number(res.TTL) <= 0) {
        this.#lose(new Error('lease TTL is -1'));
        return false;
      }
      return true;
    } catch (error) {
      if (isLeaseNotFound(error)) {
        this.#lose(error);
        return false;
      }
      return this.alive;
    }
  }

  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    const wait = Math.max(0, this.#deadline - performance.now());
    this.#deadlineTimer = setTimeout(() => {
      if (performance.now() >= this.#deadline) this.#lose();
      else this.#armDeadline();
    }, wait + 1);
    // The deadline timer keeps the process alive while the session is: it is the one that reports loss.
  }

  #openStream(): void {
    if (this.#controller.signal.aborted) return;
    openKeepAlive(this.client, this.#silentHost).then(
      ({ stream, host }) => {
        if (this.#controller.signal.aborted) {
          closeStream(stream);
          return;
        }
        const ka: KeepAlive = { stream, host, pending: [], timer: undefined };
        this.#current = ka;
        stream.on('data', (res: ILeaseKeepAliveResponse) => this.#onKeepAlive(ka, res));
        stream.on('error', () => this.#streamBroken(ka));
        stream.on('end', () => this.#streamBroken(ka));
        this.#sendKeepAlive();
      },
      () => this.#scheduleReconnect(),
    );
  }

  #closeStream(ka: KeepAlive): void {
    clearTimeout(ka.timer);
    this.#retired.delete(ka);
    if (this.#current === ka) this.#current = undefined;
    closeStream(ka.stream);
  }

  /** The stream failed: replace it after a backoff. */
  #streamBroken(ka: KeepAlive): void {
    const wasCurrent = this.#current === ka;
    this.#closeStream(ka);
    if (wasCurrent) this.#scheduleReconnect();
  }

  /**
   * A keep-alive went unanswered for `#stallMs` (etcd3 issue 110; a paused or partitioned member):
   * send the next one at once on a new stream, on another member if there is one. The silent stream
   * keeps listening until `requestTimeout`: a late answer from a slow member still counts, since we
   * know when its keep-alive was sent.
   */
  #streamSilent(ka: KeepAlive): void {
    if (this.#current !== ka) return;
    this.#current = undefined;
    this.#silentHost = ka.host;
    markSilent(this.client, ka.host);
    this.#retired.add(ka);
    ka.timer = setTimeout(() => this.#closeStream(ka), this.#timeout);
    this.#scheduleReconnect(true);
  }

  #scheduleReconnect(now = false): void {
    if (this.#controller.signal.aborted || this.#reconnectTimer) return;
    const delay = now ? 0 : Math.min(this.#interval / 2, 50 * 2 ** Math.min(this.#reconnects++, 6));
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#openStream();
    }, delay);
  }

  #sendKeepAlive(): void {
    const ka = this.#current;
    if (!ka || this.#controller.signal.aborted) return;
    if (ka.pending.length > 0) return; // its stall timer decides
    ka.pending.push(performance.now());
    ka.stream.write({ ID: this.leaseId });
    clearTimeout(ka.timer);
    ka.timer = setTimeout(() => this.#streamSilent(ka), this.#stallMs);
  }

  #onKeepAlive(ka: KeepAlive, res: ILeaseKeepAliveResponse): void {
    const sent = ka.pending.shift(); // answers on one stream come in the order of the requests
    if (this.#current === ka && ka.pending.length === 0) clearTimeout(ka.timer);
    if (this.#retired.has(ka) && ka.pending.length === 0) this.#closeStream(ka);
    if (this.#controller.signal.aborted) return;
    const ttl = Number(res.TTL);
    if (ttl <= 0) {
      this.#lose(new Error(`etcd answered the keep-alive of lease ${this.leaseHex} with TTL ${res.TTL}`));
      return;
    }
    this.#reconnects = 0;
    if (this.#current === ka) this.#silentHost = undefined;
    if (sent === undefined) return;
    const deadline = sent + ttl * 1000 - this.#margin;
    if (deadline > this.#deadline) {
      this.#deadline = deadline;
      this.#armDeadline();
    }
  }
}

/** One keep-alive stream, the member it is on, and the send times of its unanswered keep-alives. */
interface KeepAlive {
  stream: KeepAliveStream;
  host: unknown;
  pending: number[];
  timer: NodeJS.Timeout | undefined;
}

function checkNonNegative(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`Expected \`${name}\` to be a number of milliseconds >= 0, got \`${String(value)}\``);
  }
  return value;
}
