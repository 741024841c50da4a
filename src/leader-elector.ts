import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { ExponentialBackoff, type IBackoff, type IBackoffFactory } from 'cockatiel';
import type { Namespace } from 'etcd3';
import { Election } from './election.js';
import type { Leadership } from './leadership.js';
import { publishLeader } from './diagnostics.js';
import { isLeaseLostError, LeaseholdError, NotLeaderError } from './errors.js';
import { emitSafely, respond } from './health.js';
import { sleep } from './transport/abort.js';
import { maxTtl, checkClient, checkSessionOptions, timings } from './engine/session-options.js';
import { checkBackoff, checkFunction, checkInteger, checkMs, checkOptions, checkText, maxValueBytes, show, signalOption } from './engine/validate.js';
import { Backoff } from './transport/backoff.js';
import { queuePrefix } from './engine/keys.js';
import type { LeaderState } from './engine/observe.js';
import { sessionDefaults, type Session, type SessionOptions } from './session.js';
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
const defaultTolerance = 10_000;

const electorOptionNames = ['identity', 'ttl', 'backoff', 'stopTimeout', 'recampaignDelay', 'session', 'source'] as const;
const electorSessionOptionNames = ['keepAliveInterval', 'safetyMargin', 'requestTimeout', 'retryPolicy'] as const;

