import { campaignChannel, publishLeader, traced, type AcquireContext } from './diagnostics.js';
import { acquire, type AcquireOptions } from './engine/acquire.js';
import { takeOffice } from './engine/campaign.js';
import { isDirectChild, queuePrefix } from './engine/keys.js';
import { followFirst, type LeaderState } from './engine/observe.js';
import { firstInLine, queueState, staticInspect, staticOps, type InspectOptions, type QueueState, type StaticInspectOptions } from './engine/inspect.js';
import { checkOptions, checkSignal, show, signalOption } from './engine/validate.js';
import { NoLeaderError } from './errors.js';
import { LockHandle } from './handle.js';
import { checkValue, Leadership } from './leadership.js';
import type { EtcdOps } from './transport/etcd.js';
import { sessionDefaults, type Session } from './session.js';
import type { SessionSource } from './session-source.js';
import { sessionsOf, type Sessions } from './sessions.js';
import type { Namespace } from 'etcd3';

export type { LeaderState } from './engine/observe.js';

/** Options of {@link Election.campaign}. */
export type CampaignOptions = AcquireOptions;

/** Options of {@link Election.leader}, {@link Election.observe} and {@link Leadership.proclaim}. */
export interface ElectionCallOptions {
  /** Aborts the call: `leader()` and `proclaim()` reject with `signal.reason`; `observe()` ends. */
  signal?: AbortSignal;
}


/**
 * Leader election on etcd, FIFO and herd-free, interoperable with Go's `concurrency.Election` and
 * `etcdctl elect`.
 *
 * Each campaign writes `${name}/${leaseHex}` bound to the session's lease, with the campaign value as
 * its value; the contender with the smallest create revision leads, and that revision is its term
 * (a fencing token). Campaigners queue by create revision and each watches only the key just ahead of
 * it, so a resignation wakes exactly one campaigner. Names do not nest: `scheduler` ignores
 * `scheduler/eu/…`. Two campaigns for one name on one Session do not share a key: the second waits
 * (locally, in FIFO order) until the first leadership has ended, as with {@link Mutex}.
 *
 * @example
 * ```ts
 * const election = new Election(session, 'scheduler');
 * await using leadership = await election.campaign('pod-a', { signal: AbortSignal.timeout(60_000) });
 * await schedule({ signal: leadership.signal, term: leadership.term });
 * ```
 */
export class Election {
  /** The election's name: its keys are `${name}/${leaseHex}`. */
  readonly name: string;
  /**
   * What campaigns are made on: a Session, or a SessionSource whose current Session each campaign
   * takes. A leadership's own `session` is the Session it was won on.
   */
  readonly session: Session | SessionSource;
  readonly #prefix: string;
  readonly #sessions: Sessions;
  readonly #ops: EtcdOps;

  /**
   * An Election named `name` on `session` (a Session or a SessionSource). Creating it talks to nobody.
   * @throws TypeError when `session` is neither, or `name` is empty, not a string, or ends with "/".
   */
  constructor(session: Session | SessionSource, name: string) {
    this.#sessions = sessionsOf(session, 'Election');
    this.#ops = this.#sessions.ops;
    this.#prefix = queuePrefix(name, 'Election');
    this.name = name;
    this.session = session;
  }

