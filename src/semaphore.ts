import { acquireChannel, traced, type AcquireContext } from './diagnostics.js';
import { LeaseholdError } from './errors.js';
import { LockHandle, type HandleInit } from './handle.js';
import { acquisitionSuffix } from './engine/acquisition-key.js';
import { acquire, tryAcquire, type AcquireParams } from './engine/acquire.js';
import { isDirectChild, queuePrefix } from './engine/keys.js';
import { resumeLeftover } from './engine/adopt.js';
import { removeBounded } from './engine/cleanup.js';
import { decodeRecord, encodeRecord, PermitClaim } from './engine/permits.js';
import { internals } from './engine/session-internals.js';
import { checkFunction, checkInteger, checkOptions, checkRequiredOptions, checkSignal, signalOption } from './engine/validate.js';
import { followHolders } from './engine/observe.js';
import { permitHolders, queueState, staticInspect, type InspectOptions, type PermitContender, type QueueKind, type QueueState, type StaticInspectOptions } from './engine/inspect.js';
import { sessionDefaults, type Session } from './session.js';
import type { SessionSource } from './session-source.js';
import { holding, sessionsOf, withOptions, type Sessions, type WithOptions } from './sessions.js';
import type { Namespace } from 'etcd3';

/** Options of the {@link Semaphore} constructor. */
export interface SemaphoreOptions {
  /**
   * How many permits exist in total. Every participant of one semaphore name must pass the same
   * number: one that meets another's record gets {@link PermitsMismatchError}.
   */
  permits: number;
}

/** Options of {@link Semaphore.acquire}. */
export interface PermitOptions {
  /**
   * How many permits this acquisition takes, an integer from 1 to the semaphore's `permits`.
   * @default 1
   */
  weight?: number;
  /** Aborting it stops waiting: our queue key is deleted and the call rejects with `signal.reason` unchanged. */
  signal?: AbortSignal;
}

/** Options of {@link Semaphore.tryAcquire}. */
export type TryPermitOptions = Pick<PermitOptions, 'weight'>;

/** Options of {@link Semaphore.withPermit}: those of `acquire`, and `requeue` (see {@link WithOptions}). */
export interface WithPermitOptions extends PermitOptions, Pick<WithOptions, 'requeue'> {}

/** The defaults of {@link PermitOptions}. */
export const permitDefaults = {
  /** {@link PermitOptions.weight}: an acquisition takes one permit. */
  weight: 1,
} as const;

const noop = (): void => undefined;

/**
 * Permits held on a {@link Semaphore}: a {@link LockHandle} whose `key` is the holder key
 * (`name/holders/<suffix>`) and whose `token` is that key's create revision (the revision of the
 * admission), plus the `weight` it holds.
 *
 * `signal` aborts on `release()` or when the session's lease is lost; `release()` is idempotent and
 * deletes the holder key guarded by its create revision.
 */
export class PermitHandle extends LockHandle {
  /** How many permits this handle holds. */
  readonly weight: number;
  /** The semaphore's total permits, as this participant configured and recorded them. */
  readonly permits: number;

  /** @internal Permit handles are made by `Semaphore`. */
  constructor(init: HandleInit, weight: number, permits: number) {
    super(init);
    this.weight = weight;
    this.permits = permits;
  }
}

/** Checks the options of `acquire`/`tryAcquire` and returns the weight. */
function checkWeight(options: PermitOptions | undefined, where: string, known: readonly string[], permits: number): number {
  const o = checkOptions(options, where, known);
  checkSignal(o.signal, where);
  const weight = checkInteger('weight', o.weight ?? permitDefaults.weight, 1);
  if (weight > permits) throw new RangeError(`Expected \`weight\` to be at most \`permits\` (${permits}), got \`${weight}\``);
  return weight;
}

