import { LockHandle } from './handle.js';
import { acquisitionSuffix } from './engine/acquisition-key.js';
import { resumeLeftover } from './engine/adopt.js';
import { acquireChannel, traced, type AcquireContext } from './diagnostics.js';
import { acquire, tryAcquire, type AcquireOptions, type AcquireParams, type Grant } from './engine/acquire.js';
import { isDirectChild, queuePrefix } from './engine/keys.js';
import { checkFunction, signalOption } from './engine/validate.js';
import { followHolders } from './engine/observe.js';
import { queueState, rwHolders, staticInspect, type InspectOptions, type QueueKind, type QueueState, type RwContender, type StaticInspectOptions } from './engine/inspect.js';
import { sessionDefaults, type Session } from './session.js';
import type { SessionSource } from './session-source.js';
import { holding, sessionsOf, withOptions, type Sessions, type WithOptions } from './sessions.js';
import type { Namespace } from 'etcd3';

/** Options of {@link ReadWriteLock.readLock} and {@link ReadWriteLock.writeLock}. */
export type RwLockOptions = AcquireOptions;

/** Options of {@link ReadWriteLock.withReadLock} and {@link ReadWriteLock.withWriteLock}. */
export type WithRwLockOptions = WithOptions;

/**
 * A distributed read/write lock on etcd: readers share it, a writer excludes everyone; FIFO by
 * create revision, so a stream of readers never starves a writer; herd-free.
 *
 * Keys (for the name `config`): a reader writes `config/read/<suffix>`, a writer
 * `config/write/<suffix>`, bound to the session's lease, with an empty value. `<suffix>` is
 * `${leaseHex}-${nonce}${counter}`, unique per acquisition, so two readers on one Session share the
 * lock like readers anywhere else. The create revisions of all of them form one queue:
 * - a reader waits for the last writer created before it (readers ahead of it do not block it);
 * - a writer waits for the last key of either kind created before it.
 * Each waiter watches only that one key and re-reads when it goes, so a release wakes one writer or
 * the readers directly behind it, never the whole queue. After every wait the waiter re-checks its own
 * key in the same read (etcd issue 16221: Go's RWMutex recipe let two lockers in when a waiter's lease
 * expired mid-wait; here that waiter gets {@link LeaseLostError}).
 *
 * Not re-entrant and no upgrades: taking `writeLock` while this process holds a read lock on the same
 * name waits for that read lock forever, and a read lock taken while a writer is queued waits behind
 * that writer.
 *
 * @example
 * ```ts
 * const rw = new ReadWriteLock(session, 'config');
 * {
 *   await using read = await rw.readLock();
 *   console.log(await etcd.get('config/current').string());
 * }
 * await using write = await rw.writeLock({ signal: AbortSignal.timeout(10_000) });
 * await write.commit(etcd.put('config/current').value('v2'));
 * ```
 */
export class ReadWriteLock {
  /** The lock's name: its keys are `${name}/read/<suffix>` and `${name}/write/<suffix>`. */
  readonly name: string;
  /**
   * What the lock is taken on: a Session, or a SessionSource whose current Session each acquisition
   * takes. A handle's own `session` is the Session it was taken on.
   */
  readonly session: Session | SessionSource;
  readonly #sessions: Sessions;
  readonly #prefix: string;
  readonly #readers: string;
  readonly #writers: string;
  /** Every reader and writer key, read as one queue: what blocks a writer, and who holds. */
  readonly #kind: QueueKind<RwContender>;

  /**
   * A ReadWriteLock named `name` on `session` (a Session or a SessionSource). Creating it talks to nobody.
   * @throws TypeError/RangeError when `session` is neither, or `name` is not a non-empty,
   * well-formed string of at most 4096 UTF-8 bytes without NUL or a trailing "/".
   */
  constructor(session: Session | SessionSource, name: string) {
    this.#sessions = sessionsOf(session, 'ReadWriteLock');
    this.#prefix = queuePrefix(name, 'ReadWriteLock');
    this.#readers = `${this.#prefix}read/`;
    this.#writers = `${this.#prefix}write/`;
    this.#kind = rwKind(this.#prefix);
    this.name = name;
    this.session = session;
  }

