/**
 * The live page's one watch: every key under the prefix, kept current from a single etcd watch on the
 * prefix, and the page's view rebuilt from those keys after each batch of events (no read per change).
 *
 * As the library's observers do: the watch starts at "now", its creation tells the revision W it
 * starts after, and the keys are then read once *at W* (paginated, at most `maxKeys`): the snapshot at
 * W plus every event after W is the exact history. When the watch breaks, the server cancels it, or
 * the snapshot read hits a compaction, the feed starts over with a new watch and a new snapshot —
 * and until that snapshot is in, the view says it is not live, so the page never shows stale state
 * as current. Past `maxKeys`, the view holds the first keys by name, and events for keys beyond them
 * are ignored.
 *
 * A watch on a member that is paused or cut off stays open and silent. So every `checkMs` one txn of
 * two count-only reads asks etcd how many keys are under the prefix and how many changed after the
 * revision the view is at: when that disagrees with the view twice in a row with no event delivered
 * in between (once is normal: an event on its way), or etcd does not answer within the request
 * deadline, the view is marked not live and the feed starts over.
 */
import { Backoff } from '../transport/backoff.js';
import type { EtcdOps, Kv } from '../transport/etcd.js';
import { keyId } from '../engine/keys.js';
import type { WatchResponse } from '../transport/messages.js';
import { watch } from '../transport/watch-hub.js';
import { assemble } from '../inventory/assemble.js';
import { prefixRange, readSnapshot } from '../list.js';
import { LiveModel, type LiveView } from './live-model.js';

/** The view and whether it is current. */
export interface FeedState {
  /** True while the watch is open and the keys are known: the view is current. */
  live: boolean;
  /** Why it is not live (the last error), when it is not. */
  problem?: string;
  /** The last view (kept while reconnecting, flagged not live); undefined before the first snapshot. */
  view?: LiveView;
}

/** How the feed reads. */
export interface FeedOptions {
  prefix: string;
  pageSize: number;
  maxKeys: number;
  timeline: number;
  /** How often the watch is checked against etcd (two count-only reads), in ms. */
  checkMs: number;
}

export class PrefixFeed {
  readonly #ops: EtcdOps;
  readonly #options: FeedOptions;
  readonly #model: LiveModel;
  readonly #listeners = new Set<(state: FeedState) => void>();
  readonly #stop = new AbortController();
  #state: FeedState = { live: false, problem: 'connecting to etcd' };
  #running: Promise<void> | undefined;

  constructor(ops: EtcdOps, options: FeedOptions) {
    this.#ops = ops;
    this.#options = options;
    this.#model = new LiveModel(options.timeline);
  }

  /** The current state. */
  get state(): FeedState {
    return this.#state;
  }

  /** Starts following (once). */
  start(): void {
    this.#running ??= this.#pump();
  }

  /** Calls `listener` with every new state; returns the way to stop. */
  subscribe(listener: (state: FeedState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops following and waits for the watch to end. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }

  #set(state: FeedState): void {
    this.#state = state;
    for (const listener of this.#listeners) listener(state);
  }

  async #pump(): Promise<void> {
    const backoff = new Backoff({ initialDelay: 100, maxDelay: 5000 });
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const started = performance.now();
      try {
        await this.#follow(signal);
        if (performance.now() - started > 5000) backoff.reset();
      } catch (error) {
        if (signal.aborted) return;
        this.#set({ ...this.#state, live: false, problem: error instanceof Error ? error.message : String(error) });
      }
      if (!signal.aborted && this.#state.live) this.#set({ ...this.#state, live: false, problem: 'the watch broke: reading again' });
      await backoff.wait(signal).catch(() => undefined);
    }
  }

  /**
   * Whether the watch missed a change: undefined when etcd agrees with a view of `count` keys at
   * `revision`, else why not. Rejects when etcd does not answer (within the request deadline).
   */
  async #missed(count: number, revision: bigint, truncated: boolean, signal: AbortSignal): Promise<string | undefined> {
    const ops = this.#ops;
    const range = prefixRange(ops, this.#options.prefix);
    const res = await ops.readTxn(
      {
        compare: [],
        success: [{ range: { ...range, countOnly: true } }, { range: { ...range, countOnly: true, minModRevision: revision + 1n } }],
      },
      AbortSignal.any([signal, AbortSignal.timeout(ops.requestTimeout)]),
    );
    const [all, changed] = res.responses.map((r) => Number(r.range?.count ?? 0n));
    if (changed! > 0) return `the watch missed ${changed} changes: reading again`;
    if (!truncated && all !== count) return `the watch missed a deletion (${all} keys, ${count} shown): reading again`;
    return undefined;
  }