/**
 * A distributed counting semaphore on etcd: at most `permits` permits are held at any revision, by
 * any number of processes; FIFO, herd-free, weighted.
 *
 * Keys (for the name `jobs`): a waiter writes `jobs/waiters/<suffix>`, and on admission that key is
 * replaced, in one guarded txn, by `jobs/holders/<suffix>`. Both are bound to the session's lease and
 * hold `{"permits":P,"weight":W}`. `<suffix>` is `${leaseHex}-${nonce}${counter}`, unique per
 * acquisition, so one Session may hold several permits at once. Waiters queue by create revision and
 * each watches only the waiter just ahead of it; only the head of the queue watches the holders, and
 * admits itself when `sum(weights) + weight <= permits`. A release therefore wakes one client (the
 * head) and an admission wakes one more (the new head), however many are waiting. The order is strict
 * FIFO: a heavy head blocks lighter acquisitions behind it rather than being starved by them.
 *
 * Every participant records its `permits`; meeting a different record rejects with
 * {@link PermitsMismatchError} instead of admitting more than either side allows.
 *
 * @example
 * ```ts
 * const transcodes = new Semaphore(session, 'ffmpeg', { permits: 4 });
 * await using permit = await transcodes.acquire({ signal: AbortSignal.timeout(60_000) });
 * await transcode(file, { signal: permit.signal });
 * ```
 */
export class Semaphore {
  /** The semaphore's name: its keys live under `${name}/waiters/` and `${name}/holders/`. */
  readonly name: string;
  /**
   * What permits are taken on: a Session, or a SessionSource whose current Session each acquisition
   * takes. A handle's own `session` is the Session it was taken on.
   */
  readonly session: Session | SessionSource;
  /** The total number of permits, as this participant records it. */
  readonly permits: number;
  readonly #waiters: string;
  readonly #holders: string;
  /** The semaphore's keys read as a queue (holders, then waiters). */
  readonly #kind: QueueKind<PermitContender>;
  readonly #meta: { primitive: 'semaphore'; name: string };
  readonly #sessions: Sessions;

  /**
   * A Semaphore named `name` with `options.permits` permits, on `session` (a Session or a
   * SessionSource). Creating it talks to nobody.
   * @throws TypeError when `session` is neither, `name` is empty, not a string or ends with "/", or
   * `permits` is not an integer.
   * @throws RangeError when `permits` is less than 1.
   */
  constructor(session: Session | SessionSource, name: string, options: SemaphoreOptions) {
    this.#sessions = sessionsOf(session, 'Semaphore');
    const prefix = queuePrefix(name, 'Semaphore');
    this.permits = checkInteger('permits', checkRequiredOptions(options, 'Semaphore', ['permits']).permits, 1);
    this.name = name;
    this.session = session;
    this.#waiters = `${prefix}waiters/`;
    this.#holders = `${prefix}holders/`;
    this.#kind = semaphoreKind(prefix);
    this.#meta = { primitive: 'semaphore', name };
  }

  /**
   * Waits, in FIFO order, until `weight` permits are free and returns a handle holding them. On a
   * SessionSource it first takes the source's current Session (waiting for one while it grants it).
   * Aborting `options.signal` deletes our queue key and rejects with `signal.reason` unchanged; if the
   * lease is lost while waiting it rejects with {@link LeaseLostError} — never with a handle whose key
   * is gone.
   * @throws TypeError/RangeError (synchronously checked, as a rejection) when `weight` is not an
   * integer from 1 to `permits`.
   * @throws PermitsMismatchError when a holder recorded different `permits`.
   */
  async acquire(options?: PermitOptions): Promise<PermitHandle> {
    const weight = checkWeight(options, 'Semaphore.acquire', ['weight', 'signal'], this.permits);
    return traced(acquireChannel, () => this.#context(weight, true), options?.signal, async () => this.#acquire(weight, options?.signal), (h) => h.token);
  }

  async #acquire(weight: number, signal: AbortSignal | undefined): Promise<PermitHandle> {
    const session = await this.#sessions.current(signal);
    const resumed = await this.#resume(session, weight);
    if (resumed instanceof PermitHandle) return resumed;
    const { claim, params } = this.#claim(session, weight, 'Semaphore.acquire', resumed);
    params.afterTurn = (ownRevision, turnSignal) => claim.admit(ownRevision, turnSignal);
    try {
      await acquire(params, signal === undefined ? undefined : { signal });
    } catch (error) {
      await this.#undo(session, claim);
      throw error;
    }
    return this.#permit(session, claim, weight);
  }

