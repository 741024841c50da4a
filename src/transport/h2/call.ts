/**
 * gRPC calls on an HTTP/2 stream: the request headers (path, `grpc-timeout`, the auth `token`, etcd's
 * `hasleader`), framed messages out and in, and the status at the end (`grpc-status`/`grpc-message`
 * in the trailers, or in the headers of a trailers-only answer). A unary call has a deadline of its
 * own as well as the server's (`grpc-timeout`): a member that stopped answering cannot hold it.
 *
 * Every call costs CPU on the client's hot path (a lock is two or three of them), so a call is one
 * object: the stream's listeners are shared functions that find their call on the stream, the abort
 * listener is the call itself (`handleEvent`), the headers of equal calls are one object, and the
 * deadlines of calls with equal timeouts share one timer (`deadlines.ts`).
 */
import http2 from 'node:http2';
import { TransportError } from '../port.js';
import type { Channel } from './channel.js';
import { deadlines, type Deadline } from './deadlines.js';
import { Deframer, frame } from './framing.js';
import { connectionError, deadlineError, decodeGrpcMessage, endError, HttpStatusError } from './status.js';

const { NGHTTP2_CANCEL } = http2.constants;

/** The metadata of a call. */
export interface CallMeta {
  /** e.g. `/etcdserverpb.KV/Range`. */
  path: string;
  /** etcd's auth token, when the client authenticates. */
  token?: string | undefined;
  /** etcd's require-leader metadata (`hasleader: true`). */
  requireLeader?: boolean;
  /** The deadline, in ms from now (unary calls). */
  timeoutMs?: number;
}

/** `grpc-timeout` takes at most 8 digits. */
const maxTimeout = 99_999_999;

function headers(meta: CallMeta): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': meta.path, 'content-type': 'application/grpc', te: 'trailers' };
  if (meta.timeoutMs !== undefined) h['grpc-timeout'] = `${Math.min(maxTimeout, Math.max(1, Math.ceil(meta.timeoutMs)))}m`;
  if (meta.token !== undefined) h['token'] = meta.token;
  if (meta.requireLeader) h['hasleader'] = 'true';
  return h;
}

/**
 * The headers of `meta`: the last ones made for its path while the token, timeout and require-leader
 * stay the same (node:http2 copies them and never changes ours). A handful of paths: bounded.
 */
const headerCache = new Map<string, { token: string | undefined; timeoutMs: number | undefined; leader: boolean; headers: http2.OutgoingHttpHeaders }>();

function cachedHeaders(meta: CallMeta): http2.OutgoingHttpHeaders {
  const last = headerCache.get(meta.path);
  const leader = meta.requireLeader === true;
  if (last !== undefined && last.token === meta.token && last.timeoutMs === meta.timeoutMs && last.leader === leader) return last.headers;
  const made = Object.freeze(headers(meta));
  headerCache.set(meta.path, { token: meta.token, timeoutMs: meta.timeoutMs, leader, headers: made });
  return made;
}

const kCall = Symbol('leasehold.call');
type CallStream = http2.ClientHttp2Stream & { [kCall]?: Call };

/** One gRPC call on one stream: reads the answer and reports it to {@link message} and {@link end}. */
abstract class Call {
  readonly channel: Channel;
  readonly stream: CallStream;
  /** The connection the stream is on. */
  readonly session: http2.ClientHttp2Session;
  readonly deframer: Deframer;
  status: number | undefined;
  grpcMessage = '';
  failure: Error | undefined;
  /** The deframer's callback: one closure per call. */
  readonly emit = (m: Buffer): void => this.message(m);

  /** Opens the stream; throws when the channel cannot make one (closed). */
  constructor(channel: Channel, meta: CallMeta) {
    this.channel = channel;
    this.deframer = new Deframer(channel.maxReceiveBytes);
    const stream: CallStream = channel.request(cachedHeaders(meta));
    this.session = channel.lastSession!;
    this.stream = stream;
    stream[kCall] = this;
    stream.on('response', onResponse);
    stream.on('data', onData);
    stream.on('trailers', onTrailers);
    stream.on('error', onError);
    stream.on('close', onClose);
  }

  /** A message of the answer. */
  abstract message(m: Buffer): void;
  /** The answer ended: `undefined` for status OK, else the error. Called once. */
  abstract end(error: TransportError | undefined): void;

  readStatus(h: http2.IncomingHttpHeaders): void {
    if (h['grpc-status'] === undefined) return;
    this.status = Number(h['grpc-status']);
    this.grpcMessage = decodeGrpcMessage(h['grpc-message']);
  }

  closed(): void {
    this.channel.streamClosed(this.session);
    if (this.failure === undefined && this.status === 0 && !this.deframer.partial) this.end(undefined);
    else this.end(endError({ failure: this.failure, status: this.status, grpcMessage: this.grpcMessage, rstCode: this.stream.rstCode, connectionLost: this.session.destroyed }, this.channel.endpoint));
  }
}

