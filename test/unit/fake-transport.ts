/**
 * An in-memory fake of the port (`src/transport/port.ts`) for fast unit tests of the engine: queue
 * decisions, record decoding, validation — the way undici tests against a MockAgent instead of a
 * server. It keeps etcd's store (fake-store.ts), leases with TTLs on real timers, and one or more
 * watch streams with etcd's answers (created, events, cancelled, progress, compacted).
 *
 * Test-only, and NO substitute for real etcd: it has one member, no consensus, no auth, no network.
 * Behaviour — and every guarantee — is still proven against a real etcd (test/integration,
 * test/fault); `fake-transport.test.ts` holds the fake to a real etcd's answers for the same requests.
 *
 * Faults to inject: those of unary calls in `faults` (fake-faults.ts: `failNext`, `failWhere`,
 * `loseAnswer`); `endStreams(error)` ends every open stream as a broken connection would; `compact(revision)`
 * compacts the history, and `cancelWatchers()` cancels every watcher as etcd cancels one that fell
 * behind a compaction. `watched()` lists what is being watched, for tests of who watches what.
 */
import type { LeaseGrantResponse, LeaseKeepAliveResponse, LeaseTimeToLiveResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchEvent, WatchRequest, WatchResponse } from '../../src/transport/messages.js';
import type { CallOptions, EtcdTransport, Member, Stream, StreamHandlers } from '../../src/transport/port.js';
import { TransportError } from '../../src/transport/port.js';
import { FakeFaults } from './fake-faults.js';
import { fakeEndpoint, FakeStore, inRange, refusal } from './fake-store.js';

interface Lease {
  grantedTtl: number;
  expiresAt: number;
  timer: NodeJS.Timeout;
}

interface Watcher {
  key: Buffer;
  rangeEnd: Buffer | undefined;
  filters: Set<string>;
  prevKv: boolean;
}

const member: Member = { endpoint: fakeEndpoint };

export class FakeTransport implements EtcdTransport {
  readonly endpoints = [fakeEndpoint];
  readonly user = undefined;
  readonly store = new FakeStore();
  /** Unary calls made, by name (tests count requests with it). */
  readonly calls: string[] = [];
  readonly #leases = new Map<string, Lease>();
  readonly #log: { revision: bigint; events: WatchEvent[] }[] = [];
  readonly #streams = new Set<{ handlers: StreamHandlers<WatchResponse> | StreamHandlers<LeaseKeepAliveResponse>; watchers?: Map<number, Watcher> }>();
  #nextLease = 0x694d7a1c0b3e4a21n;
  /** Faults to inject (see fake-faults.ts): `faults.failNext()`, `faults.failWhere()`, `faults.loseAnswer()`. */
  readonly faults = new FakeFaults();

