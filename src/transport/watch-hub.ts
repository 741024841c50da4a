/**
 * One watch stream per client (per transport), shared by every wait and every observer of every
 * Session on that client (as Go's client does), instead of a stream per wait.
 *
 * Each watcher gets a watch id of our own on the stream (etcd ≥ 3.4 takes a client-chosen
 * `watch_id`), so responses are routed without relying on the order of creations. Watchers are
 * created at "now" (start revision 0) — synced at birth, never in etcd's 100 ms catch-up loop — and
 * report their creation revision; the engine covers the gap between its read and that revision. A
 * creation etcd refuses (permission denied, a bad range) is answered with watch id -1, which names no
 * watcher: etcd answers creations in the order they were sent, so it is the oldest creation not yet
 * answered that broke (its waiter re-reads, and the read reports the refusal).
 *
 * Failures are per stream: when the stream ends, every watcher on it is told it broke (each re-reads
 * and watches again, on a new stream). Streams carry etcd's "require leader" metadata, so a member
 * cut off from the quorum ends the stream rather than keep it quiet. A wait that finds, by a unary
 * re-read, a change its watch never reported calls {@link suspect}: the hub pings the stream with a
 * progress request, and replaces it (on another member) only when no answer comes — one late event
 * never costs every other watcher a re-read. Every new stream is pinged so too (one opened towards a
 * member the network cannot reach would otherwise wait for a connection that never comes), and so is
 * the stream whenever its member goes silent to a keep-alive or a call of the same client. With no
 * watcher left for a second, the stream is closed.
 *
 * Only an answer to a request of ours shows the stream alive: the progress request's own answer, or a
 * creation's. Events do not: when the network loses our requests but not the member's answers (a
 * one-way loss), events of watches created before keep arriving — and so do those of watches whose
 * cancel was lost — while no creation and no progress request reaches the member. So a creation or a
 * progress request unanswered for a second replaces the stream and marks its member silent, and only
 * such answers tell the member choice that the member answered (an adapter counts none of a stream's
 * messages itself).
 */
import type { WatchCreateRequest, WatchResponse } from './messages.js';
import type { EtcdTransport, Stream } from './port.js';
import type { WatchRequest } from './messages.js';

/** What a watcher is told. Exactly one of `broken` or the caller's cancel ends it. */
export interface WatchHandlers {
  /** The watch exists on the server from `revision` on (the creation response's header revision). */
  created(revision: bigint): void;
  /** A response with events for this watcher. */
  events(res: WatchResponse): void;
  /** The watch is gone (stream broken or replaced, or the server cancelled it): re-read, then watch again. */
  broken(): void;
}

/** What to watch: a key or a range, from now, optionally without put (or delete) events. */
export type WatchRange = Pick<WatchCreateRequest, 'key' | 'rangeEnd' | 'filters'>;

/** How long a stream without watchers stays open, for the next wait to reuse. */
const idleMs = 1000;
/** How long a creation or a progress request may go unanswered before the stream is replaced. */
const pingMs = 1000;

class Hub {
  readonly #transport: EtcdTransport;
  #stream: Stream<WatchRequest> | undefined;
  #opening = false;
  #nextId = 1;
  readonly #watchers = new Map<number, WatchHandlers>();
  /** Create requests waiting for the stream to open. */
  #pending: WatchCreateRequest[] = [];
  /** Creations sent on the current stream and not yet answered (watch id, when sent), oldest first. */
  #unanswered: { watchId: number; sentAt: number }[] = [];
  /** When the progress request not yet answered on the current stream was sent. */
  #pingSentAt: number | undefined;
  /** Checks, once the oldest unanswered request is `pingMs` old, that it was answered. */
  #answerTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Streams opened, for tests and the bench. */
  opened = 0;

