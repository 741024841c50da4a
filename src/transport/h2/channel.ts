/**
 * One HTTP/2 connection to one etcd member, made when first needed and made again after it breaks.
 *
 * - GOAWAY (a member shutting down gracefully, or refusing more streams on this connection): the
 *   connection takes no new stream; streams already on it finish there (it is "draining"), new ones
 *   go to a new connection. Streams the server refused fail as transient, and are retried by their
 *   owners. `close()` ends draining connections too.
 * - Stream ids: a connection has 2^30 of them (odd ids up to 2^31 − 1). After `maxStreams` streams
 *   it drains as after a GOAWAY and the next stream goes to a new connection; Node's
 *   ERR_HTTP2_OUT_OF_STREAMS, should the count ever be wrong, does the same.
 * - Connecting (TCP and the TLS handshake) has `connectTimeoutMs` of its own: a member that accepts
 *   the connection and never completes the handshake fails the streams waiting on it then, instead of
 *   holding them (a call's deadline ends its own stream sooner).
 * - PING: while streams are open on a connection, a ping every `pingIntervalMs`; one unanswered for
 *   `pingTimeoutMs` destroys the connection, so streams on a member that stopped answering (paused,
 *   partitioned) end instead of waiting forever. etcd refuses pings more often than every 5 s (its
 *   `--grpc-keepalive-min-time`), so the interval stays above that. A connection we retired is
 *   pinged while it drains; one the server sent a GOAWAY cannot be (Node closes it and refuses pings
 *   on a closing connection), so the streams left there rely on their owners' own stall checks (the
 *   keep-alive's answers, the watch hub's) and on `close()`.
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
  /** How long connecting (TCP and TLS) may take before the connection is dropped, in ms. */
  connectTimeoutMs: number;
  /** The largest answer accepted, in bytes (Infinity: no limit). */
  maxReceiveBytes: number;
  /** Streams per connection before a new one is made. @default {@link maxStreamsPerConnection} */
  maxStreams?: number;
}

/** Client stream ids are odd and below 2^31: 2^30 streams per connection; a margin below that. */
export const maxStreamsPerConnection = 2 ** 30 - 2 ** 10;

const requestOptions = { endStream: false } as const;

const kConn = Symbol('leasehold.connection');
/** What the channel counts on each of its connections. */
interface Conn {
  /** Streams open (the connection is ref'd while there are any). */
  streams: number;
  /** Streams made (stream ids used). */
  made: number;
  /** Retired by us (stream ids used up): closed when its last stream closes. */
  retired: boolean;
  /** The connect timeout, then the ping interval. */
  timer: NodeJS.Timeout | undefined;
}
type Session = http2.ClientHttp2Session & { [kConn]: Conn };

export class Channel {
  readonly endpoint: string;
  /** The largest answer accepted, in bytes. */
  readonly maxReceiveBytes: number;
  readonly #o: ChannelOptions;
  readonly #authority: string;
  readonly #maxStreams: number;
  /** The connection new streams go to. */
  #session: Session | undefined;
  /** Connections that take no new stream (GOAWAY, stream ids used up) while their streams finish. */
  readonly #draining = new Set<Session>();
  #closed = false;
  /**
   * The connection of the stream {@link request} made last, for its owner (a stream that Node
   * destroyed at once, such as one refused for want of stream ids, no longer knows its session).
   */
  lastSession: http2.ClientHttp2Session | undefined;
  /** Connections made, and GOAWAYs received, for tests. */
  connections = 0;
  goaways = 0;

  constructor(options: ChannelOptions) {
    this.#o = options;
    this.endpoint = options.endpoint;
    this.maxReceiveBytes = options.maxReceiveBytes;
    this.#maxStreams = options.maxStreams ?? maxStreamsPerConnection;
    this.#authority = `${options.tls ? 'https' : 'http'}://${options.endpoint}`;
  }

  /** Connections draining, for tests. */
  get draining(): number {
    return this.#draining.size;
  }

