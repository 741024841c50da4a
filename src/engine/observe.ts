/**
 * Following a queue (an election's leader, a lock's holders): one watch on the queue's prefix per
 * observer, and no reads on a change, so N observers cost N watches and zero extra requests per
 * handover.
 *
 * The watch is created at "now" (synced at birth); its creation response carries the revision W it
 * starts after, and the contenders are then read once *at revision W*. The snapshot at W plus every
 * event after W is the exact history, with neither a gap nor an overlap. A broken watch, a watch the
 * server cancels, or a snapshot read that hits a compaction (etcd issues 7815/7819) all lead to the
 * same answer: start over with a new watch and a new snapshot.
 *
 * Consumers get the *latest* state (states are coalesced when the consumer is slower than the
 * changes); followers of the first contender never get a term older than one already delivered.
 */
import { isBrokenCircuitError } from 'cockatiel';
import type { KeyValue, RangeResponse, WatchResponse } from '../transport/messages.js';
import { Backoff } from '../transport/backoff.js';
import type { EtcdOps, Kv } from '../transport/etcd.js';
import { keyId } from './keys.js';
import { contender, inQueueOrder, type Contender, type QueueKind } from './inspect.js';
import { counts, type QueueSpec } from './queue.js';
import { isTransientError } from '../transport/retry.js';
import { suspect, watch } from '../transport/watch-hub.js';

/** Who leads an election: the contender with the smallest create revision. */
export interface LeaderState {
  /** The leader's key (relative to the namespace), `${name}/${leaseHex}`. */
  key: string;
  /** The value the leader campaigned with or last proclaimed (UTF-8). */
  value: string;
  /** The leader key's create revision: larger for every later leader. */
  term: bigint;
  /** The lease the leader key is bound to (etcd's decimal string; `'0'` for a key without lease). */
  leaseId: string;
}

/** True for etcd's "required revision has been compacted" error. */
export function isCompacted(error: unknown): boolean {
  return error instanceof Error && /compacted/i.test(error.message);
}

/** True when two lists of contenders name the same keys, tokens and values, in the same order. */
export function sameContenders(a: readonly Contender[], b: readonly Contender[]): boolean {
  return a.length === b.length && a.every((c, i) => c.key === b[i]!.key && c.token === b[i]!.token && c.value === b[i]!.value);
}

/** The latest state, a version number, and a way to wait for the next version. */
class Latest<T> {
  state: T | undefined;
  version = 0;
  error: unknown;
  #wake: (() => void) | undefined;
  readonly #same: (a: T, b: T) => boolean;

  constructor(same: (a: T, b: T) => boolean) {
    this.#same = same;
  }

  publish(state: T): void {
    if (this.version > 0 && this.#same(this.state as T, state)) return;
    this.state = state;
    this.version++;
    this.#notify();
  }

  fail(error: unknown): void {
    this.error = error;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Resolves when there is a version newer than `seen`, an error, or `signal` aborted. */
  async changed(seen: number, signal: AbortSignal): Promise<void> {
    while (this.version <= seen && this.error === undefined && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        signal.addEventListener('abort', onAbort, { once: true });
        this.#wake = () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
      });
    }
  }
}

/** Applies a put or delete of `kv` to the contenders (keys that do not count are left out). */
function applyTo(contenders: Map<string, Kv>, ops: EtcdOps, spec: QueueSpec, kv: KeyValue, type: 'put' | 'delete'): void {
  const entry = ops.decode(kv);
  if (!counts(spec, entry.bytes)) return;
  const id = keyId(entry.bytes);
  if (type === 'delete') contenders.delete(id);
  else contenders.set(id, entry);
}

/** Whether a keys-only read finds exactly the contenders the watch made of it (same keys, same mod revisions). */
function readAgrees(contenders: Map<string, Kv>, ops: EtcdOps, spec: QueueSpec, res: RangeResponse): boolean {
  const keys = res.kvs.map((kv) => ops.decode(kv)).filter((kv) => counts(spec, kv.bytes));
  return keys.length === contenders.size && keys.every((kv) => contenders.get(keyId(kv.bytes))?.modRevision === kv.modRevision);
}

