/**
 * One gRPC watch stream per `etcd3` client, shared by every wait and every observer of every Session
 * on that client (as Go's client does), instead of a stream per wait.
 *
 * Each watcher gets a watch id of our own on the stream (etcd ≥ 3.4 takes a client-chosen
 * `watch_id`), so responses are routed without relying on the order of creations. Watchers are
 * created at "now" (start revision 0) — synced at birth, never in etcd's 100 ms catch-up loop — and
 * report their creation revision; the engine covers the gap between its read and that revision.
 *
 * Failures are per stream: when the stream ends or errors, every watcher on it is told it broke (each
 * re-reads and watches again, on a new stream). The stream is opened through the pool module,
 * preferring a member that has not gone silent, with etcd's "require leader" metadata, so a member
 * cut off from the quorum ends the stream rather than keep it quiet. A wait that finds, by a unary
 * re-read, a change its watch never reported calls {@link suspect}: the hub pings the stream with a
 * progress request, and replaces it (on another member) only when no answer comes — one late event
 * never costs every other watcher a re-read. Every new stream is pinged so too (one opened towards a
 * member the network cannot reach would otherwise wait for a connection that never comes), and so is
 * the stream whenever its member goes silent to a keep-alive or a call of the same client. With no
 * watcher left for a second, the stream is closed (ended before it is cancelled: see `closeStream`).
 */
import type { IWatchRequest, IWatchResponse, Namespace } from 'etcd3';
import { markSilent, onSilent, openWatch, poolKey, type WatchStream } from './pool.js';
import { closeStream } from './streams.js';

/** What a watcher is told. Exactly one of `broken` or the caller's cancel ends it. */
export interface WatchHandlers {
  /** The watch exists on the server from `revision` on (the creation response's header revision). */
  created(revision: bigint): void;
  /** A response with events for this watcher. */
  events(res: IWatchResponse): void;
  /** The watch is gone (stream broken or replaced, or the server cancelled it): re-read, then watch again. */
  broken(): void;
}

/** What to watch: a key or a range, from now, optionally without put (or delete) events. */
export interface WatchRange {
  key: Buffer;
  range_end?: Buffer;
  filters?: ('Noput' | 'Nodelete')[];
}

/** How long a stream without watchers stays open, for the next wait to reuse. */
const idleMs = 1000;
/** How long a progress request may go unanswered before the stream is replaced. */
const pingMs = 1000;

interface Watcher {
  handlers: WatchHandlers;
}

class Hub {
  readonly #ns: Namespace;
  #stream: WatchStream | undefined;
  #host: unknown;
  #opening: Promise<void> | undefined;
  #nextId = 1;
  readonly #watchers = new Map<string, Watcher>();
  /** Create requests waiting for the stream to open. */
  #pending: { id: string; request: IWatchRequest }[] = [];
  #idleTimer: NodeJS.Timeout | undefined;
  #ping: { timer: NodeJS.Timeout; stream: WatchStream } | undefined;
  /** Streams opened, for tests and the bench. */
  opened = 0;

