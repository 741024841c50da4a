/**
 * Keeping one lease alive on a `LeaseKeepAlive` stream of the port, and reporting each renewal with the
 * instant its request was *sent* (answers on one stream come in the order of the requests, so each
 * answer is paired with the oldest unanswered send). The Session turns those into its validity
 * deadline; this module only talks to etcd.
 *
 * A keep-alive unanswered for `stallMs` (etcd3 issue 110: a stream that takes writes and answers
 * nothing; a paused or partitioned member) makes the next one go at once on a new stream, on another
 * member if there is one. The silent stream keeps listening until `requestTimeout`: a late answer from
 * a slow member still counts, since we know when its keep-alive was sent. A broken stream is replaced
 * after a backoff.
 */
import { clampDelay } from './abort.js';
import { Backoff } from './backoff.js';
import type { LeaseKeepAliveResponse } from './messages.js';
import type { EtcdTransport, Member, Stream as PortStream } from './port.js';

/** What the keep-alive loop needs to know. */
export interface KeepAliveOptions {
  transport: EtcdTransport;
  /** The lease, etcd's decimal id. */
  leaseId: string;
  /** How often a keep-alive is sent, in ms. */
  interval: number;
  /** How long a keep-alive may go unanswered before its stream is replaced, in ms. */
  stallMs: number;
  /** How long a replaced (silent) stream keeps listening for a late answer, in ms. */
  requestTimeout: number;
  /** A keep-alive succeeded: it was sent at `sentAt` (performance.now()) and etcd granted `ttl` seconds. */
  renewed(sentAt: number, ttl: number): void;
  /** etcd says the lease is gone (a keep-alive answered with TTL <= 0). */
  gone(cause: Error): void;
}

/** One keep-alive stream, the member it is on, and the send times of its unanswered keep-alives. */
interface Stream {
  stream: PortStream<string>;
  pending: number[];
  timer: NodeJS.Timeout | undefined;
}

/** The keep-alive loop of one lease; `stop()` ends it. */
export class KeepAlive {
  readonly #o: KeepAliveOptions;
  #stopped = false;
  #intervalTimer: NodeJS.Timeout | undefined;
  /** The stream keep-alives are sent on. */
  #current: Stream | undefined;
  /** Streams replaced because they went silent, still listening for a late answer for a while. */
  readonly #retired = new Set<Stream>();
  /** The last member a keep-alive stream went silent on. */
  #silentMember: Member | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  /** Reconnects after a broken stream: 50 ms up to half an interval, reset by an answer. */
  readonly #backoff: Backoff;

  constructor(options: KeepAliveOptions) {
    this.#o = options;
    this.#backoff = new Backoff({ initialDelay: 50, maxDelay: Math.max(50, options.interval / 2) });
    this.#open();
    this.#intervalTimer = setInterval(() => this.#send(), clampDelay(options.interval));
    this.#intervalTimer.unref();
  }

  /** Closes every stream and stops sending. Idempotent. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#intervalTimer);
    clearTimeout(this.#reconnectTimer);
    if (this.#current) this.#close(this.#current);
    for (const s of this.#retired) this.#close(s);
  }

  #open(): void {
    if (this.#stopped) return;
    let s: Stream | undefined;
    this.#o.transport
      .leaseKeepAlive(
        {
          message: (res) => {
            if (s) this.#answered(s, res);
          },
          end: () => {
            if (s) this.#broken(s);
          },
        },
        { ...(this.#silentMember ? { avoid: this.#silentMember } : {}), requireLeader: true },
      )
      .then(
        (stream) => {
          if (this.#stopped) {
            stream.close();
            return;
          }
          s = { stream, pending: [], timer: undefined };
          this.#current = s;
          this.#send();
        },
        () => this.#reconnect(),
      );
  }

  #close(s: Stream): void {
    clearTimeout(s.timer);
    this.#retired.delete(s);
    if (this.#current === s) this.#current = undefined;
    s.stream.close();
  }

  /** The stream failed: replace it after a backoff. */
  #broken(s: Stream): void {
    const wasCurrent = this.#current === s;
    this.#close(s);
    if (wasCurrent) this.#reconnect();
  }

  /** A keep-alive went unanswered for `stallMs`: send the next one at once on a new stream. */
  #silent(s: Stream): void {
    if (this.#current !== s) return;
    this.#current = undefined;
    this.#silentMember = s.stream.member;
    this.#o.transport.markSilent(s.stream.member);
    this.#retired.add(s);
    s.timer = setTimeout(() => this.#close(s), clampDelay(this.#o.requestTimeout));
    this.#reconnect(true);
  }

  #reconnect(now = false): void {
    if (this.#stopped || this.#reconnectTimer) return;
    const delay = now ? 0 : this.#backoff.next();
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      this.#open();
    }, clampDelay(delay));
  }

  #send(): void {
    const s = this.#current;
    if (!s || this.#stopped) return;
    if (s.pending.length > 0) return; // its stall timer decides
    s.pending.push(performance.now());
    s.stream.send(this.#o.leaseId);
    clearTimeout(s.timer);
    s.timer = setTimeout(() => this.#silent(s), clampDelay(this.#o.stallMs));
  }

  #answered(s: Stream, res: LeaseKeepAliveResponse): void {
    this.#o.transport.markAnswered(s.stream.member);
    const sent = s.pending.shift();
    if (this.#current === s && s.pending.length === 0) clearTimeout(s.timer);
    if (this.#retired.has(s) && s.pending.length === 0) this.#close(s);
    if (this.#stopped) return;
    const ttl = res.ttl;
    if (ttl <= 0) {
      this.#o.gone(new Error(`etcd answered the keep-alive of lease ${BigInt(this.#o.leaseId).toString(16)} with TTL ${ttl}`));
      return;
    }
    this.#backoff.reset();
    if (this.#current === s) this.#silentMember = undefined;
    if (sent !== undefined) this.#o.renewed(sent, ttl);
  }
}
