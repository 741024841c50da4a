import { LockHandle } from './handle.js';
import { acquireChannel, traced, type AcquireContext } from './diagnostics.js';
import { acquire, tryAcquire, type AcquireOptions, type AcquireParams, type Grant } from './engine/acquire.js';
import { queuePrefix } from './engine/keys.js';
import { checkFunction, signalOption } from './engine/validate.js';
import { followFirst } from './engine/observe.js';
import { firstInLine, queueState, staticInspect, type Contender, type InspectOptions, type QueueState, type StaticInspectOptions } from './engine/inspect.js';
import { sessionDefaults, type Session } from './session.js';
import type { SessionSource } from './session-source.js';
import { holding, sessionsOf, withOptions, type Sessions, type WithOptions } from './sessions.js';
import type { Namespace } from 'etcd3';

/** Options of {@link Mutex.lock}. */
export type LockOptions = AcquireOptions;

/** Options of {@link Mutex.withLock}. */
export type WithLockOptions = WithOptions;

/**
 * A distributed mutual-exclusion lock on etcd, FIFO and herd-free.
 *
 * Each acquisition writes `${name}/${leaseHex}` bound to the session's lease — the layout of Go's
 * `concurrency.Mutex` and of `etcdctl lock`, so a Go service or `etcdctl lock NAME` and this Mutex
 * exclude each other. Waiters queue by create revision and each watches only the key just ahead of
 * it, so a release wakes exactly one waiter. Names do not nest: `jobs` ignores `jobs/nightly/…`.
 * Two acquisitions of one name on one Session exclude each other too (the second waits its turn
 * locally); use one Session per independent worker if they should queue in etcd.
 *
 * @example
 * ```ts
 * const mutex = new Mutex(session, 'migrations');
 * await using lock = await mutex.lock({ signal: AbortSignal.timeout(30_000) });
 * await migrate({ signal: lock.signal, token: lock.token });
 * ```
 */
export class Mutex {
  /** The lock's name: its keys are `${name}/${leaseHex}`. */
  readonly name: string;
  /**
   * What the lock is taken on: a Session, or a SessionSource whose current Session each acquisition
   * takes. A handle's own `session` is the Session it was taken on.
   */
  readonly session: Session | SessionSource;
  readonly #sessions: Sessions;
  readonly #prefix: string;

  /**
   * A Mutex named `name` on `session` (a Session or a SessionSource). Creating it talks to nobody.
   * @throws TypeError/RangeError when `session` is neither, or `name` is not a non-empty,
   * well-formed string of at most 4096 UTF-8 bytes without NUL or a trailing "/".
   */
  constructor(session: Session | SessionSource, name: string) {
    this.#sessions = sessionsOf(session, 'Mutex');
    this.#prefix = queuePrefix(name, 'Mutex');
    this.name = name;
    this.session = session;
  }

  #params(session: Session): AcquireParams {
    return {
      session,
      ownKey: `${this.#prefix}${session.leaseHex}`,
      spec: { prefix: this.#prefix },
      where: 'Mutex.lock',
      local: true, // the key is named by the lease: two acquisitions on one session take turns
    };
  }

