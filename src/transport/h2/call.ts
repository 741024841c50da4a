/**
 * gRPC calls on an HTTP/2 stream: the request headers (path, `grpc-timeout`, the auth `token`, etcd's
 * `hasleader`), framed messages out and in, and the status at the end (`grpc-status`/`grpc-message`
 * in the trailers, or in the headers of a trailers-only answer). A unary call has a deadline of its
 * own as well as the server's (`grpc-timeout`): a member that stopped answering cannot hold it.
 */
import http2 from 'node:http2';
import { TransportError } from '../port.js';
import type { Channel } from './channel.js';
import { Deframer, frame, MessageTooLargeError } from './framing.js';
import { connectionError, deadlineError, decodeGrpcMessage, statusError } from './status.js';

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
 * Reads a gRPC answer from `stream`: `onMessage` for each message, then `onEnd` once, with
 * `undefined` for status OK and the error otherwise.
 */
function listen(
  stream: http2.ClientHttp2Stream,
  channel: Channel,
  onMessage: (message: Buffer) => void,
  onEnd: (error: TransportError | undefined) => void,
): void {
  const { endpoint } = channel;
  const deframer = new Deframer(channel.maxReceiveBytes);
  let status: number | undefined;
  let message = '';
  let failure: Error | undefined;
  const read = (h: http2.IncomingHttpHeaders): void => {
    if (h['grpc-status'] === undefined) return;
    status = Number(h['grpc-status']);
    message = decodeGrpcMessage(h['grpc-message']);
  };
  stream.on('response', (h) => {
    read(h);
    if (h[':status'] !== 200 && status === undefined) failure = new Error(`etcd answered HTTP status ${h[':status']}, not a gRPC answer`);
  });
  stream.on('data', (chunk: Buffer) => {
    if (failure) return; // a refused frame: the rest of the stream is not read
    try {
      deframer.push(chunk, onMessage);
    } catch (error) {
      failure = error as Error;
      stream.close(NGHTTP2_CANCEL);
    }
  });
  stream.on('trailers', read);
  stream.on('error', (error) => {
    failure ??= error;
  });
  stream.on('close', () => {
    if (failure instanceof MessageTooLargeError) onEnd(statusError(8, failure.message, endpoint));
    else if (failure === undefined && status === 0 && !deframer.partial) onEnd(undefined);
    else if (status !== undefined && status !== 0) onEnd(statusError(status, message, endpoint));
    else onEnd(connectionError(failure ?? new Error(`the stream closed without a status (HTTP/2 code ${stream.rstCode})`), endpoint));
  });
}

/** One unary call: resolves with the answer's bytes, rejects with a {@link TransportError} or `signal.reason`. */
export function unary(channel: Channel, meta: CallMeta & { timeoutMs: number }, body: Uint8Array, signal?: AbortSignal): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as unknown);
      return;
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = channel.request(headers(meta));
    } catch (error) {
      reject(connectionError(error as Error, channel.endpoint));
      return;
    }
    let answer: Buffer | undefined;
    let settled = false;
    const settle = (error: unknown, value?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (value !== undefined) resolve(value);
      else reject(error);
    };
    const onAbort = (): void => {
      settle(signal?.reason);
      stream.close(NGHTTP2_CANCEL);
    };
    const timer = setTimeout(() => {
      settle(deadlineError(meta.timeoutMs, channel.endpoint));
      stream.close(NGHTTP2_CANCEL);
    }, meta.timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    listen(stream, channel, (m) => (answer = m), (error) => {
      if (error) settle(error);
      else if (answer) settle(undefined, answer);
      else settle(new TransportError('13 INTERNAL: an answer without a message', { code: 'INTERNAL', kind: 'final', endpoint: channel.endpoint }));
    });
    stream.end(frame(body));
  });
}

/** Our side of an open bidirectional stream. */
export interface RawStream {
  send(body: Uint8Array): void;
  /** Cancels the stream; no callback after it. Idempotent. */
  close(): void;
}

/**
 * Opens a bidirectional stream: `onMessage` for each message; `onEnd` once when it ends other than by
 * our `close()` (an OK status included: the server ended it).
 */
export function openStream(channel: Channel, meta: CallMeta, onMessage: (m: Buffer) => void, onEnd: (error: TransportError) => void): RawStream {
  const stream = channel.request(headers(meta));
  let closed = false;
  listen(stream, channel, (m) => closed || onMessage(m), (error) => {
    if (closed) return;
    closed = true;
    onEnd(error ?? new TransportError('0 OK: etcd ended the stream', { code: 'OK', kind: 'transient', endpoint: channel.endpoint }));
  });
  return {
    send(body) {
      if (!closed && !stream.destroyed && stream.writable) stream.write(frame(body));
    },
    close() {
      if (closed) return;
      closed = true;
      stream.close(NGHTTP2_CANCEL);
    },
  };
}