  /**
   * Waits until no writer queued before us holds or waits, then returns a shared (read) handle. On a
   * SessionSource it first takes the source's current Session (waiting for one while it grants it).
   * Aborting `options.signal` deletes our queue key and rejects with `signal.reason` unchanged; if the
   * lease is lost while waiting it rejects with {@link LeaseLostError}.
   */
  async readLock(options?: RwLockOptions): Promise<LockHandle> {
    return this.#lock('read', options, 'ReadWriteLock.readLock');
  }

  /**
   * Waits until every reader and writer queued before us has gone, then returns an exclusive (write)
   * handle; on a SessionSource, on its current Session. Aborting `options.signal` deletes our queue
   * key and rejects with `signal.reason` unchanged; if the lease is lost while waiting it rejects with
   * {@link LeaseLostError}.
   */
  async writeLock(options?: RwLockOptions): Promise<LockHandle> {
    return this.#lock('write', options, 'ReadWriteLock.writeLock');
  }

  /**
   * Takes a read lock if no writer holds or waits for the lock, without waiting; `null` otherwise. On
   * a SessionSource without a live Session it waits for the grant under way (rejecting with its error
   * if it fails).
   */
  async tryReadLock(): Promise<LockHandle | null> {
    return this.#tryLock('read', 'ReadWriteLock.tryReadLock');
  }

  /**
   * Takes the write lock if nobody holds or waits for the lock, without waiting; `null` otherwise. On
   * a SessionSource without a live Session it waits for the grant under way (rejecting with its error
   * if it fails).
   */
  async tryWriteLock(): Promise<LockHandle | null> {
    return this.#tryLock('write', 'ReadWriteLock.tryWriteLock');
  }