  /**
   * Waits until the lock is ours, in FIFO order, and returns its handle. On a SessionSource it first
   * takes the source's current Session (waiting for one while the source grants it).
   * Aborting `options.signal` deletes our queue key and rejects with `signal.reason` unchanged; if the
   * lease is lost while waiting it rejects with {@link LeaseLostError} — never with a handle whose
   * key is gone.
   */
  async lock(options?: LockOptions): Promise<LockHandle> {
    const signal = signalOption(options, 'Mutex.lock');
    return traced(acquireChannel, () => this.#context(true), signal, async () => {
      const session = await this.#sessions.current(signal);
      return this.#handle(session, await acquire(this.#params(session), options));
    }, (h) => h.token);
  }

  /**
   * Takes the lock if nobody holds or waits for it, without waiting; resolves with `null` otherwise
   * (also when another acquisition on this same Session has it). On a SessionSource without a live
   * Session it waits for the grant under way (rejecting with its error if it fails).
   */
  async tryLock(): Promise<LockHandle | null> {
    return traced(acquireChannel, () => this.#context(false), undefined, async () => {
      const session = await this.#sessions.attempt();
      const grant = await tryAcquire(this.#params(session));
      return grant && this.#handle(session, grant);
    }, (h) => h?.token);
  }

  #handle(session: Session, grant: Grant): LockHandle {
    return new LockHandle({ session, ...grant, meta: { primitive: 'mutex', name: this.name } });
  }

  #context(blocking: boolean): AcquireContext {
    return { primitive: 'mutex', name: this.name, lease: this.#sessions.peek()?.leaseHex ?? '', blocking };
  }

  /**
   * Reads who holds the lock and who waits, at one revision: `holders` has the holder (none when the
   * lock is free), `waiters` the others in the order they will get it. Works on names used by Go's
   * `concurrency.Mutex` and `etcdctl lock` (their keys are laid out as ours). A key without a lease
   * is reported with `leaseId` `'0'`: it blocks everyone behind it and never expires.
   */
  async queue(options?: InspectOptions): Promise<QueueState> {
    return queueState(this.#sessions.ops, firstInLine(this.#prefix), signalOption(options, 'Mutex.queue'));
  }

  /** Reads who holds the lock now: the first contender, or `null` when the lock is free. */
  async holder(options?: InspectOptions): Promise<Contender | null> {
    return (await this.queue(options)).holders[0] ?? null;
  }

  /** Reads who waits for the lock, in the order they will get it (the holder is not among them). */
  async waiters(options?: InspectOptions): Promise<Contender[]> {
    return (await this.queue(options)).waiters;
  }

  /**
   * Follows the lock's holder: yields the current holder (`null` while the lock is free), then every
   * change. Tokens never go back; a slow consumer gets the latest state. One watch on the lock's
   * prefix per iteration and no reads per change; a broken watch or a compaction is survived by
   * re-reading. Aborting `options.signal` ends the iteration cleanly; the session's lease plays no part.
   * @throws only a non-transient etcd error (for example a permission error); transient ones are retried.
   */
  observe(options?: InspectOptions): AsyncGenerator<Contender | null, void, undefined> {
    return followFirst(this.#sessions.ops, { prefix: this.#prefix }, signalOption(options, 'Mutex.observe'));
  }

  /**
   * Reads the queue of the lock `name` on `client` without a Session (reading needs no lease), as
   * {@link Mutex.queue} does; `options.requestTimeout` and `options.retryPolicy` are those of the read.
   * @throws TypeError/RangeError when `client`, `name` or an option is invalid, naming it.
   */
  static async queue(client: Namespace, name: string, options?: StaticInspectOptions): Promise<QueueState> {
    const prefix = queuePrefix(name, 'Mutex');
    const { ops, signal } = staticInspect(client, options, 'Mutex.queue', sessionDefaults);
    return queueState(ops, firstInLine(prefix), signal);
  }

  /**
   * Follows the holder of the lock `name` on `client` without a Session, as {@link Mutex.observe} does.
   * @throws TypeError/RangeError when `client`, `name` or an option is invalid, naming it.
   */
  static observe(client: Namespace, name: string, options?: StaticInspectOptions): AsyncGenerator<Contender | null, void, undefined> {
    const prefix = queuePrefix(name, 'Mutex');
    const { ops, signal } = staticInspect(client, options, 'Mutex.observe', sessionDefaults);
    return followFirst(ops, { prefix }, signal);
  }

  /**
   * Runs `fn` while holding the lock and releases it when `fn` settles (also when it throws).
   * `fn` gets the handle: pass `handle.signal` to the work so it stops if the lock is lost. With
   * `options.requeue` on a SessionSource, a lease lost while still waiting queues again on the next
   * Session; `fn` never runs twice.
   */
  async withLock<T>(fn: (handle: LockHandle) => Promise<T> | T, options?: WithLockOptions): Promise<T> {
    checkFunction(fn, '`fn` of Mutex.withLock');
    const { options: lockOptions, requeue } = withOptions(options, this.#sessions, 'Mutex.withLock');
    return holding(async () => this.lock(lockOptions), fn, requeue, lockOptions.signal);
  }
}
