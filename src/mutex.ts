import { LockHandle } from './handle.js';
import { acquireChannel, traced, type AcquireContext } from './diagnostics.js';
import { acquire, tryAcquire, type AcquireOptions, type AcquireParams, type Grant } from './engine/acquire.js';
import { queuePrefix } from './engine/keys.js';
import { internals } from './engine/session-internals.js';
import { checkFunction } from './engine/validate.js';
import type { Session } from './session.js';

/** Options of {@link Mutex.lock}. */
export type LockOptions = AcquireOptions;

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
  /** The session whose lease the lock's key is bound to. */
  readonly session: Session;
  readonly #params: AcquireParams;

  /**
   * A Mutex named `name` on `session`. Creating it talks to nobody.
   * @throws TypeError/RangeError when `session` is not a Session, or `name` is not a non-empty,
   * well-formed string of at most 4096 UTF-8 bytes without NUL or a trailing "/".
   */
  constructor(session: Session, name: string) {
    internals(session, 'Mutex');
    const prefix = queuePrefix(name, 'Mutex');
    this.name = name;
    this.session = session;
    this.#params = {
      session,
      ownKey: `${prefix}${session.leaseHex}`,
      spec: { prefix },
      where: 'Mutex.lock',
      local: true, // the key is named by the lease: two acquisitions on one session take turns
    };
  }

  /**
   * Waits until the lock is ours, in FIFO order, and returns its handle.
   * Aborting `options.signal` deletes our queue key and rejects with `signal.reason` unchanged; if the
   * lease is lost while waiting it rejects with {@link LeaseLostError} — never with a handle whose
   * key is gone.
   */
  async lock(options?: LockOptions): Promise<LockHandle> {
    return traced(acquireChannel, () => this.#context(true), options?.signal, async () => this.#handle(await acquire(this.#params, options)), (h) => h.token);
  }

  /**
   * Takes the lock if nobody holds or waits for it, without waiting; resolves with `null` otherwise
   * (also when another acquisition on this same Session has it).
   */
  async tryLock(): Promise<LockHandle | null> {
    return traced(acquireChannel, () => this.#context(false), undefined, async () => {
      const grant = await tryAcquire(this.#params);
      return grant && this.#handle(grant);
    }, (h) => h?.token);
  }

  #handle(grant: Grant): LockHandle {
    return new LockHandle({ session: this.session, ...grant, meta: { primitive: 'mutex', name: this.name } });
  }

  #context(blocking: boolean): AcquireContext {
    return { primitive: 'mutex', name: this.name, lease: this.session.leaseHex, blocking };
  }

  /**
   * Runs `fn` while holding the lock and releases it when `fn` settles (also when it throws).
   * `fn` gets the handle: pass `handle.signal` to the work so it stops if the lock is lost.
   */
  async withLock<T>(fn: (handle: LockHandle) => Promise<T> | T, options?: LockOptions): Promise<T> {
    checkFunction(fn, '`fn` of Mutex.withLock');
    const handle = await this.lock(options);
    try {
      return await fn(handle);
    } finally {
      await handle.release();
    }
  }
}