  constructor(ns: Namespace) {
    this.#ns = ns;
    // The member our stream is on stopped answering a keep-alive or a call: ask the stream at once,
    // rather than wait for a watcher's periodic re-read to find out.
    onSilent(ns, (host) => {
      if (host === this.#host) this.suspect();
    });
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  watch(range: WatchRange, handlers: WatchHandlers): () => void {
    clearTimeout(this.#idleTimer);
    const id = String(this.#nextId++);
    this.#watchers.set(id, { handlers });
    const request: IWatchRequest = {
      create_request: { ...range, start_revision: 0, watch_id: id } as unknown as NonNullable<IWatchRequest['create_request']>,
    };
    if (this.#stream) this.#stream.write(request);
    else {
      this.#pending.push({ id, request });
      this.#open();
    }
    return () => this.#cancel(id);
  }

  /** A watcher saw a change its watch did not report: ping the stream, replace it if it is silent. */
  suspect(): void {
    if (this.#stream) this.#probe(this.#stream);
  }

  /** Pings `stream` with a progress request; no answer of any kind within `pingMs`: replace it. */
  #probe(stream: WatchStream): void {
    if (this.#ping?.stream === stream) return;
    const timer = setTimeout(() => {
      if (this.#ping?.stream !== stream) return;
      this.#ping = undefined;
      const host = this.#host;
      this.#drop(stream);
      markSilent(this.#ns, host);
    }, pingMs);
    timer.unref();
    this.#ping = { timer, stream };
    stream.write({ progress_request: {} } as IWatchRequest);
  }

  #cancel(id: string): void {
    if (!this.#watchers.delete(id)) return;
    const queued = this.#pending.findIndex((p) => p.id === id);
    if (queued >= 0) this.#pending.splice(queued, 1);
    else this.#stream?.write({ cancel_request: { watch_id: id } } as unknown as IWatchRequest);
    if (this.#watchers.size === 0) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = setTimeout(() => {
        if (this.#watchers.size === 0 && this.#stream) this.#drop(this.#stream);
      }, idleMs);
      this.#idleTimer.unref();
    }
  }

  #open(): void {
    if (this.#opening) return;
    this.#opening = openWatch(this.#ns).then(
      ({ stream, host }) => {
        this.#opening = undefined;
        this.opened++;
        if (this.#watchers.size === 0) {
          closeStream(stream);
          return;
        }
        this.#stream = stream;
        this.#host = host;
        stream.on('data', (res: IWatchResponse) => this.#route(stream, res));
        stream.on('error', () => this.#drop(stream));
        stream.on('end', () => this.#drop(stream));
        for (const { request } of this.#pending.splice(0)) stream.write(request);
        // A stream to a member that cannot be reached never opens and never fails (its SYNs vanish in
        // a partition): it must answer like any other.
        this.#probe(stream);
      },
      () => {
        // Could not open a stream (every member unreachable, breaker open): those waiting re-read
        // and try again after their backoff.
        this.#opening = undefined;
        for (const { id } of this.#pending.splice(0)) this.#breakOne(id);
      },
    );
  }

  #route(stream: WatchStream, res: IWatchResponse): void {
    if (stream !== this.#stream) return;
    if (this.#ping?.stream === stream) {
      // Any answer shows the stream alive; a progress answer carries watch id -1.
      clearTimeout(this.#ping.timer);
      this.#ping = undefined;
    }
    const watcher = this.#watchers.get(String(res.watch_id));
    if (!watcher) return; // cancelled by us, or a progress answer
    if (res.canceled) {
      this.#breakOne(String(res.watch_id));
      return;
    }
    if (res.created) {
      watcher.handlers.created(BigInt(res.header.revision));
      return;
    }
    if (res.events.length > 0) watcher.handlers.events(res);
  }

  #breakOne(id: string): void {
    const watcher = this.#watchers.get(id);
    if (!watcher) return;
    this.#watchers.delete(id);
    watcher.handlers.broken();
  }

  /** Closes `stream` (if it is still ours) and tells every watcher on it that it broke. */
  #drop(stream: WatchStream): void {
    if (stream !== this.#stream) return;
    this.#stream = undefined;
    if (this.#ping?.stream === stream) {
      clearTimeout(this.#ping.timer);
      this.#ping = undefined;
    }
    clearTimeout(this.#idleTimer);
    closeStream(stream);
    for (const id of [...this.#watchers.keys()]) this.#breakOne(id);
  }
}

const hubs = new WeakMap<object, Hub>();

function hubOf(ns: Namespace): Hub {
  const key = poolKey(ns);
  let hub = hubs.get(key);
  if (!hub) hubs.set(key, (hub = new Hub(ns)));
  return hub;
}

/** Watches `range` from now on the client's shared stream; returns the way to cancel the watch. */
export function watch(ns: Namespace, range: WatchRange, handlers: WatchHandlers): () => void {
  return hubOf(ns).watch(range, handlers);
}

/** Tells the client's hub that a watch seems to have missed a change (see the file comment). */
export function suspect(ns: Namespace): void {
  hubOf(ns).suspect();
}

/** How many watch streams the client's hub has opened, and how many watchers it has now (tests, bench). */
export function hubStats(ns: Namespace): { opened: number; watchers: number } {
  const hub = hubOf(ns);
  return { opened: hub.opened, watchers: hub.watchers };
}