  /**
   * Waits until this session leads the election, in FIFO order, and returns the {@link Leadership}.
   * On a SessionSource it first takes the source's current Session (waiting for one while it grants it).
   * Aborting `options.signal` deletes our campaign key and rejects with `signal.reason` unchanged; if
   * the lease is lost while waiting it rejects with {@link LeaseLostError} — a campaigner whose lease
   * expired in the queue is never told it leads (etcd issue 19597).
   * @throws TypeError when `value` is not a string.
   */
  async campaign(value: string, options?: CampaignOptions): Promise<Leadership> {
    checkValue(value, 'Election.campaign');
    signalOption(options, 'Election.campaign');
    const context = (): AcquireContext => ({ primitive: 'election', name: this.name, lease: this.#sessions.peek()?.leaseHex ?? '', blocking: true });
    return traced(campaignChannel, context, options?.signal, async () => this.#campaign(value, options), (l) => l.term);
  }

  async #campaign(value: string, options?: CampaignOptions): Promise<Leadership> {
    const session = await this.#sessions.current(options?.signal);
    const ops = this.#ops;
    const ownKey = `${this.#prefix}${session.leaseHex}`;
    const bytes = Buffer.from(value);
    let checkedAt = 0n;
    const grant = await acquire(
      {
        session,
        ownKey,
        spec: { prefix: this.#prefix },
        value: bytes,
        where: 'Election.campaign',
        local: true, // the key is named by the lease: two campaigns on one session take turns
        // Our turn. A key this campaign created already holds its value, verified at `turn.checkedAt`;
        // one that predates it (an adopted lease) takes office first.
        afterTurn: async (ownRevision, signal, turn) => {
          checkedAt = turn.created ? turn.checkedAt : await takeOffice(ops, ownKey, ownRevision, bytes, session.leaseId, signal);
        },
      },
      options,
    );
    const handle = new LockHandle({ session, ...grant, meta: { primitive: 'election', name: this.name } });
    return new Leadership(this, handle, value, checkedAt);
  }

  /**
   * Reads who leads the election now: the contender (a direct child of `name/`) with the smallest
   * create revision. Aborting `options.signal` rejects with its reason; the session's lease plays no
   * part (observing needs no lease).
   * @throws NoLeaderError when nobody campaigns.
   */
  async leader(options?: ElectionCallOptions): Promise<LeaderState> {
    const signal = signalOption(options, 'Election.leader');
    signal?.throwIfAborted();
    // One key is enough unless the first by create revision is a nested name: then read them all.
    for (const limit of [1, 0]) {
      const res = await this.#ops.range(
        { ...this.#ops.prefixRange(this.#prefix), sortTarget: 'create', sortOrder: 'ascend', limit },
        signal,
      );
      for (const raw of res.kvs) {
        const kv = this.#ops.decode(raw);
        if (isDirectChild(kv.bytes, this.#prefix)) {
          return { key: kv.key, value: kv.value.toString(), term: kv.createRevision, leaseId: kv.lease };
        }
      }
      if (!res.more) break;
    }
    throw new NoLeaderError(`election ${this.name} has no leader`, { election: this.name });
  }

  /**
   * Follows the election's leader: yields the current leader, then every change of leader or of its
   * proclaimed value. Terms never go back; when the consumer is slower than the changes it gets the
   * latest state (intermediate ones are skipped). While nobody leads, nothing is yielded — unless
   * `options.vacancies` is true, then `null` is. With `vacancies`, `null` also means "no leader can
   * be confirmed": after a first state, once the watch broke and a re-read fails (etcd out of reach,
   * or the member cut off from etcd's quorum — which cannot know whether the majority replaced the
   * leader), until a re-read confirms one. One watch on the election's prefix per iteration, no reads per change; a broken
   * watch or a compaction is survived by re-reading. Aborting `options.signal` ends the iteration
   * cleanly (it returns, never throws); the session's lease plays no part.
   * @throws only a non-transient etcd error (for example a permission error); transient ones are retried.
   */
  observe(options?: ObserveOptions & { vacancies?: false }): AsyncGenerator<LeaderState, void, undefined>;
  observe(options: ObserveOptions & { vacancies: true }): AsyncGenerator<LeaderState | null, void, undefined>;
  observe(options?: ObserveOptions): AsyncGenerator<LeaderState | null, void, undefined> {
    return following(this.#ops, this.name, options, 'Election.observe', () => this.#sessions.peek()?.leaseId);
  }

  /**
   * Follows the leader of the election `name` on `client` without a Session (observing needs no
   * lease), as {@link Election.observe} does; `options.requestTimeout` and `options.retryPolicy` are
   * those of the calls it makes (defaults as for a Session).
   * @throws TypeError/RangeError when `client`, `name` or an option is invalid, naming it.
   */
  static observe(client: Namespace, name: string, options?: StaticObserveOptions & { vacancies?: false }): AsyncGenerator<LeaderState, void, undefined>;
  static observe(client: Namespace, name: string, options: StaticObserveOptions & { vacancies: true }): AsyncGenerator<LeaderState | null, void, undefined>;
  static observe(client: Namespace, name: string, options?: StaticObserveOptions): AsyncGenerator<LeaderState | null, void, undefined> {
    queuePrefix(name, 'Election');
    const { ops, rest } = staticOps(client, options, 'Election.observe', observeOptionNames, sessionDefaults);
    return following(ops, name, rest, 'Election.observe', () => undefined);
  }

  /**
   * Reads the election's queue at one revision: `holders` is the leader (none when nobody
   * campaigns), `waiters` the campaigners behind it in the order they would lead. Each contender's
   * `token` is its term (its key's create revision) and `value` its campaign value. Works on names
   * used by Go's `concurrency.Election` and `etcdctl elect`.
   */
  async queue(options?: InspectOptions): Promise<QueueState> {
    return queueState(this.#ops, firstInLine(this.#prefix), signalOption(options, 'Election.queue'));
  }

  /**
   * Reads the queue of the election `name` on `client` without a Session, as {@link Election.queue}
   * does; `options.requestTimeout` and `options.retryPolicy` are those of the read.
   */
  static async queue(client: Namespace, name: string, options?: StaticInspectOptions): Promise<QueueState> {
    const prefix = queuePrefix(name, 'Election');
    const { ops, signal } = staticInspect(client, options, 'Election.queue', sessionDefaults);
    return queueState(ops, firstInLine(prefix), signal);
  }
}

const observeOptionNames = ['signal', 'vacancies'] as const;

/** Options of {@link Election.observe}. */
export interface ObserveOptions extends ElectionCallOptions {
  /** Also yield `null` while nobody leads (a vacancy), instead of nothing. @default false */
  vacancies?: boolean;
}

/** Options of the static {@link Election.observe}, which has no Session to take them from. */
export interface StaticObserveOptions extends ObserveOptions, Omit<StaticInspectOptions, 'signal'> {}

async function* following(
  ops: EtcdOps,
  name: string,
  options: ObserveOptions | undefined,
  where: string,
  selfLease: () => string | undefined,
): AsyncGenerator<LeaderState | null, void, undefined> {
  const { signal, vacancies } = checkOptions(options, where, observeOptionNames);
  checkSignal(signal, where);
  if (vacancies !== undefined && typeof vacancies !== 'boolean') {
    throw new TypeError(`Expected \`vacancies\` of ${where} to be a boolean, got ${show(vacancies)}`);
  }
  // Cut off from the quorum, the leader last seen may have been replaced: with vacancies, `null` until a
  // re-read confirms one (without, nothing: the same leader is not yielded twice).
  for await (const first of followFirst(ops, { prefix: `${name}/` }, signal, vacancies === true)) {
    const state = first && { key: first.key, value: first.value, term: first.token, leaseId: first.leaseId };
    publishLeader(() => ({ name, leader: state, self: state !== null && state.leaseId === selfLease(), source: 'observe' }));
    if (state !== null || vacancies === true) yield state;
  }
}
