import type { Namespace } from 'etcd3';
import { acquireChannel, traced, type AcquireContext } from './diagnostics.js';
import { LockHandle, type HandleInit } from './handle.js';
import { acquireAll, tryAcquireAll, type GrantAll } from './engine/acquire-all.js';
import { firstInLine, queueStates, staticInspect, type Contender, type InspectOptions, type QueueKind, type StaticInspectOptions } from './engine/inspect.js';
import { queuePrefix } from './engine/keys.js';
import type { Entry } from './engine/queue-all.js';
import { checkFunction, show, signalOption } from './engine/validate.js';
import type { LockOptions, WithLockOptions } from './mutex.js';
import { sessionDefaults, type Session } from './session.js';
import type { SessionSource } from './session-source.js';
import { holding, sessionsOf, withOptions, type Sessions } from './sessions.js';
import type { EtcdOps } from './transport/etcd.js';

/**
 * The most names one MultiLock takes. etcd refuses a txn with more than `--max-txn-ops` operations
 * in a branch (128 by default), and joining reads and writes two per name, all in one txn.
 */
export const maxMultiLockNames = 64;

/** The names of a MultiLock, checked: each a valid lock name; duplicates taken once, in first-seen order. */
function checkNames(names: unknown): string[] {
  if (!Array.isArray(names)) throw new TypeError(`Expected \`names\` of MultiLock to be an array of lock names, got ${show(names)}`);
  const checked = Array.from(names as unknown[], (name, i) => {
    queuePrefix(name, `MultiLock (names[${i}])`);
    return name as string;
  });
  const unique = [...new Set(checked)];
  if (unique.length === 0) throw new TypeError('Expected `names` of MultiLock to hold at least one name, got an empty array');
  if (unique.length > maxMultiLockNames) {
    throw new RangeError(`Expected \`names\` of MultiLock to hold at most ${maxMultiLockNames} distinct names (etcd's default limit of 128 operations per txn), got ${unique.length}`);
  }
  return unique;
}

/**
 * A held {@link MultiLock}: a {@link LockHandle} over every name at once. `keys` has one key per
 * name (`${name}/${leaseHex}`, in the order of `names`) and `key` is the first of them; all share one
 * `token`, their create revision. `txn()` and `commit()` are guarded on every key, so a write lands
 * only while every lock is still held. `signal` aborts on `release()` or when the lease is lost;
 * `release()` deletes every key in one guarded txn and resolves `'already-gone'` when any key was
 * found gone (someone deleted it, so the holding had already ended).
 */
export class MultiLockHandle extends LockHandle {
  /** The names held, as the MultiLock has them (duplicates removed, first-seen order). */
  readonly names: readonly string[];
  /** One key per name, in the order of `names`; `key` is the first. */
  readonly keys: readonly string[];

  /** @internal Made by `MultiLock`. */
  constructor(init: HandleInit, names: readonly string[], keys: readonly string[]) {
    super(init);
    this.names = names;
    this.keys = Object.freeze([...keys]);
  }
}

/** One name's queue in a {@link MultiQueueState}. */
export interface NamedQueueState {
  /** The name whose queue this is. */
  name: string;
  /** Who holds the name now: at most one contender. */
  holders: Contender[];
  /** Who waits for it, in the order they will get it. */
  waiters: Contender[];
}

/** Who holds and who waits for each name of a MultiLock, all read at one revision. */
export interface MultiQueueState {
  /** The etcd revision every queue was read at. */
  revision: bigint;
  /** One entry per name, in the order of the MultiLock's `names`. */
  queues: NamedQueueState[];
}

/**
 * A lock on several names at once, all or nothing: FIFO per name, herd-free, with one fencing token
 * for all of them; deadlock-free among acquisitions that hold none of the names while they wait (code
 * that holds one name and then asks for another can deadlock with it: take such sets together).
 *
 * One txn writes one key per name, `${name}/${leaseHex}`, bound to the session's lease. That is
 * exactly a Mutex key, so a Mutex, Go's `concurrency.Mutex` or `etcdctl lock` on any one of the names
 * excludes this lock and is excluded by it. All the keys get the same create revision, so any two
 * MultiLocks that share names are in the same order on every shared name: waiting in each name's
 * queue in turn never deadlocks, with no sorting and no backing off. That revision is the `token`,
 * and writes through the handle are guarded on every key.
 *
 * On one Session a MultiLock takes the local turn of each of its keys (in one fixed order), as a
 * Mutex does for its one key: a Mutex and a MultiLock on the same Session and name take turns, and
 * two MultiLocks on one Session never wait for each other in a circle.
 *
 * @example
 * ```ts
 * import { MultiLock } from 'leasehold';
 *
 * const transfer = new MultiLock(session, ['accounts/alice', 'accounts/bob']);
 * await using locks = await transfer.lock({ signal: AbortSignal.timeout(30_000) });
 * await locks.commit(etcd.put('accounts/alice/balance').value('90'), etcd.put('accounts/bob/balance').value('110'));
 * ```
 */
export class MultiLock {
  /** The names, duplicates removed, in the order first given. */
  readonly names: readonly string[];
  /**
   * What the locks are taken on: a Session, or a SessionSource whose current Session each acquisition
   * takes. A handle's own `session` is the Session it was taken on.
   */
  readonly session: Session | SessionSource;
  readonly #sessions: Sessions;
  readonly #kinds: readonly QueueKind<Contender>[];