  /**
   * Takes `weight` permits if nobody is queued ahead and they are free now, without waiting; resolves
   * with `null` otherwise (FIFO: it never overtakes a waiter, even one that needs more permits). On a
   * SessionSource without a live Session it waits for the grant under way (rejecting with its error if
   * it fails).
   * @throws TypeError/RangeError when `weight` is not an integer from 1 to `permits`.
   * @throws PermitsMismatchError when a holder recorded different `permits`.
   */
  async tryAcquire(options?: TryPermitOptions): Promise<PermitHandle | null> {
    const weight = checkWeight(options, 'Semaphore.tryAcquire', ['weight'], this.permits);
    return traced(acquireChannel, () => this.#context(weight, false), undefined, async () => this.#tryAcquire(weight), (h) => h?.token);
  }

  #context(weight: number, blocking: boolean): AcquireContext {
    return { primitive: 'semaphore', name: this.name, permits: this.permits, weight, lease: this.#sessions.peek()?.leaseHex ?? '', blocking };
  }

  async #tryAcquire(weight: number): Promise<PermitHandle | null> {
    const session = await this.#sessions.attempt();
    const resumed = await this.#resume(session, weight);
    if (resumed instanceof PermitHandle) return resumed;
    const { claim, params } = this.#claim(session, weight, 'Semaphore.tryAcquire', resumed);
    let admitted;
    try {
      admitted = await tryAcquire(params, (ownRevision) => claim.tryAdmit(ownRevision, session.signal));
    } catch (error) {
      await this.#undo(session, claim);
      throw error;
    }
    return admitted && this.#permit(session, claim, weight);
  }

