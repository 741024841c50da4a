/**
 * Records etcd's history of one prefix while a fault scenario runs: a watch from the revision before the
 * first client started, re-created from the last revision seen when its stream breaks (a killed member)
 * or stalls (a paused one), on the next endpoint. Every revision of a scenario's cluster is a write under
 * its prefix, so the recorded revisions must be contiguous: {@link HistoryRecorder.gaps} proves the
 * history is complete. Compaction during a run is safe as long as it never passes
 * {@link HistoryRecorder.lastRevision} (see the compaction scenario).
 */
import { Etcd3, type IDuplexStream, type IWatchRequest, type IWatchResponse } from 'etcd3';
import { prefixEnd } from '../../src/engine/keys.js';

/** One put or delete of a key under the recorded prefix. */
export interface HistoryEvent {
  /** The revision of the write. */
  rev: bigint;
  type: 'put' | 'delete';
  key: string;
  /** The key's create revision (for a delete: the create revision of the key it deleted). */
  createRevision: bigint;
  /** The key's lease in lower-case hex, `0` for none. */
  lease: string;
  value: string;
  /**
   * When the recorder received it (`process.hrtime.bigint()`, ns): etcd applied it no later. Absent
   * in hand-made histories.
   */
  at?: bigint;
}

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

export class HistoryRecorder {
  readonly prefix: string;
  readonly startRevision: bigint;
  readonly events: HistoryEvent[] = [];
  /** Problems the recorder met: a compacted start revision, which makes the history incomplete. */
  readonly errors: string[] = [];
  readonly #clients: Etcd3[];
  /** Live keys and their create revision and lease, to describe deletes. */
  readonly #live = new Map<string, { createRevision: bigint; lease: string }>();
  #last: bigint;
  #next = 0;
  #stream: WatchStream | undefined;
  #closed = false;
  #progressAt = performance.now();
  #restarting = false;
  #waiters: { rev: bigint; resolve: () => void }[] = [];

  private constructor(endpoints: readonly string[], prefix: string, startRevision: bigint) {
    this.prefix = prefix;
    this.startRevision = startRevision;
    this.#last = startRevision;
    this.#clients = endpoints.map((host) => new Etcd3({ hosts: [host] }));
  }

  /**
   * Starts recording every write under `prefix` after `startRevision` (the revision read before the
   * scenario began; the prefix must have been empty then).
   */
  static async start(endpoints: readonly string[], prefix: string, startRevision: bigint): Promise<HistoryRecorder> {
    const recorder = new HistoryRecorder(endpoints, prefix, startRevision);
    await recorder.#open();
    return recorder;
  }

  /** The highest revision recorded (or the start revision). */
  get lastRevision(): bigint {
    return this.#last;
  }

  /** Revisions in (startRevision, lastRevision] with no recorded event: must be empty. */
  gaps(): bigint[] {
    const seen = new Set(this.events.map((e) => e.rev));
    const missing: bigint[] = [];
    for (let rev = this.startRevision + 1n; rev <= this.#last; rev++) if (!seen.has(rev)) missing.push(rev);
    return missing;
  }

  /**
   * Resolves once every revision up to `rev` is recorded; a stream that makes no progress for
   * `stallMs` meanwhile is replaced by one on the next endpoint. Rejects after `timeoutMs`.
   */
  async until(rev: bigint, timeoutMs = 30_000, stallMs = 2_000): Promise<void> {
    const started = performance.now();
    while (this.#last < rev) {
      if (performance.now() - started > timeoutMs) {
        throw new Error(`history recorder: revision ${rev} not recorded after ${timeoutMs} ms (at ${this.#last})`);
      }
      if (performance.now() - this.#progressAt > stallMs) await this.#restart();
      await new Promise<void>((resolve) => {
        const waiter = { rev, resolve };
        this.#waiters.push(waiter);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Writes a sentinel key under the prefix and waits until it is recorded: the end of the history. */
  async seal(client: Etcd3, timeoutMs = 30_000): Promise<bigint> {
    const res = await client.put(`${this.prefix}~end`).value('end').exec();
    const rev = BigInt(res.header.revision);
    await this.until(rev, timeoutMs);
    return rev;
  }

  close(): void {
    this.#closed = true;
    this.#drop();
    for (const client of this.#clients) client.close();
  }

  async #open(): Promise<void> {
    if (this.#closed) return;
    const client = this.#clients[this.#next++ % this.#clients.length]!;
    const key = Buffer.from(this.prefix);
    let stream: WatchStream;
    try {
      stream = await client.watchClient.watch();
    } catch {
      this.#retrySoon();
      return;
    }
    if (this.#closed) {
      stream.on('error', () => undefined);
      stream.cancel();
      return;
    }
    this.#stream = stream;
    this.#progressAt = performance.now();
    stream.on('data', (res: IWatchResponse) => this.#onData(stream, res));
    stream.on('error', () => this.#broken(stream));
    stream.on('end', () => this.#broken(stream));
    stream.write({
      create_request: { key, range_end: prefixEnd(key), start_revision: (this.#last + 1n).toString() },
    });
  }

  #onData(stream: WatchStream, res: IWatchResponse): void {
    if (stream !== this.#stream) return;
    this.#progressAt = performance.now();
    if (res.canceled) {
      if (res.compact_revision !== '0' && BigInt(res.compact_revision) > this.#last + 1n) {
        this.errors.push(`watch from ${this.#last + 1n} cancelled: compacted at ${res.compact_revision}`);
      }
      this.#broken(stream);
      return;
    }
    // A re-created watch starts after the last revision recorded, and etcd sends all events of one
    // revision in one response: anything at or below `floor` was recorded already.
    const floor = this.#last;
    const at = process.hrtime.bigint();
    for (const event of res.events) {
      const rev = BigInt(event.kv.mod_revision);
      if (rev <= floor) continue;
      const key = event.kv.key.toString();
      if (event.type === 'Delete') {
        const was = this.#live.get(key);
        this.#live.delete(key);
        this.events.push({
          rev,
          type: 'delete',
          key,
          createRevision: was?.createRevision ?? 0n,
          lease: was?.lease ?? '0',
          value: '',
          at,
        });
      } else {
        const createRevision = BigInt(event.kv.create_revision);
        const lease = BigInt(event.kv.lease).toString(16);
        this.#live.set(key, { createRevision, lease });
        this.events.push({ rev, type: 'put', key, createRevision, lease, value: event.kv.value.toString(), at });
      }
      if (rev > this.#last) this.#last = rev;
    }
    const ready = this.#waiters.filter((w) => w.rev <= this.#last);
    this.#waiters = this.#waiters.filter((w) => w.rev > this.#last);
    for (const w of ready) w.resolve();
  }

  #broken(stream: WatchStream): void {
    if (stream !== this.#stream) return;
    this.#drop();
    this.#retrySoon();
  }

  #retrySoon(): void {
    if (this.#closed) return;
    setTimeout(() => void this.#open(), 50);
  }

  async #restart(): Promise<void> {
    if (this.#restarting) return;
    this.#restarting = true;
    try {
      this.#drop();
      await this.#open();
    } finally {
      this.#restarting = false;
    }
  }

  #drop(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    if (stream) {
      stream.on('error', () => undefined);
      stream.cancel();
    }
  }
}