  constructor() {
    this.store.onEvents = (events, revision) => {
      this.#log.push({ revision, events });
      for (const s of this.#streams) if (s.watchers) this.#deliver(s as never, events, revision);
    };
  }

  /** Ends every open stream with `error`, as a broken connection would. */
  endStreams(error: TransportError = refusal('UNAVAILABLE', 'transient', '14 UNAVAILABLE: injected')): void {
    for (const s of [...this.#streams]) {
      this.#streams.delete(s);
      s.handlers.end(error);
    }
  }

  /** Compacts the history up to `revision`. */
  compact(revision: bigint): void {
    this.store.compacted = revision;
  }

  /**
   * Compacts the history at the current revision and cancels every watcher with that compaction
   * revision — what etcd answers a watcher that fell behind a compaction (`canceled`, `compactRevision`).
   */
  cancelWatchers(): void {
    this.compact(this.store.revision);
    for (const s of [...this.#streams]) {
      if (!s.watchers) continue;
      for (const watchId of [...s.watchers.keys()]) {
        s.watchers.delete(watchId);
        const header = { ...this.store.header(), revision: 0n }; // as etcd's compaction answers have it
        (s.handlers as StreamHandlers<WatchResponse>).message(this.#response(watchId, { header, canceled: true, compactRevision: this.store.compacted }));
      }
    }
  }

  /** The keys (as text; `key..rangeEnd` for a range) of every watcher on an open stream. */
  watched(): string[] {
    const out: string[] = [];
    for (const s of this.#streams) for (const w of s.watchers?.values() ?? []) out.push(w.rangeEnd ? `${w.key}..${w.rangeEnd}` : w.key.toString());
    return out.sort();
  }
  async range(req: RangeRequest, options: CallOptions): Promise<RangeResponse> {
    await this.#enter('range', options, req);
    return this.store.range(req);
  }

  async txn(req: TxnRequest, options: CallOptions): Promise<TxnResponse> {
    await this.#enter('txn', options, req);
    const res = this.store.txn(req, (id) => this.#leases.has(id));
    await this.faults.after(req);
    return res;
  }

  async leaseGrant(ttlSeconds: number, options: CallOptions): Promise<LeaseGrantResponse> {
    await this.#enter('leaseGrant', options, ttlSeconds);
    const id = String(this.#nextLease++);
    this.#leases.set(id, this.#arm(id, ttlSeconds));
    return { header: this.store.header(), id, ttl: ttlSeconds };
  }

  async leaseRevoke(id: string, options: CallOptions): Promise<void> {
    await this.#enter('leaseRevoke', options, id);
    if (!this.#leases.has(id)) throw refusal('NOT_FOUND', 'lease-not-found', '5 NOT_FOUND: etcdserver: requested lease not found');
    this.#expire(id);
  }

  async leaseTimeToLive(id: string, options: CallOptions): Promise<LeaseTimeToLiveResponse> {
    await this.#enter('leaseTimeToLive', options, id);
    const lease = this.#leases.get(id);
    if (!lease) return { header: this.store.header(), id, ttl: -1, grantedTtl: 0 };
    return { header: this.store.header(), id, ttl: Math.max(0, Math.ceil((lease.expiresAt - performance.now()) / 1000)), grantedTtl: lease.grantedTtl };
  }

  async watch(handlers: StreamHandlers<WatchResponse>): Promise<Stream<WatchRequest>> {
    const s = { handlers, watchers: new Map<number, Watcher>() };
    this.#streams.add(s);
    return {
      member,
      send: (req) => queueMicrotask(() => this.#streams.has(s) && this.#watchRequest(s, req)),
      close: () => this.#streams.delete(s),
    };
  }

  async leaseKeepAlive(handlers: StreamHandlers<LeaseKeepAliveResponse>): Promise<Stream<string>> {
    const s = { handlers };
    this.#streams.add(s);
    const answer = (id: string): void => {
      if (!this.#streams.has(s)) return;
      const lease = this.#leases.get(id);
      if (lease) {
        clearTimeout(lease.timer);
        this.#leases.set(id, this.#arm(id, lease.grantedTtl));
      }
      handlers.message({ header: this.store.header(), id, ttl: lease ? lease.grantedTtl : 0 });
    };
    return { member, send: (id) => queueMicrotask(() => answer(id)), close: () => this.#streams.delete(s) };
  }

  markSilent(): void {}
  markAnswered(): void {}
  onSilent(): () => void {
    return () => undefined;
  }

  close(): void {
    for (const id of [...this.#leases.keys()]) clearTimeout(this.#leases.get(id)!.timer);
    this.#leases.clear();
    this.#streams.clear();
  }

  async #enter(name: string, options: CallOptions, req: unknown): Promise<void> {
    options.signal?.throwIfAborted();
    this.calls.push(name);
    await Promise.resolve();
    await this.faults.before(name, req);
  }

  #arm(id: string, ttl: number): Lease {
    const timer = setTimeout(() => this.#expire(id), ttl * 1000);
    timer.unref();
    return { grantedTtl: ttl, expiresAt: performance.now() + ttl * 1000, timer };
  }

  #expire(id: string): void {
    const lease = this.#leases.get(id);
    if (!lease) return;
    clearTimeout(lease.timer);
    this.#leases.delete(id);
    this.store.deleteKeys(this.store.kvs().filter((kv) => kv.lease === id).map((kv) => kv.key));
  }

  #watchRequest(s: { handlers: StreamHandlers<WatchResponse>; watchers: Map<number, Watcher> }, req: WatchRequest): void {
    const answer = (watchId: number, fields: Partial<WatchResponse>): void => s.handlers.message(this.#response(watchId, fields));
    if (req.progress) return answer(-1, {});
    if (req.cancel) {
      if (s.watchers.delete(req.cancel.watchId)) answer(req.cancel.watchId, { canceled: true });
      return;
    }
    const c = req.create!;
    const start = c.startRevision ?? 0n;
    if (start > 0n && start < this.store.compacted) {
      // etcd creates the watcher, then cancels it with the compaction revision (header revision 0).
      answer(c.watchId, { created: true });
      return answer(c.watchId, { header: { ...this.store.header(), revision: 0n }, canceled: true, compactRevision: this.store.compacted });
    }
    const watcher: Watcher = { key: c.key, rangeEnd: c.rangeEnd, filters: new Set(c.filters ?? []), prevKv: c.prevKv ?? false };
    s.watchers.set(c.watchId, watcher);
    answer(c.watchId, { created: true });
    // A watcher that starts in the past catches up in one answer (as etcd's unsynced watchers do).
    if (start > 0n) this.#deliver(s, this.#log.filter((l) => l.revision >= start).flatMap((l) => l.events), this.store.revision, c.watchId);
  }

  #response(watchId: number, fields: Partial<WatchResponse>): WatchResponse {
    return { header: this.store.header(), watchId, created: false, canceled: false, compactRevision: 0n, cancelReason: '', events: [], ...fields };
  }

  #deliver(s: { handlers: StreamHandlers<WatchResponse>; watchers: Map<number, Watcher> }, events: WatchEvent[], revision: bigint, only?: number): void {
    for (const [watchId, w] of s.watchers) {
      if (only !== undefined && watchId !== only) continue;
      const mine = events
        .filter((e) => matches(w, e))
        .map((e) => ({ ...e, prevKv: w.prevKv ? e.prevKv : undefined }));
      if (mine.length > 0) {
        s.handlers.message({ header: { ...this.store.header(), revision }, watchId, created: false, canceled: false, compactRevision: 0n, cancelReason: '', events: mine });
      }
    }
  }
}

function matches(w: Watcher, e: WatchEvent): boolean {
  return !w.filters.has(e.type === 'put' ? 'noPut' : 'noDelete') && inRange(e.kv.key, w.key, w.rangeEnd);
}