  /**
   * A MultiLock on `names` (each a lock name, as for a Mutex) on `session` (a Session or a
   * SessionSource). A name given twice is taken once. Creating it talks to nobody.
   * @throws TypeError/RangeError when `session` is neither, `names` is not an array of 1 to
   * {@link maxMultiLockNames} distinct valid names, or a name is invalid (naming it and its index).
   */
  constructor(session: Session | SessionSource, names: readonly string[]) {
    this.#sessions = sessionsOf(session, 'MultiLock');
    this.names = Object.freeze(checkNames(names));
    this.session = session;
    this.#kinds = this.names.map((name) => firstInLine(`${name}/`));
  }

  /** Our key in each name's queue on `session`: `${name}/${leaseHex}`, a Mutex key. */
  #entries(session: Session): Entry[] {
    return this.#kinds.map(({ spec }) => ({ key: `${spec.prefix}${session.leaseHex}`, spec }));
  }

  /**
   * Waits until every name is ours, in FIFO order on each, and returns the handle. On a SessionSource
   * it first takes the source's current Session (waiting for one while the source grants it). Aborting
   * `options.signal` deletes every key and rejects with `signal.reason` unchanged; if the lease is lost
   * while waiting it rejects with {@link LeaseLostError}; if someone deletes one of our keys while we
   * wait, with {@link NotHeldError} naming it — never with a handle while any key is gone.
   */
  async lock(options?: LockOptions): Promise<MultiLockHandle> {
    const signal = signalOption(options, 'MultiLock.lock');
    return traced(acquireChannel, () => this.#context(true), signal, async () => {
      const session = await this.#sessions.current(signal);
      const grant = await acquireAll({ session, entries: this.#entries(session), where: 'MultiLock.lock' }, options);
      return this.#handle(session, grant);
    }, (h) => h.token);
  }

  /**
   * Takes every name if nobody holds or waits for any of them, without waiting; resolves with `null`
   * otherwise (also when another acquisition on this same Session has one of them). Leaves no key.
   * On a SessionSource without a live Session it waits for the grant under way (rejecting with its
   * error if it fails).
   */
  async tryLock(): Promise<MultiLockHandle | null> {
    return traced(acquireChannel, () => this.#context(false), undefined, async () => {
      const session = await this.#sessions.attempt();
      const grant = await tryAcquireAll({ session, entries: this.#entries(session), where: 'MultiLock.tryLock' });
      return grant && this.#handle(session, grant);
    }, (h) => h?.token);
  }

  /**
   * Runs `fn` while holding every name and releases them when `fn` settles (also when it throws).
   * `fn` gets the handle: pass `handle.signal` to the work so it stops if the locks are lost. With
   * `options.requeue` on a SessionSource, a lease lost while still waiting queues again on the next
   * Session; `fn` never runs twice.
   */
  async withLock<T>(fn: (handle: MultiLockHandle) => Promise<T> | T, options?: WithLockOptions): Promise<T> {
    checkFunction(fn, '`fn` of MultiLock.withLock');
    const { options: lockOptions, requeue } = withOptions(options, this.#sessions, 'MultiLock.withLock');
    return holding(async () => this.lock(lockOptions), fn, requeue, lockOptions.signal);
  }

  /**
   * Reads who holds and who waits for each name, all at one revision (one txn). Every key is a Mutex
   * key, so holders and waiters include Mutexes, Go's and `etcdctl`'s on the same names; a MultiLock
   * shows in the queue of each of its names with the same token and lease.
   */
  async queue(options?: InspectOptions): Promise<MultiQueueState> {
    return readQueues(this.#sessions.ops, this.names, this.#kinds, signalOption(options, 'MultiLock.queue'));
  }

  /**
   * Reads the queues of the names `names` on `client` without a Session, as {@link MultiLock.queue}
   * does; `options.requestTimeout` and `options.retryPolicy` are those of the read.
   * @throws TypeError/RangeError when `client`, a name or an option is invalid, naming it.
   */
  static async queue(client: Namespace, names: readonly string[], options?: StaticInspectOptions): Promise<MultiQueueState> {
    const checked = checkNames(names);
    const { ops, signal } = staticInspect(client, options, 'MultiLock.queue', sessionDefaults);
    return readQueues(ops, checked, checked.map((name) => firstInLine(`${name}/`)), signal);
  }

  #handle(session: Session, grant: GrantAll): MultiLockHandle {
    const [first, ...rest] = this.names;
    const init: HandleInit = {
      session,
      key: grant.keys[0]!,
      token: grant.token,
      leave: grant.leave,
      meta: { primitive: 'multilock', name: first! },
      others: rest.map((name, i) => ({ name, key: grant.keys[i + 1]! })),
    };
    return new MultiLockHandle(init, this.names, grant.keys);
  }

  #context(blocking: boolean): AcquireContext {
    return { primitive: 'multilock', name: this.names.join(', '), names: [...this.names], lease: this.#sessions.peek()?.leaseHex ?? '', blocking };
  }
}

/** One read of every name's queue, each labelled with its name. */
async function readQueues(
  ops: EtcdOps,
  names: readonly string[],
  kinds: readonly QueueKind<Contender>[],
  signal: AbortSignal | undefined,
): Promise<MultiQueueState> {
  const { revision, states } = await queueStates(ops, kinds, signal);
  return { revision, queues: states.map((state, i) => ({ name: names[i]!, ...state })) };
}