  /**
   * Starts a request (connecting first if needed). The stream reports every failure itself; its owner
   * calls {@link streamClosed} with the stream's session when it closes.
   */
  request(headers: http2.OutgoingHttpHeaders): http2.ClientHttp2Stream {
    const session = this.#connected();
    this.lastSession = session;
    const stream = session.request(headers, requestOptions);
    const conn = session[kConn];
    conn.made++;
    if (conn.streams++ === 0) session.ref();
    return stream;
  }

  /** A stream of {@link request} on `session` closed. */
  streamClosed(session: http2.ClientHttp2Session): void {
    const conn = (session as Session)[kConn];
    if (--conn.streams === 0 && !session.destroyed) {
      session.unref();
      if (conn.retired) session.close();
    }
  }

  /**
   * `session` takes no new stream; the streams on it finish there, then it closes. (Not closed
   * before that: Node refuses pings on a closing connection, and ours keep being pinged.)
   */
  retire(session: http2.ClientHttp2Session): void {
    if (this.#session === session) this.#session = undefined;
    if (session.destroyed) return;
    const conn = (session as Session)[kConn];
    conn.retired = true;
    if (conn.streams === 0) session.close();
    else this.#draining.add(session as Session);
  }

  /** Closes the connections (draining ones too); streams on them end. A later request connects again unless `final`. */
  close(final = false): void {
    this.#closed ||= final;
    const session = this.#session;
    this.#session = undefined;
    session?.destroy();
    for (const draining of this.#draining) draining.destroy();
    this.#draining.clear();
  }

  #connected(): Session {
    const existing = this.#session;
    if (existing !== undefined) {
      if (existing[kConn].made < this.#maxStreams && !existing.closed && !existing.destroyed) return existing;
      this.retire(existing);
    }
    if (this.#closed) throw new Error('the channel is closed');
    const session = http2.connect(this.#authority, {
      ...(this.#o.tls ?? {}),
      // Large windows: answers (ranges, watch events) are not throttled by flow control.
      settings: { initialWindowSize: 4 * 1024 * 1024, enablePush: false },
    }) as Session;
    const conn: Conn = { streams: 0, made: 0, retired: false, timer: undefined };
    session[kConn] = conn;
    this.connections++;
    this.#session = session;
    session.unref();
    const ms = this.#o.connectTimeoutMs;
    conn.timer = setTimeout(() => session.destroy(new Error(`no connection within ${ms} ms`)), ms);
    conn.timer.unref();
    session.on('error', () => {
      if (this.#session === session) this.#session = undefined;
    });
    session.on('close', () => {
      if (this.#session === session) this.#session = undefined;
      this.#draining.delete(session);
      if (this.lastSession === session) this.lastSession = undefined;
      clearTimeout(conn.timer);
    });
    session.on('goaway', () => {
      this.goaways++;
      this.retire(session); // no new stream on it; open ones finish (Node closes it after this event)
    });
    session.on('connect', () => {
      clearTimeout(conn.timer);
      if (session.destroyed) return; // destroyed while the handshake finished (closed, timed out)
      session.setLocalWindowSize(8 * 1024 * 1024);
      conn.timer = this.#pings(session, conn);
    });
    return session;
  }

  /** Pings `session` every `pingIntervalMs` while streams are open on it. */
  #pings(session: Session, conn: Conn): NodeJS.Timeout {
    const timer = setInterval(() => {
      // etcd counts pings on an idle connection as abuse. Node refuses pings on a connection that is
      // closing (after a server's GOAWAY): the streams left on it rely on their owners' stall checks.
      if (session.closed || session.destroyed || conn.streams === 0) return;
      const timeout = setTimeout(() => session.destroy(new Error(`no answer to an HTTP/2 ping within ${this.#o.pingTimeoutMs} ms`)), this.#o.pingTimeoutMs);
      timeout.unref();
      const sent = session.ping((error) => {
        clearTimeout(timeout);
        if (error && !session.destroyed) session.destroy(error);
      });
      if (!sent) clearTimeout(timeout);
    }, this.#o.pingIntervalMs);
    timer.unref();
    return timer;
  }
}