  /**
   * Runs `fn` while holding `weight` permits and releases them when `fn` settles (also when it
   * throws). `fn` gets the handle: pass `handle.signal` to the work so it stops if the lease is lost.
   * With `options.requeue` on a SessionSource, a lease lost while still waiting queues again on the
   * next Session; `fn` never runs twice.
   */
  async withPermit<T>(fn: (handle: PermitHandle) => Promise<T> | T, options?: WithPermitOptions): Promise<T> {
    checkFunction(fn, '`fn` of Semaphore.withPermit');
    const { options: permitOptions, requeue } = withOptions(options, this.#sessions, 'Semaphore.withPermit', ['weight']);
    return holding(async () => this.acquire(permitOptions), fn, requeue, permitOptions.signal);
  }

  /**
   * Reads who holds permits and who waits, at one revision: `holders` are the admitted acquisitions
   * (keys under `name/holders/`), `waiters` the queued ones in the order they will be admitted (keys
   * under `name/waiters/`), each with the `weight` and `permits` its record carries. A key whose value
   * is not a valid record (another program's) is reported with a `problem` instead, never dropped.
   */
  async queue(options?: InspectOptions): Promise<QueueState<PermitContender>> {
    return queueState(this.#sessions.ops, this.#kind, signalOption(options, 'Semaphore.queue'));
  }

  /** Reads who holds permits now, in the order they were admitted; empty when none are held. */
  async holders(options?: InspectOptions): Promise<PermitContender[]> {
    return (await this.queue(options)).holders;
  }

  /** Reads who waits for permits, in the order they will be admitted. */
  async waiters(options?: InspectOptions): Promise<PermitContender[]> {
    return (await this.queue(options)).waiters;
  }

  /**
   * Follows the semaphore's holders: yields the current holders (empty while no permit is held),
   * then every change of them. One watch per iteration, no reads per change; a slow consumer gets the
   * latest state. Aborting `options.signal` ends the iteration cleanly.
   * @throws only a non-transient etcd error; transient ones are retried.
   */
  observe(options?: InspectOptions): AsyncGenerator<PermitContender[], void, undefined> {
    return followHolders(this.#sessions.ops, this.#kind, signalOption(options, 'Semaphore.observe'));
  }

  /**
   * Reads the queue of the semaphore `name` on `client` without a Session, as {@link Semaphore.queue}
   * does (the permits come from the records, so none are passed).
   */
  static async queue(client: Namespace, name: string, options?: StaticInspectOptions): Promise<QueueState<PermitContender>> {
    const kind = semaphoreKind(queuePrefix(name, 'Semaphore'));
    const { ops, signal } = staticInspect(client, options, 'Semaphore.queue', sessionDefaults);
    return queueState(ops, kind, signal);
  }

  /** Follows the holders of the semaphore `name` on `client` without a Session, as {@link Semaphore.observe} does. */
  static observe(client: Namespace, name: string, options?: StaticInspectOptions): AsyncGenerator<PermitContender[], void, undefined> {
    const kind = semaphoreKind(queuePrefix(name, 'Semaphore'));
    const { ops, signal } = staticInspect(client, options, 'Semaphore.observe', sessionDefaults);
    return followHolders(ops, kind, signal);
  }

  /**
   * On a session that adopted its lease, the first acquisition resumes a key of the lease with this
   * weight (see `resumeLeftover`): a holder key is handed back as held, with its old token; a waiter
   * key's suffix is reused, so the acquisition goes on waiting in its place.
   */
  async #resume(session: Session, weight: number): Promise<PermitHandle | string | undefined> {
    const leftover = await resumeLeftover(session, `semaphore:${this.#waiters}`, [this.#waiters, this.#holders], (kv) => {
      const record = decodeRecord(kv.value);
      return typeof record !== 'string' && record.weight === weight && record.permits === this.permits;
    });
    if (!leftover) return undefined;
    const { kv, prefix } = leftover;
    if (prefix === this.#waiters) return kv.key.slice(prefix.length);
    return new PermitHandle({ session, key: kv.key, token: kv.createRevision, leave: noop, meta: this.#meta }, weight, this.permits);
  }

  #claim(session: Session, weight: number, where: string, resumedSuffix?: string): { claim: PermitClaim; params: AcquireParams } {
    const s = internals(session);
    const suffix = resumedSuffix ?? acquisitionSuffix(session.leaseHex);
    const record = { permits: this.permits, weight };
    const claim = new PermitClaim(s.ops, {
      name: this.name,
      holdersPrefix: this.#holders,
      waiterKey: `${this.#waiters}${suffix}`,
      holderKey: `${this.#holders}${suffix}`,
      lease: session.leaseId,
      record,
    });
    const params: AcquireParams = {
      session,
      ownKey: claim.spec.waiterKey,
      spec: { prefix: this.#waiters },
      value: encodeRecord(record),
      where,
    };
    return { claim, params };
  }

  /**
   * The handle for our holder key, once admitted. The queue's grant was for our waiter key, which the
   * admission txn already deleted: there is nothing to release for it (and no local turn to pass on).
   */
  #permit(session: Session, claim: PermitClaim, weight: number): PermitHandle {
    if (claim.admitted === undefined) throw new LeaseholdError(`${claim.spec.waiterKey}: admitted without a holder key`);
    return new PermitHandle(
      { session, key: claim.spec.holderKey, token: claim.admitted, leave: noop, meta: this.#meta },
      weight,
      this.permits,
    );
  }

  /** After a rejected acquisition: deletes a holder key an admission may have created just before. */
  async #undo(session: Session, claim: PermitClaim): Promise<void> {
    if (!claim.attempted || session.signal.aborted) return;
    await removeBounded(session, (signal) => claim.undo(signal));
  }
}

/** Holder and waiter keys of the semaphore `name` (a valid name), in one queue. */
function semaphoreKind(prefix: string): QueueKind<PermitContender> {
  const holders = `${prefix}holders/`;
  const waiters = `${prefix}waiters/`;
  return {
    spec: { prefix, counts: (key) => isDirectChild(key, holders) || isDirectChild(key, waiters) },
    view: (kvs) => permitHolders(kvs, holders),
  };
}