/** A programming error (bad input) is never retried: retrying cannot fix it. */
function isProgrammingError(error: unknown): boolean {
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
  /** The election's leader (anyone's) changed: the new leader, or `null` while nobody leads. */
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

/**
 * The Kubernetes-style leader-election loop: campaign, run a callback while leading, resign, and
 * campaign again — after a lost lease, a failed campaign or a callback that threw — until stopped.
 *
 * Each term runs the callback with a `signal` that aborts when the term ends (lease lost, key deleted,
 * `stop()`); the elector waits for the callback to return before it campaigns again, so one process
 * never runs two terms at once. `stop()` aborts the callback's signal, resigns as soon as the callback
 * returns (one round trip to the next leader, not a TTL) and closes the session. Unlike client-go's
 * one-shot `Run`, losing leadership never ends the loop: only `stop()` does.
 *
 * @example
 * ```ts
 * const elector = new LeaderElector(etcd, 'scheduler', { identity: process.env['HOSTNAME'], ttl: 10 });
 * process.once('SIGTERM', () => void elector.stop());
 * await elector.run(async ({ signal, term }) => {
 *   await schedule({ signal, fencingToken: term });
 * });
 * ```
 */
export class LeaderElector extends EventEmitter<LeaderElectorEvents> implements AsyncDisposable {
  /** The election's name: campaign keys are `${name}/${leaseHex}`. */
  readonly name: string;
  /** The value this candidate campaigns with. */
  readonly identity: string;
  /** The lease TTL of each session, in seconds. */
  readonly ttl: number;

  readonly #client: Namespace;
  readonly #backoff: IBackoffFactory<unknown>;
  readonly #stopTimeout: number;
  readonly #recampaignDelay: number;
  readonly #sessionOptions: Omit<SessionOptions, 'ttl' | 'leaseId' | 'signal'>;
  /** The user's SessionSource (`options.source`); else `run()` makes one of its own. */
  readonly #userSource: SessionSource | undefined;
  readonly #stop = new AbortController();
  #running: Promise<void> | undefined;
  #leadership: Leadership | undefined;
  /** The SessionSource campaigns are made on, while running (for readiness and health). */
  #source: SessionSource | undefined;
  /** When the current term ended (lost, or stop()) while its callback still runs. */
  #termEnded: { at: number; reason: unknown } | undefined;
  #leader: LeaderState | null = null;

  /**
   * A candidate for the election `name`. Creating it talks to nobody; {@link run} starts it.
   * @throws TypeError when `client`, `name` or an option is invalid, naming the value.
   */
  constructor(client: Namespace, name: string, options?: LeaderElectorOptions) {
    super();
    checkClient(client, 'LeaderElector');
    queuePrefix(name, 'LeaderElector');
    const given = checkOptions(options, 'LeaderElector', electorOptionNames);
    const merged = { ...leaderElectorDefaults, ...given };
    // `identity: process.env['HOSTNAME']` is the common Kubernetes wiring: undefined means the default.
    merged.identity ??= `${hostname()}-${process.pid}`;
    this.identity = checkText(merged.identity, '`identity`', maxValueBytes);
    this.#userSource = checkSource(given, client);
    this.ttl = this.#userSource?.ttl ?? checkInteger('ttl', merged.ttl, 1, maxTtl);
    this.#stopTimeout = checkMs('stopTimeout', merged.stopTimeout, true);
    this.#recampaignDelay = checkMs('recampaignDelay', merged.recampaignDelay, true);
    this.#backoff = checkBackoff(merged.backoff, () => new ExponentialBackoff({ initialDelay: 250, maxDelay: 10_000 }));
    // The sessions' options, checked now and against this TTL: a bad one must not become a retry loop.
    const sessionOptions = checkOptions(merged.session, 'the `session` option of LeaderElector', electorSessionOptionNames);
    timings(this.ttl, checkSessionOptions({ ...sessionOptions, ttl: this.ttl }, 'LeaderElector', sessionDefaults));
    this.#sessionOptions = sessionOptions;
    this.#client = client;
    this.name = name;
  }

  /**
   * True while this candidate leads: elected, and its term has not ended. Not for readiness probes
   * (a readiness that waits for leadership deadlocks a rolling update): see {@link health}.
   */
  get isLeader(): boolean {
    return this.#leadership?.isLeader ?? false;
  }

  /**
   * The election's current leader as last observed (this candidate or another), `null` while nobody
   * leads or before {@link run} has read it. Follows the election with one watch while running.
   */
  get leader(): LeaderState | null {
    return this.#leader;
  }

  /** The current leadership while this candidate leads, otherwise `undefined`. */
  get leadership(): Leadership | undefined {
    return this.isLeader ? this.#leadership : undefined;
  }

  /**
   * Campaigns and runs `fn` for every term this candidate wins, until {@link stop}. Resolves when the
   * loop has ended after `stop()`; aborting `options.signal` stops it the same way and then rejects
   * with `signal.reason`. Lease loss is never an error here: `fn`'s signal aborts, and after `fn`
   * returns the elector campaigns again on the SessionSource's next session.
   * @throws TypeError when `fn` is not a function. Error when already running or already stopped.
   */
  async run(fn: (context: LeaderContext) => Promise<void> | void, options?: LeaderElectorRunOptions): Promise<void> {
    checkFunction(fn, '`fn` of LeaderElector.run');
    const signal = signalOption(options, 'LeaderElector.run');
    if (this.#stop.signal.aborted) throw new TypeError(`LeaderElector ${this.name} is stopped; create a new one`);
    if (this.#running) throw new TypeError(`LeaderElector ${this.name} is already running`);
    const onAbort = (): void => void this.stop();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) onAbort();
    this.#running = this.#loop(fn);
    try {
      await this.#running;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) throw signal.reason;
  }

  /**
   * Stops the elector: aborts the running callback's signal, resigns as soon as the callback has
   * returned (at most `stopTimeout` later), closes its own SessionSource (not one passed as
   * `options.source`), and resolves when the loop has ended
   * (after the callback has returned). Idempotent; a stopped elector stays stopped.
   */
  stop(): Promise<void> {
    if (!this.#stop.signal.aborted) this.#stop.abort(new LeaseholdError(`LeaderElector ${this.name} stopped`));
    return (this.#running ?? Promise.resolve()).catch(() => undefined);
  }

  /** Calls {@link stop}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  #emit<K extends keyof LeaderElectorEvents>(event: K, ...args: LeaderElectorEvents[K]): void {
    emitSafely(this, event, ...args);
  }

  async #loop(fn: (context: LeaderContext) => Promise<void> | void): Promise<void> {
    const stop = this.#stop.signal;
    const own = this.#userSource === undefined;
    const source = this.#userSource ?? new SessionSource(this.#client, { ...this.#sessionOptions, ttl: this.ttl, backoff: this.#backoff });
    const forward = (info: { error: unknown; delay: number }): void => this.#emit('retry', info);
    if (own) source.on('retry', forward);
    this.#source = source;
    const election = new Election(source, this.name);
    const watching = this.#watchLeader(election, stop);
    let backoff: IBackoff<unknown> | undefined;
    const fail = async (error: unknown): Promise<void> => {
      if (stop.aborted) return;
      // A lost lease: campaign again at once; the campaign waits for the source's next session.
      if (isLeaseLostError(error)) return this.#emit('retry', { error, delay: 0 });
      backoff = backoff ? backoff.next(undefined) : this.#backoff.next(undefined);
      this.#emit('retry', { error, delay: backoff.duration });
      await sleep(backoff.duration, stop).catch(() => undefined);
    };
    try {
      while (!stop.aborted) {
        let leadership: Leadership;
        try {
          leadership = await election.campaign(this.identity, { signal: stop });
        } catch (error) {
          // Bad input (a TypeError or RangeError) cannot be fixed by trying again: run() rejects with it.
          if (isProgrammingError(error) && !stop.aborted) throw error;
          await fail(error);
          continue;
        }
        const started = performance.now();
        const outcome = await this.#term(leadership, fn);
        // A term that returned normally, or lasted a TTL, ends a streak of failures.
        if (!(outcome.threw || outcome.lost) || performance.now() - started >= this.ttl * 1000) backoff = undefined;
        if (outcome.threw || outcome.lost) await fail(outcome.error);
        // The callback returned by itself: leave others a chance rather than re-campaign in a tight loop.
        else if (!stop.aborted) await sleep(this.#recampaignDelay, stop).catch(() => undefined);
      }
    } finally {
      // Also after a programming error: the elector is stopped for good, and the leader watch ends.
      if (!stop.aborted) this.#stop.abort(new LeaseholdError(`LeaderElector ${this.name} stopped after an error`));
      source.off('retry', forward);
      if (own) await source.close();
      await watching;
    }
  }

  /** One term: run the callback, resign when it returns (or on stop), wait for it to finish. */
  async #term(
    leadership: Leadership,
    fn: (context: LeaderContext) => Promise<void> | void,
  ): Promise<{ threw: boolean; lost: boolean; error?: unknown }> {
    const stop = this.#stop.signal;
    const controller = new AbortController();
    const endTerm = (reason: unknown): void => {
      if (controller.signal.aborted) return;
      this.#termEnded = { at: performance.now(), reason };
      controller.abort(reason);
    };
    const onLost = (): void => {
      this.#emit('demoted', { term: leadership.term, reason: leadership.signal.reason });
      endTerm(leadership.signal.reason);
    };
    const onStop = (): void =>
      endTerm(
        new NotLeaderError(`${leadership.key} (term ${leadership.term}) is resigning: LeaderElector stopped`, {
          key: leadership.key,
          cause: stop.reason,
        }),
      );
    this.#leadership = leadership;
    this.#emit('elected', {
      term: leadership.term,
      key: leadership.key,
      leaseId: leadership.leaseId,
      identity: this.identity,
    });
    leadership.signal.addEventListener('abort', onLost, { once: true });
    stop.addEventListener('abort', onStop, { once: true });
    if (leadership.signal.aborted) onLost();
    if (stop.aborted) onStop();
    let threw = false;
    let error: unknown;
    const running = (async () => fn({ signal: controller.signal, term: leadership.term, leadership, session: leadership.session }))().then(
      () => undefined,
      (e: unknown) => {
        threw = true;
        error = e;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const stopGrace = new Promise<void>((resolve) => {
      const arm = (): void => {
        timer = setTimeout(resolve, this.#stopTimeout);
      };
      if (stop.aborted) arm();
      else stop.addEventListener('abort', arm, { once: true });
      void running.then(() => stop.removeEventListener('abort', arm));
    });
    try {
      await Promise.race([running, stopGrace]);
      // Ended by itself (lease lost, key deleted) rather than by our resignation below?
      const lost = leadership.signal.aborted;
      await leadership.resign().catch(() => undefined);
      await running;
      return { threw, lost: lost && !stop.aborted, error: threw ? error : leadership.signal.reason };
    } finally {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
      leadership.signal.removeEventListener('abort', onLost);
      if (this.#leadership === leadership) {
        this.#leadership = undefined;
        this.#termEnded = undefined;
      }
    }
  }

  /**
   * Whether this elector is healthy and ready, in the spirit of client-go's `HealthzAdaptor`.
   *
   * - `healthy` is false when this process still acts as leader although it should not: a term ended
   *   (lease lost, key deleted, `stop()`) more than `tolerance` ms ago and its callback has not
   *   returned (it ignores its `signal`: a leader that should have stopped but is stuck), or it leads
   *   but its session's validity ran out more than `tolerance` ms ago (its timers are starved); and
   *   when its SessionSource is not live (no session for longer than its `livenessGrace` although etcd
   *   answers: see `SessionSource.health`). Wire it to a liveness probe: restarting such a process is
   *   the cure. An etcd that cannot be reached never makes it unhealthy. (A blocked event loop cannot
   *   answer a probe at all: the probe's timeout catches that.)
   * - `ready` is true while the elector runs and its SessionSource has a live session — connected and
   *   campaigning or leading. Never "is leader": a readiness probe that waits for leadership deadlocks
   *   a rolling update (the new pod never becomes ready, so the old leader is never replaced).
   * @param options.tolerance - ms, @default 10_000
   */
  health(options?: { tolerance?: number }): LeaderHealth {
    const { tolerance = defaultTolerance } = checkOptions(options, 'LeaderElector.health', ['tolerance']);
    checkMs('tolerance', tolerance, true);
    const now = performance.now();
    const leadership = this.#leadership;
    const running = this.#running !== undefined && !this.#stop.signal.aborted;
    const source = running ? this.#source?.health() : undefined;
    const base = { ready: source?.ready === true, leading: this.isLeader, ...(leadership ? { term: leadership.term } : {}) };
    const ended = this.#termEnded;
    if (leadership && ended && now - ended.at > tolerance) {
      const why = ended.reason instanceof Error ? ended.reason.message : String(ended.reason);
      return { ...base, healthy: false, reason: `term ${leadership.term} ended ${Math.round(now - ended.at)} ms ago (${why}) but its callback has not returned: it ignores its signal` };
    }
    const deadline = leadership?.session.deadline ?? now;
    if (leadership && !leadership.signal.aborted && now - deadline > tolerance) {
      return { ...base, healthy: false, reason: `leading term ${leadership.term} although the session's validity ran out ${Math.round(now - deadline)} ms ago` };
    }
    if (source && !source.live) return { ...base, healthy: false, reason: source.reason ?? 'its SessionSource is not live' };
    return { ...base, healthy: true };
  }

  /**
   * A `node:http` request handler for a liveness probe: 200 with `{"healthy":true,…}` while
   * {@link health} says healthy, else 503 with the reason, as JSON.
   */
  livenessHandler(options?: { tolerance?: number }): (req: IncomingMessage, res: ServerResponse) => void {
    this.health(options); // checks the options now
    return (_req, res) => {
      const h = this.health(options);
      respond(res, h.healthy ? 200 : 503, h);
    };
  }

  /**
   * A `node:http` request handler for a readiness probe: 200 while the elector runs with a live
   * session (connected, campaigning or leading), else 503. Never tied to leadership: see {@link health}.
   */
  readinessHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      const h = this.health();
      respond(res, h.ready ? 200 : 503, h);
    };
  }

  /** Keeps `leader` up to date and emits `leaderChanged` until `stop` aborts. Never rejects. */
  async #watchLeader(election: Election, stop: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialDelay: 250, maxDelay: 10_000 });
    while (!stop.aborted) {
      try {
        for await (const state of election.observe({ signal: stop, vacancies: true })) {
          backoff.reset();
          this.#leader = state;
          publishLeader(() => ({ name: this.name, leader: state, self: state !== null && state.leaseId === this.#leadership?.leaseId, source: 'elector' }));
          this.#emit('leaderChanged', state);
        }
      } catch {
        await backoff.wait(stop).catch(() => undefined);
      }
    }
  }
}

/** `options.source` of LeaderElector, checked: a SessionSource on `client`, without `ttl` or `session`. */
function checkSource(options: LeaderElectorOptions, client: Namespace): SessionSource | undefined {
  const { source } = options;
  if (source === undefined) return undefined;
  if (!(source instanceof SessionSource)) throw new TypeError(`Expected \`source\` of LeaderElector to be a SessionSource, got ${show(source)}`);
  if (options.ttl !== undefined || options.session !== undefined) {
    throw new TypeError('Options `ttl` and `session` of LeaderElector exclude `source`: the source grants the sessions, with its own');
  }
  if (source.client !== client) throw new TypeError('Expected `source` of LeaderElector to be on the elector\'s own `client` (its campaign keys and the leader watch must share a keyspace)');
  return source;
}
