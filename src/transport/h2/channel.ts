/**
 * One HTTP/2 connection to one etcd member, made when first needed and made again after it breaks.
 *
 * - GOAWAY (a member shutting down gracefully, or refusing more streams on this connection): the
 *   connection takes no new stream; streams already on it finish there, new ones go to a new
 *   connection. Streams the server refused fail as transient, and are retried by their owners.
 * - PING: while streams are open, a ping every `pingIntervalMs`; one unanswered for `pingTimeoutMs`
 *   destroys the connection, so streams on a member that stopped answering (paused, partitioned)
 *   end instead of waiting forever. etcd refuses pings more often than every 5 s (its
 *   `--grpc-keepalive-min-time`), so the interval stays above that.
 * - The connection keeps the process alive only while a call or stream is open on it (as grpc-js's
 *   channels do): an idle connection never holds a process that has nothing else to do.
 */
import http2 from 'node:http2';
import type { SecureContextOptions } from 'node:tls';

/** How to reach a member. */
export interface ChannelOptions {
  /** `host:port`. */
  endpoint: string;
  /** TLS options; undefined for cleartext (h2c with prior knowledge). */
  tls: (SecureContextOptions & { servername?: string }) | undefined;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** The largest answer accepted, in bytes (Infinity: no limit). */
  maxReceiveBytes: number;
}

const requestOptions = { endStream: false } as const;

/** Streams open on each connection: a connection is ref'd while it has any. */
const streamsOn = new WeakMap<http2.ClientHttp2Session, number>();

export class Channel {
  readonly endpoint: string;
  /** The largest answer accepted, in bytes. */
  readonly maxReceiveBytes: number;
  readonly #o: ChannelOptions;
  readonly #authority: string;
  #session: http2.ClientHttp2Session | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Streams open on this channel (on any of its connections). */
  #open = 0;
  /** Connections made, and GOAWAYs received, for tests. */
  connections = 0;
  goaways = 0;

  constructor(options: ChannelOptions) {
    this.#o = options;
    this.endpoint = options.endpoint;
    this.maxReceiveBytes = options.maxReceiveBytes;
    this.#authority = `${options.tls ? 'https' : 'http'}://${options.endpoint}`;
  }

  /**
   * Starts a request (connecting first if needed). The stream reports every failure itself; its owner
   * calls {@link streamClosed} with the stream's session when it closes.
   */
  request(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream {
    const session = this.#connected();
    const stream = session.request(headers, requestOptions);
    this.#open++;
    const busy = (streamsOn.get(session) ?? 0) + 1;
    streamsOn.set(session, busy);
    if (busy === 1) session.ref();
    return stream;
  }

  /** A stream of {@link request} on `session` closed. */
  streamClosed(session: http2.ClientHttp2Session): void {
    this.#open--;
    const left = (streamsOn.get(session) ?? 1) - 1;
    streamsOn.set(session, left);
    if (left === 0 && !session.destroyed) session.unref();
  }

  /** Closes the connection; streams on it end. A later request connects again unless `final`. */
  close(final = false): void {
    this.#closed ||= final;
    const session = this.#session;
    this.#session = undefined;
    clearInterval(this.#pingTimer);
    session?.destroy();
  }

  #connected(): http2.ClientHttp2Session {
    const existing = this.#session;
    if (existing && !existing.closed && !existing.destroyed) return existing;
    if (this.#closed) throw new Error('the channel is closed');
    const session = http2.connect(this.#authority, {
      ...(this.#o.tls ?? {}),
      // Large windows: answers (ranges, watch events) are not throttled by flow control.
      settings: { initialWindowSize: 4 * 1024 * 1024, enablePush: false },
    });
    this.connections++;
    this.#session = session;
    session.unref();
    const forget = (): void => {
      if (this.#session === session) {
        this.#session = undefined;
        clearInterval(this.#pingTimer);
      }
    };
    session.on('error', forget);
    session.on('close', forget);
    session.on('goaway', () => {
      this.goaways++;
      forget(); // no new stream on it; open ones finish
    });
    session.on('connect', () => session.setLocalWindowSize(8 * 1024 * 1024));
    this.#startPings(session);
    return session;
  }

  #startPings(session: http2.ClientHttp2Session): void {
    clearInterval(this.#pingTimer);
    this.#pingTimer = setInterval(() => {
      if (session.destroyed || session.closed) return;
      if (this.#open === 0) return; // etcd counts pings on an idle connection as abuse
      const timer = setTimeout(() => session.destroy(new Error(`no answer to an HTTP/2 ping within ${this.#o.pingTimeoutMs} ms`)), this.#o.pingTimeoutMs);
      timer.unref();
      const sent = session.ping((error) => {
        clearTimeout(timer);
        if (error && !session.destroyed) session.destroy(error);
      });
      if (!sent) clearTimeout(timer);
    }, this.#o.pingIntervalMs);
    this.#pingTimer.unref();
  }
}