  constructor(transport: EtcdTransport) {
    this.#transport = transport;
    // The member our stream is on stopped answering a keep-alive or a call: ask the stream at once,
    // rather than wait for a watcher's periodic re-read to find out.
    transport.onSilent((member) => {
      if (this.#stream && member === this.#stream.member) this.suspect();
    });
  }

  get watchers(): number {
    return this.#watchers.size;
  }

  watch(range: WatchRange, handlers: WatchHandlers): () => void {
    clearTimeout(this.#idleTimer);
    const watchId = this.#nextId++;
    this.#watchers.set(watchId, handlers);
    const create: WatchCreateRequest = { ...range, startRevision: 0n, watchId };
    if (this.#stream) this.#create(this.#stream, create);
    else {
      this.#pending.push(create);
      this.#open();
    }
    return () => this.#cancel(watchId);
  }

  /** A watcher saw a change its watch did not report: ping the stream, replace it if it is silent. */
  suspect(): void {
    if (this.#stream) this.#probe(this.#stream);
  }

  #create(stream: Stream<WatchRequest>, create: WatchCreateRequest): void {
    this.#unanswered.push({ watchId: create.watchId, sentAt: performance.now() });
    stream.send({ create });
    this.#expectAnswers(stream);
  }

  /** Pings `stream` (the current one) with a progress request, unless one is unanswered already. */
  #probe(stream: Stream<WatchRequest>): void {
    if (this.#pingSentAt !== undefined) return;
    this.#pingSentAt = performance.now();
    stream.send({ progress: true });
    this.#expectAnswers(stream);
  }

  /** Arms the check of `stream`'s unanswered requests, unless it is armed. */
  #expectAnswers(stream: Stream<WatchRequest>, afterMs = pingMs): void {
    if (this.#answerTimer) return;
    // The verdict waits one more turn (setImmediate runs after the loop has read its sockets): after
    // the process was busy for a second, timers run before the answers already received are read.
    this.#answerTimer = setTimeout(() => setImmediate(() => this.#judge(stream)).unref(), afterMs);
    this.#answerTimer.unref();
  }

  /** Replaces `stream` if a request of ours on it has waited `pingMs` for its answer; else checks again later. */
  #judge(stream: Stream<WatchRequest>): void {
    this.#answerTimer = undefined;
    if (stream !== this.#stream) return;
    const oldest = Math.min(this.#pingSentAt ?? Infinity, this.#unanswered[0]?.sentAt ?? Infinity);
    if (oldest === Infinity) return;
    const waited = performance.now() - oldest;
    if (waited < pingMs - 1) {
      this.#expectAnswers(stream, pingMs - waited);
      return;
    }
    // Our requests no longer reach the member (or it no longer answers them): another member.
    this.#drop(stream);
    this.#transport.markSilent(stream.member);
  }

  #cancel(watchId: number): void {
    if (!this.#watchers.delete(watchId)) return;
    const queued = this.#pending.findIndex((p) => p.watchId === watchId);
    if (queued >= 0) this.#pending.splice(queued, 1);
    else this.#stream?.send({ cancel: { watchId } });
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
    this.#opening = true;
    let stream: Stream<WatchRequest> | undefined;
    this.#transport
      .watch(
        {
          message: (res) => {
            if (stream) this.#route(stream, res);
          },
          end: () => {
            if (stream) this.#drop(stream);
          },
        },
        { requireLeader: true },
      )
      .then(
        (opened) => {
          this.#opening = false;
          this.opened++;
          if (this.#watchers.size === 0) {
            opened.close();
            return;
          }
          stream = opened;
          this.#stream = opened;
          for (const create of this.#pending.splice(0)) this.#create(opened, create);
          // A stream to a member that cannot be reached never opens and never fails (its SYNs vanish in
          // a partition): it must answer like any other.
          this.#probe(opened);
        },
        () => {
          // Could not open a stream (every member unreachable): those waiting re-read and try again
          // after their backoff.
          this.#opening = false;
          for (const { watchId } of this.#pending.splice(0)) this.#breakOne(watchId);
        },
      );
  }

  #route(stream: Stream<WatchRequest>, res: WatchResponse): void {
    if (stream !== this.#stream) return;
    if (res.created) {
      // Creations are answered in the order they were sent; a refused one carries watch id -1.
      this.#transport.markAnswered(stream.member);
      const oldest = this.#unanswered.shift()?.watchId;
      const id = res.watchId === -1 ? oldest : res.watchId;
      if (res.watchId !== -1 && oldest !== res.watchId) this.#unanswered = this.#unanswered.filter((w) => w.watchId !== res.watchId);
      if (id === undefined) return;
      if (res.canceled) this.#breakOne(id);
      else this.#watchers.get(id)?.created(res.header.revision);
      return;
    }
    if (res.watchId === -1 && !res.canceled && res.events.length === 0) {
      // A progress answer (it names no watch): the stream carries our requests.
      this.#transport.markAnswered(stream.member);
      this.#pingSentAt = undefined;
      return;
    }
    const watcher = this.#watchers.get(res.watchId);
    if (!watcher) return; // cancelled by us
    if (res.canceled) this.#breakOne(res.watchId);
    else if (res.events.length > 0) watcher.events(res);
  }

  #breakOne(watchId: number): void {
    const watcher = this.#watchers.get(watchId);
    if (!watcher) return;
    this.#watchers.delete(watchId);
    watcher.broken();
  }

  /** Closes `stream` (if it is still ours) and tells every watcher on it that it broke. */
  #drop(stream: Stream<WatchRequest>): void {
    if (stream !== this.#stream) return;
    this.#stream = undefined;
    this.#pingSentAt = undefined;
    this.#unanswered = [];
    clearTimeout(this.#answerTimer);
    this.#answerTimer = undefined;
    clearTimeout(this.#idleTimer);
    stream.close();
    for (const id of [...this.#watchers.keys()]) this.#breakOne(id);
  }
}

const hubs = new WeakMap<EtcdTransport, Hub>();

function hubOf(transport: EtcdTransport): Hub {
  let hub = hubs.get(transport);
  if (!hub) hubs.set(transport, (hub = new Hub(transport)));
  return hub;
}

/** Watches `range` from now on the client's shared stream; returns the way to cancel the watch. */
export function watch(transport: EtcdTransport, range: WatchRange, handlers: WatchHandlers): () => void {
  return hubOf(transport).watch(range, handlers);
}

/** Tells the client's hub that a watch seems to have missed a change (see the file comment). */
export function suspect(transport: EtcdTransport): void {
  hubOf(transport).suspect();
}

/** How many watch streams the client's hub has opened, and how many watchers it has now (tests, bench). */
export function hubStats(transport: EtcdTransport): { opened: number; watchers: number } {
  const hub = hubOf(transport);
  return { opened: hub.opened, watchers: hub.watchers };
}