/**
 * One generation of following: a new watch, a snapshot at its start revision, then events until the
 * watch breaks (resolves) or `signal` aborts (resolves) — with whether the snapshot was read (the
 * queue confirmed at a revision). Rejects on a failed snapshot read.
 *
 * A quiet watch may be a dead one (a stream stuck on a paused or partitioned member never fires), so
 * every `ops.recheckMs` the keys are re-read (keys only) through a unary call with a deadline: when
 * that read is newer than what the watch delivered and disagrees with it, this generation ends and
 * the caller starts a new one.
 */
async function follow<T>(ops: EtcdOps, spec: QueueSpec, view: (entries: Kv[]) => T, latest: Latest<T>, signal: AbortSignal): Promise<boolean> {
  const range = ops.prefixRange(spec.prefix);
  const contenders = new Map<string, Kv>();
  const apply = (kv: KeyValue, type: 'put' | 'delete'): void => applyTo(contenders, ops, spec, kv, type);
  const publish = (): void => latest.publish(view(inQueueOrder([...contenders.values()])));
  let snapshotRead = false;
  await new Promise<void>((resolve, reject) => {
    let done = false;
    let recheck: NodeJS.Timeout | undefined;
    let startedAfter = 0n;
    /** The revision the contenders are known at: the snapshot's, then each event's. */
    let applied = 0n;
    const buffered: WatchResponse[] = [];
    const finish = (error?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(recheck);
      signal.removeEventListener('abort', onAbort);
      cancel();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = (): void => finish();
    const applyResponse = (res: WatchResponse): void => {
      for (const event of res.events) {
        const revision = event.kv.modRevision;
        if (revision <= startedAfter) continue;
        apply(event.kv, event.type);
        if (revision > applied) applied = revision;
      }
    };
    const stillLive = (): void => {
      ops.range({ ...range, keysOnly: true }, signal).then(
        (res) => {
          if (done) return;
          if (res.header.revision <= applied || readAgrees(contenders, ops, spec, res)) recheck = setTimeout(stillLive, ops.recheckMs);
          else {
            suspect(ops.transport); // the watch missed something: its stream may be stuck
            finish(); // start over
          }
        },
        () => finish(),
      );
    };
    const cancel = watch(ops.transport, range, {
      created: (revision) => {
        startedAfter = revision;
        ops.range({ ...range, revision: startedAfter }, signal).then(
          (snapshot) => {
            if (done) return;
            for (const kv of snapshot.kvs) apply(kv, 'put');
            applied = startedAfter;
            for (const held of buffered.splice(0)) applyResponse(held);
            snapshotRead = true;
            publish();
            recheck = setTimeout(stillLive, ops.recheckMs);
          },
          (error: unknown) => finish(signal.aborted ? undefined : error),
        );
      },
      events: (res) => {
        if (done) return;
        if (!snapshotRead) {
          buffered.push(res);
          return;
        }
        applyResponse(res);
        publish();
      },
      broken: () => finish(), // refused, compacted or a broken stream: start over
    });
    if (signal.aborted) finish();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return snapshotRead;
}

/**
 * Keeps `latest` up to date until `signal` aborts: follows, and on a broken watch or a compaction
 * starts over (after a short backoff when it keeps failing). A non-transient error ends it via
 * `latest.fail`. Never rejects. With `unconfirmed`, a generation that ends before it read its
 * snapshot (etcd out of reach, or a member without a leader refusing the stream or the read)
 * publishes it: what was last seen can no longer be confirmed. Not before a first snapshot was read:
 * until then nothing was seen (and a caller waiting for a first state must not take this for one).
 */
async function pump<T>(ops: EtcdOps, spec: QueueSpec, view: (entries: Kv[]) => T, latest: Latest<T>, signal: AbortSignal, unconfirmed: T | undefined): Promise<void> {
  const backoff = new Backoff();
  let seen = false;
  while (!signal.aborted) {
    const started = performance.now();
    let confirmed = false;
    try {
      confirmed = await follow(ops, spec, view, latest, signal);
      seen ||= confirmed;
      // A watch that lived a while and then broke is not a failure streak: start over at once.
      if (performance.now() - started > 5000) {
        backoff.reset();
        continue;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (isCompacted(error)) {
        backoff.reset(); // the revision moved on: the next snapshot is at a newer one
        continue;
      }
      // etcd3 opens a host's circuit breaker for 5 s after three failed calls: an outage, not an end.
      if (!isTransientError(error) && !isBrokenCircuitError(error)) {
        latest.fail(error);
        return;
      }
    }
    if (seen && !confirmed && unconfirmed !== undefined && !signal.aborted) latest.publish(unconfirmed);
    await backoff.wait(signal).catch(() => undefined);
  }
}

/**
 * The queue under `spec`, as it changes, seen through `view`: first the current view, then each
 * view that differs from the one before (by `same`). Slow consumers get the latest view. Ends
 * (returns) when `signal` aborts or the consumer stops iterating; throws only on a non-transient etcd
 * error (transient ones and compactions are retried by re-reading). With `unconfirmed`, that view is
 * yielded while a re-read fails (see `pump`).
 */
export async function* followQueue<T>(
  ops: EtcdOps,
  spec: QueueSpec,
  view: (entries: Kv[]) => T,
  same: (a: T, b: T) => boolean,
  signal: AbortSignal | undefined,
  unconfirmed?: T,
): AsyncGenerator<T, void, undefined> {
  const controller = new AbortController();
  const stop = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
  const latest = new Latest<T>(same);
  const running = pump(ops, spec, view, latest, stop, unconfirmed);
  let seen = 0;
  try {
    for (;;) {
      await latest.changed(seen, stop);
      if (stop.aborted) return;
      if (latest.error !== undefined) throw latest.error;
      seen = latest.version;
      yield latest.state as T;
    }
  } finally {
    controller.abort();
    await running;
  }
}

/**
 * The first contender of the queue under `spec` (an election's leader, a mutex's holder) as it
 * changes: first the current one (`null` when the queue is empty), then each change of key, token or
 * value. Tokens never go back: a state older than one already delivered is skipped. With
 * `unconfirmedAsNone`, `null` is also yielded while the first contender cannot be confirmed (a
 * re-read after a broken watch fails): cut off from etcd's quorum, the one last seen may have been
 * replaced — and the same one is yielded again once a re-read confirms it.
 */
export async function* followFirst(
  ops: EtcdOps,
  spec: QueueSpec,
  signal: AbortSignal | undefined,
  unconfirmedAsNone = false,
): AsyncGenerator<Contender | null, void, undefined> {
  let maxToken = -1n;
  const first = (kvs: Kv[]): Contender[] => kvs.slice(0, 1).map(contender);
  for await (const [state] of followQueue(ops, spec, first, sameContenders, signal, unconfirmedAsNone ? [] : undefined)) {
    if (state !== undefined) {
      if (state.token < maxToken) continue;
      maxToken = state.token;
    }
    yield state ?? null;
  }
}

/**
 * The holders of the queue `kind` as they change: the current holders first (empty when nobody
 * holds), then every change of them. See `followQueue`.
 */
export function followHolders<T extends Contender>(ops: EtcdOps, kind: QueueKind<T>, signal: AbortSignal | undefined): AsyncGenerator<T[], void, undefined> {
  return followQueue(ops, kind.spec, (kvs) => kind.view(kvs).holders, sameContenders, signal);
}

/** Whether two reports name the same leader (key, term and value), or both nobody. */
export function sameLeader(a: LeaderState | null, b: LeaderState | null): boolean {
  return a === null || b === null ? a === b : a.key === b.key && a.term === b.term && a.value === b.value;
}