  async #lock(mode: 'read' | 'write', options: RwLockOptions | undefined, where: string): Promise<LockHandle> {
    const signal = signalOption(options, where);
    return this.#traced(mode, true, signal, async () => {
      const session = await this.#sessions.current(signal);
      return this.#handle(session, await acquire(await this.#params(session, mode, where), options));
    });
  }

  async #tryLock(mode: 'read' | 'write', where: string): Promise<LockHandle | null> {
    return this.#traced(mode, false, undefined, async () => {
      const session = await this.#sessions.attempt();
      const grant = await tryAcquire(await this.#params(session, mode, where));
      return grant && this.#handle(session, grant);
    });
  }

  #handle(session: Session, grant: Grant): LockHandle {
    return new LockHandle({ session, ...grant, meta: { primitive: 'rwlock', name: this.name } });
  }

  #traced<T extends LockHandle | null>(mode: 'read' | 'write', blocking: boolean, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const context = (): AcquireContext => ({ primitive: 'rwlock', name: this.name, mode, lease: this.#sessions.peek()?.leaseHex ?? '', blocking });
    return traced(acquireChannel, context, signal, fn, (h) => h?.token);
  }

  /**
   * Runs `fn` under a read lock and releases it when `fn` settles (also when it throws). With
   * `options.requeue` on a SessionSource, a lease lost while still waiting queues again on the next
   * Session; `fn` never runs twice.
   */
  async withReadLock<T>(fn: (handle: LockHandle) => Promise<T> | T, options?: WithRwLockOptions): Promise<T> {
    return this.#with('read', fn, options, 'ReadWriteLock.withReadLock');
  }

  /** Runs `fn` under the write lock and releases it when `fn` settles (also when it throws); `requeue` as for {@link withReadLock}. */
  async withWriteLock<T>(fn: (handle: LockHandle) => Promise<T> | T, options?: WithRwLockOptions): Promise<T> {
    return this.#with('write', fn, options, 'ReadWriteLock.withWriteLock');
  }

  async #with<T>(mode: 'read' | 'write', fn: (handle: LockHandle) => Promise<T> | T, options: WithRwLockOptions | undefined, where: string): Promise<T> {
    checkFunction(fn, `\`fn\` of ${where}`);
    const { options: lockOptions, requeue } = withOptions(options, this.#sessions, where);
    const take = async (): Promise<LockHandle> => (mode === 'read' ? this.readLock(lockOptions) : this.writeLock(lockOptions));
    return holding(take, fn, requeue, lockOptions.signal);
  }

  /**
   * Reads who holds the lock and who waits, at one revision: `holders` is the writer that holds it or
   * the readers that share it (none when it is free), `waiters` the rest in queue order, each with its
   * `mode`. Works on names used by Go's `recipes.RWMutex` (keys `name/read/…`, `name/write/…`).
   */
  async queue(options?: InspectOptions): Promise<QueueState<RwContender>> {
    return queueState(this.#sessions.ops, this.#kind, signalOption(options, 'ReadWriteLock.queue'));
  }

  /** Reads who holds the lock now: one writer, or the readers sharing it; empty when it is free. */
  async holders(options?: InspectOptions): Promise<RwContender[]> {
    return (await this.queue(options)).holders;
  }

  /** Reads who waits for the lock, in queue order. */
  async waiters(options?: InspectOptions): Promise<RwContender[]> {
    return (await this.queue(options)).waiters;
  }

  /**
   * Follows the lock's holders: yields the current holders (empty while the lock is free), then
   * every change of them. One watch per iteration, no reads per change; a slow consumer gets the
   * latest state. Aborting `options.signal` ends the iteration cleanly.
   * @throws only a non-transient etcd error; transient ones are retried.
   */
  observe(options?: InspectOptions): AsyncGenerator<RwContender[], void, undefined> {
    return followHolders(this.#sessions.ops, this.#kind, signalOption(options, 'ReadWriteLock.observe'));
  }

  /** Reads the queue of the lock `name` on `client` without a Session, as {@link ReadWriteLock.queue} does. */
  static async queue(client: Namespace, name: string, options?: StaticInspectOptions): Promise<QueueState<RwContender>> {
    const prefix = queuePrefix(name, 'ReadWriteLock');
    const { ops, signal } = staticInspect(client, options, 'ReadWriteLock.queue', sessionDefaults);
    return queueState(ops, rwKind(prefix), signal);
  }

  /** Follows the holders of the lock `name` on `client` without a Session, as {@link ReadWriteLock.observe} does. */
  static observe(client: Namespace, name: string, options?: StaticInspectOptions): AsyncGenerator<RwContender[], void, undefined> {
    const prefix = queuePrefix(name, 'ReadWriteLock');
    const { ops, signal } = staticInspect(client, options, 'ReadWriteLock.observe', sessionDefaults);
    return followHolders(ops, rwKind(prefix), signal);
  }

  /**
   * The acquisition's parameters on `session`. Our key: on a session that adopted its lease, the first
   * acquisition resumes a key of the same kind the lease already has under this name (see
   * `resumeLeftover`). A reader waits only for writers (the last writer created before it); a writer
   * for every reader and writer (the last key of either kind created before it).
   */
  async #params(session: Session, mode: 'read' | 'write', where: string): Promise<AcquireParams> {
    const wanted = mode === 'read' ? this.#readers : this.#writers;
    const leftover = await resumeLeftover(session, `rw:${this.#prefix}`, [this.#readers, this.#writers], (_kv, prefix) => prefix === wanted);
    const ownKey = leftover?.kv.key ?? `${wanted}${acquisitionSuffix(session.leaseHex)}`;
    return { session, ownKey, spec: mode === 'read' ? { prefix: this.#writers } : this.#kind.spec, where };
  }
}

/** Every reader and writer key of the lock under `prefix` (`${name}/`), in one queue. */
function rwKind(prefix: string): QueueKind<RwContender> {
  const readers = `${prefix}read/`;
  const writers = `${prefix}write/`;
  return {
    spec: { prefix, counts: (key) => isDirectChild(key, readers) || isDirectChild(key, writers) },
    view: (kvs) => rwHolders(kvs, writers),
  };
}