  /**
   * Checks a generation's view against etcd every `checkMs` ({@link PrefixFeed.#missed}). A change
   * etcd has and the watch has not delivered yet is normal for a moment: it counts as missed only
   * when a second check, a moment later with no event delivered in between, still finds it — then
   * `finish` ends the generation with why; a check etcd does not answer ends it too.
   */
  #watchdog(
    view: () => { count: number; revision: bigint; truncated: boolean },
    done: () => boolean,
    finish: (error?: unknown) => void,
    signal: AbortSignal,
  ): { start: () => void; stop: () => void } {
    let timer: NodeJS.Timeout | undefined;
    let suspectAt: bigint | undefined;
    const later = (ms: number): void => {
      timer = setTimeout(() => {
        const { count, revision, truncated } = view();
        this.#missed(count, revision, truncated, signal).then(
          (missed) => {
            if (done()) return;
            if (missed === undefined) suspectAt = undefined;
            else if (suspectAt === revision) return finish(new Error(missed));
            else suspectAt = revision;
            later(suspectAt === undefined ? this.#options.checkMs : Math.min(this.#options.checkMs, 1000));
          },
          (error: unknown) => finish(signal.aborted ? undefined : error),
        );
      }, ms);
    };
    return { start: () => later(this.#options.checkMs), stop: () => clearTimeout(timer) };
  }

  /** One generation: a watch, a snapshot at its start, events until it breaks (resolves) or fails (rejects). */
  #follow(signal: AbortSignal): Promise<void> {
    const ops = this.#ops;
    const { prefix, pageSize, maxKeys } = this.#options;
    const keys = new Map<string, Kv>();
    let revision = 0n;
    let last: Buffer | undefined; // past maxKeys: the last key of the snapshot; keys after it are not shown
    let truncated = false;
    let ready = false;
    let scheduled = false;
    const buffered: WatchResponse[] = [];
    const apply = (res: WatchResponse): void => {
      for (const event of res.events) {
        const kv = ops.decode(event.kv);
        if (event.kv.modRevision <= revision) continue;
        if (event.type === 'delete') keys.delete(keyId(kv.bytes));
        else if (last === undefined || Buffer.compare(kv.bytes, last) <= 0) keys.set(keyId(kv.bytes), kv);
      }
      if (res.header.revision > revision) revision = res.header.revision;
    };
    const publish = (exact: boolean): void => {
      const listing = { prefix, revision, keys: keys.size, truncated, ...assemble([...keys.values()]) };
      this.#set({ live: true, view: this.#model.update(listing, Date.now(), exact) });
    };
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (error?: unknown): void => {
        if (done) return;
        done = true;
        check.stop();
        signal.removeEventListener('abort', onAbort);
        cancel();
        if (error === undefined) resolve();
        else reject(error);
      };
      const onAbort = (): void => finish();
      const check = this.#watchdog(() => ({ count: keys.size, revision, truncated }), () => done, finish, signal);
      const cancel = watch(ops.transport, prefixRange(ops, prefix), {
        created: (after) => {
          readSnapshot(ops, prefix, { pageSize, maxKeys, revision: after, signal }).then(
            (snapshot) => {
              if (done) return;
              for (const kv of snapshot.kvs) keys.set(keyId(kv.bytes), kv);
              revision = after;
              truncated = snapshot.truncated;
              if (truncated) last = snapshot.kvs.at(-1)?.bytes;
              for (const res of buffered.splice(0)) apply(res);
              ready = true;
              publish(false);
              check.start();
            },
            (error: unknown) => finish(signal.aborted ? undefined : error),
          );
        },
        events: (res) => {
          if (done) return;
          if (!ready) {
            buffered.push(res);
            return;
          }
          apply(res);
          // One view per burst: events that arrive in one turn of the event loop are shown together.
          if (scheduled) return;
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            if (!done) publish(true);
          });
        },
        broken: () => finish(),
      });
      if (signal.aborted) finish();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
