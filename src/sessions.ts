/**
 * What a primitive is built on — a fixed Session or a SessionSource — seen one way: the Session an
 * acquisition starting now uses, and the calls for what needs no lease. Each acquisition asks once and
 * stays on the Session it got: its key, its handle and its losses belong to that lease.
 */
import { isLeaseLostError } from './errors.js';
import { internals } from './engine/session-internals.js';
import { checkOptions, checkSignal, show } from './engine/validate.js';
import type { EtcdOps } from './transport/etcd.js';
import type { Session } from './session.js';

/** A primitive's view of its Session or SessionSource. */
export interface Sessions {
  /** etcd calls for what needs no lease: introspection, observing, a barrier's wait. */
  readonly ops: EtcdOps;
  /** True for a SessionSource: after a loss, the next acquisition gets a new lease. */
  readonly renews: boolean;
  /** The Session an acquisition would use now: a fixed one (lost or not), a source's live one or none. */
  peek(): Session | undefined;
  /**
   * The Session for an acquisition starting now: a fixed one as it is (lost or not: the acquisition
   * then rejects with its reason), or the source's live one, waiting for a grant if it has none.
   * Rejects with `signal.reason` when `signal` aborts first.
   */
  current(signal?: AbortSignal): Promise<Session>;
  /**
   * The Session for a call that does not wait in a queue (`tryLock`, `Barrier.hold`): a fixed one as it
   * is; a source's live one, or else the one its grant under way yields — rejecting with that grant's
   * error when it fails (as `Session.create` would), rather than waiting for etcd to come back.
   */
  attempt(): Promise<Session>;
}

const sources = new WeakMap<object, Sessions>();

/** Called by SessionSource's constructor. */
export function registerSource(source: object, sessions: Sessions): void {
  sources.set(source, sessions);
}

/**
 * The view of `session` (a Session or a SessionSource) for the primitive `where`.
 * @throws TypeError naming the value when it is neither.
 */
export function sessionsOf(session: unknown, where: string): Sessions {
  const source = typeof session === 'object' && session !== null ? sources.get(session) : undefined;
  if (source) return source;
  let ops: EtcdOps;
  try {
    ops = internals(session, where).ops;
  } catch {
    throw new TypeError(`Expected \`session\` of ${where} to be a leasehold Session or SessionSource, got ${show(session)}`);
  }
  const fixed = session as Session;
  return { ops, renews: false, peek: () => fixed, current: async () => fixed, attempt: async () => fixed };
}

interface Waiting {
  resolve: (session: Session) => void;
  reject: (error: unknown) => void;
  patient: boolean;
}

/**
 * Calls waiting for a SessionSource's next session. Each resolves with the next grant; a patient one
 * (an acquisition) waits through failed grants unless etcd refused, an impatient one (a `try…` call)
 * rejects with the first failure. An aborted wait leaves at once, so a long outage gathers nothing.
 */
export class SessionWaiters {
  readonly #waiting = new Set<Waiting>();

  /** Waits for the next session; aborting `signal` rejects with its reason. */
  wait(patient: boolean, signal?: AbortSignal): Promise<Session> {
    return new Promise<Session>((resolve, reject) => {
      const onAbort = (): void => w.reject(signal!.reason);
      const done = (): void => {
        this.#waiting.delete(w);
        signal?.removeEventListener('abort', onAbort);
      };
      const w: Waiting = {
        patient,
        resolve: (session) => (done(), resolve(session)),
        reject: (error) => (done(), reject(error)),
      };
      this.#waiting.add(w);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** A session was granted: every wait resolves with it. */
  granted(session: Session): void {
    for (const w of [...this.#waiting]) w.resolve(session);
  }

  /** A grant failed: impatient waits reject with `error`, and patient ones too when etcd `refused`. */
  failed(error: unknown, refused: boolean): void {
    for (const w of [...this.#waiting]) if (refused || !w.patient) w.reject(error);
  }
}

/** Options of the `with…` helpers (`withLock`, `withPermit`, `withReadLock`, `withWriteLock`). */
export interface WithOptions {
  /** Aborting it stops waiting: the queue key is deleted and the call rejects with `signal.reason` unchanged. */
  signal?: AbortSignal;
  /**
   * On a SessionSource: when the lease is lost while still waiting (before `fn` started), queue again
   * on the source's next Session instead of rejecting with {@link LeaseLostError}. `fn` never runs
   * twice: once it has started, a lost lease aborts its handle's `signal` and the call settles as `fn`
   * does. Only for a SessionSource (a fixed Session has no next lease).
   * @default false
   */
  requeue?: boolean;
}

/**
 * Checks the options of a `with…` helper (`signal`, `requeue` and the acquisition's own `known` ones);
 * returns those of the acquisition and whether to re-queue.
 */
export function withOptions<O extends WithOptions>(
  options: O | undefined,
  sessions: Sessions,
  where: string,
  known: readonly string[] = [],
): { options: Omit<O, 'requeue'>; requeue: boolean } {
  const { requeue = false, ...rest } = checkOptions(options, where, ['signal', 'requeue', ...known]);
  checkSignal(rest.signal, where);
  if (typeof requeue !== 'boolean') throw new TypeError(`Expected \`requeue\` of ${where} to be a boolean, got ${show(requeue)}`);
  if (requeue && !sessions.renews) {
    throw new TypeError(`Option \`requeue\` of ${where} needs a SessionSource: a fixed Session has no next lease to queue on`);
  }
  return { options: rest, requeue };
}

/**
 * Takes a handle with `take`, runs `fn` with it and releases it when `fn` settles. With `requeue`,
 * an acquisition that lost its lease before `fn` started is taken again (on the next Session); `fn`
 * itself runs at most once.
 */
export async function holding<H extends { release(): Promise<unknown> }, T>(
  take: () => Promise<H>,
  fn: (handle: H) => Promise<T> | T,
  requeue: boolean,
  signal: AbortSignal | undefined,
): Promise<T> {
  let handle: H;
  for (;;) {
    try {
      handle = await take();
      break;
    } catch (error) {
      if (!requeue || !isLeaseLostError(error) || signal?.aborted) throw error;
    }
  }
  try {
    return await fn(handle);
  } finally {
    await handle.release();
  }
}