function onResponse(this: CallStream, h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
  const call = this[kCall]!;
  call.readStatus(h);
  if (h[':status'] !== 200 && call.status === undefined) call.failure = new HttpStatusError(h[':status']);
}

function onData(this: CallStream, chunk: Buffer): void {
  const call = this[kCall]!;
  if (call.failure) return; // a refused frame: the rest of the stream is not read
  try {
    call.deframer.push(chunk, call.emit);
  } catch (error) {
    call.failure = error as Error;
    this.close(NGHTTP2_CANCEL);
  }
}

function onTrailers(this: CallStream, h: http2.IncomingHttpHeaders): void {
  this[kCall]!.readStatus(h);
}

function onError(this: CallStream, error: Error): void {
  const call = this[kCall]!;
  call.failure ??= error;
  // Node refuses a stream once the connection's stream ids are used up, and keeps the connection.
  if ((error as NodeJS.ErrnoException).code === 'ERR_HTTP2_OUT_OF_STREAMS') call.channel.retire(call.session);
}

/**
 * Cancels `stream`: RST_STREAM CANCEL; a stream still waiting for its connection (a stalled TLS
 * handshake) is destroyed at once, where `close()` would wait for the connection and keep it ref'd.
 */
function cancel(stream: http2.ClientHttp2Stream): void {
  if (stream.pending) stream.destroy();
  else stream.close(NGHTTP2_CANCEL);
}

function onClose(this: CallStream): void {
  this[kCall]!.closed();
}

const once = { once: true } as const;

/** A unary call: settles its promise once, with the answer, the failure, the deadline or the abort. */
class Unary extends Call implements Deadline {
  readonly #resolve: (value: Buffer) => void;
  readonly #reject: (error: unknown) => void;
  readonly #signal: AbortSignal | undefined;
  readonly timeoutMs: number;
  #answer: Buffer | undefined;
  #settled = false;
  /** For {@link deadlines}. */
  deadline = 0;
  prev: Deadline | undefined;
  next: Deadline | undefined;

  constructor(channel: Channel, meta: CallMeta & { timeoutMs: number }, signal: AbortSignal | undefined, resolve: (value: Buffer) => void, reject: (error: unknown) => void) {
    super(channel, meta);
    this.timeoutMs = meta.timeoutMs;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    deadlines.add(this);
    signal?.addEventListener('abort', this, once);
  }

  message(m: Buffer): void {
    this.#answer = m;
  }

  end(error: TransportError | undefined): void {
    if (error) this.#settle(error);
    else if (this.#answer) this.#settle(undefined, this.#answer);
    else this.#settle(new TransportError('13 INTERNAL: an answer without a message', { code: 'INTERNAL', kind: 'final', endpoint: this.channel.endpoint }));
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.#settle(this.#signal?.reason);
    cancel(this.stream);
  }

  /** The deadline passed. */
  expired(): void {
    this.#settle(deadlineError(this.timeoutMs, this.channel.endpoint));
    cancel(this.stream);
  }

  #settle(error: unknown, value?: Buffer): void {
    if (this.#settled) return;
    this.#settled = true;
    deadlines.remove(this);
    this.#signal?.removeEventListener('abort', this);
    if (value !== undefined) this.#resolve(value);
    else this.#reject(error);
  }
}

/** One unary call: resolves with the answer's bytes, rejects with a {@link TransportError} or `signal.reason`. */
export function unary(channel: Channel, meta: CallMeta & { timeoutMs: number }, body: Uint8Array, signal?: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as unknown);
      return;
    }
    let call: Unary;
    try {
      call = new Unary(channel, meta, signal, resolve, reject);
    } catch (error) {
      reject(connectionError(error as Error, channel.endpoint));
      return;
    }
    call.stream.end(frame(body));
  });
}

/** Our side of an open bidirectional stream. */
export interface RawStream {
  send(body: Uint8Array): void;
  /** Cancels the stream; no callback after it. Idempotent. */
  close(): void;
}

class Bidi extends Call implements RawStream {
  #closed = false;

  constructor(
    channel: Channel,
    meta: CallMeta,
    readonly onMessage: (m: Buffer) => void,
    readonly onEnd: (error: TransportError) => void,
  ) {
    super(channel, meta);
  }

  message(m: Buffer): void {
    if (!this.#closed) this.onMessage(m);
  }

  end(error: TransportError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onEnd(error ?? new TransportError('0 OK: etcd ended the stream', { code: 'OK', kind: 'transient', endpoint: this.channel.endpoint }));
  }

  send(body: Uint8Array): void {
    const stream = this.stream;
    if (!this.#closed && !stream.destroyed && stream.writable) stream.write(frame(body));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    cancel(this.stream);
  }
}

/**
 * Opens a bidirectional stream: `onMessage` for each message; `onEnd` once when it ends other than by
 * our `close()` (an OK status included: the server ended it).
 */
export function openStream(channel: Channel, meta: CallMeta, onMessage: (m: Buffer) => void, onEnd: (error: TransportError) => void): RawStream {
  return new Bidi(channel, meta, onMessage, onEnd);
}
