import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { ExponentialBackoff, type IBackoff, type IBackoffFactory } from 'cockatiel';
import type { Namespace } from 'etcd3';
import { Election } from './election.js';
import type { Leadership } from './leadership.js';
import { publishLeader } from './diagnostics.js';
import { isLeaseLostError, LeaseholdError, NotLeaderError } from './errors.js';
import { emitSafely, probeHandler } from './health.js';
import { electorHealth } from './leader-health.js';
import { sleep } from './transport/abort.js';
import { maxTtl, checkClient, checkSessionOptions, timings } from './engine/session-options.js';
import { checkBackoff, checkFunction, checkInteger, checkMs, checkOptions, checkText, maxValueBytes, signalOption } from './engine/validate.js';
import { Backoff } from './transport/backoff.js';
import { queuePrefix } from './engine/keys.js';
import { sameLeader, type LeaderState } from './engine/observe.js';
import { sessionDefaults, type SessionOptions } from './session.js';
import { SessionSource } from './session-source.js';
import {
  checkSource,
  defaultTolerance,
  electorOptionNames,
  electorSessionOptionNames,
  isProgrammingError,
  leaderElectorDefaults,
  type LeaderContext,
  type LeaderElectorEvents,
  type LeaderElectorOptions,
  type LeaderElectorRunOptions,
  type LeaderHealth,
} from './leader-elector-options.js';


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
  /** The leader as reported (`leader`, `leaderChanged`). */
  #leader: LeaderState | null = null;
  /** The leader as the election's watch last saw it. */
  #observed: LeaderState | null = null;

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
   * leads, before {@link run} has read it, and while this elector has no live session: then it cannot
   * reach a quorum (it is cut off, or etcd is down), and a leader it saw may already have been replaced
   * — for a TTL at most, since its session is lost within one. Follows the election with one watch
   * while running.
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
    // Without a live session this elector cannot know who leads: it reports nobody until it has one.
    const report = (): void => this.#report();
    source.on('lost', report);
    source.on('session', report);
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
      source.off('lost', report);
      source.off('session', report);
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
    const running = this.#running !== undefined && !this.#stop.signal.aborted;
    return electorHealth({ leadership: this.#leadership, leading: this.isLeader, termEnded: this.#termEnded, source: running ? this.#source?.health() : undefined, tolerance });
  }

  /**
   * A `node:http` request handler for a liveness probe: 200 with `{"healthy":true,…}` while
   * {@link health} says healthy, else 503 with the reason, as JSON.
   */
  livenessHandler(options?: { tolerance?: number }): (req: IncomingMessage, res: ServerResponse) => void {
    this.health(options); // checks the options now
    return probeHandler(() => this.health(options), (h) => h.healthy);
  }

  /**
   * A `node:http` request handler for a readiness probe: 200 while the elector runs with a live
   * session (connected, campaigning or leading), else 503. Never tied to leadership: see {@link health}.
   */
  readinessHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return probeHandler(() => this.health(), (h) => h.ready);
  }

  /** Keeps `leader` up to date and emits `leaderChanged` until `stop` aborts. Never rejects. */
  async #watchLeader(election: Election, stop: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialDelay: 250, maxDelay: 10_000 });
    while (!stop.aborted) {
      try {
        for await (const state of election.observe({ signal: stop, vacancies: true })) {
          backoff.reset();
          this.#observed = state;
          this.#report();
        }
      } catch {
        await backoff.wait(stop).catch(() => undefined);
      }
    }
  }

  /** Reports the observed leader — or nobody, while the source has no live session — when that changed. */
  #report(): void {
    const state = this.#source?.session === undefined ? null : this.#observed;
    if (sameLeader(state, this.#leader)) return;
    this.#leader = state;
    publishLeader(() => ({ name: this.name, leader: state, self: state !== null && state.leaseId === this.#leadership?.leaseId, source: 'elector' }));
    this.#emit('leaderChanged', state);
  }
}
