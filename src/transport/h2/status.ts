/**
 * What a failed gRPC call means to leasehold: a gRPC status (from `grpc-status`/`grpc-message`, or the
 * stand-in for a connection that broke) becomes a {@link TransportError} of one {@link FailureKind},
 * naming the endpoint. etcd's error texts are its `rpctypes` (etcd 3.4); transient ones are the
 * same as the `etcd3` path retries. A call that ended without a gRPC status is mapped as grpc-js
 * (1.14, `subchannel-call.ts`) maps it, so both transports report a server's fault alike.
 */
import http2 from 'node:http2';
import { TransportError, type FailureKind } from '../port.js';
import { CompressedMessageError, MessageTooLargeError } from './framing.js';

/** gRPC status codes by number. */
export const statusNames = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE',
  'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

/** An auth token etcd no longer knows (expired, or from before a restart): authenticate again. */
export const invalidToken = /invalid auth token/i;

const transientCodes = new Set(['CANCELLED', 'DEADLINE_EXCEEDED', 'UNAVAILABLE', 'INTERNAL', 'RESOURCE_EXHAUSTED', 'ABORTED']);
const transientMessage =
  /leader changed|request timed out|no leader|too many requests|timed out due to|connection (refused|reset)|unavailable|not capable|raft: stopped/i;
/** RESOURCE_EXHAUSTED that retrying cannot fix: a message over the limit, or a full database. */
const finalMessage = /larger than max|space exceeded|too large/i;
const authMessage = /authentication failed|invalid user ID or password|user name is empty|invalid auth token/i;

/** The kind of a failure that etcd answered with a gRPC status. */
export function kindOf(code: string, message: string): FailureKind {
  if (code === 'PERMISSION_DENIED') return 'permission';
  if (code === 'UNAUTHENTICATED' || authMessage.test(message)) return 'auth';
  if (/requested lease not found|lease not found/i.test(message)) return 'lease-not-found';
  if (/compacted/i.test(message)) return 'compacted';
  if (finalMessage.test(message)) return 'final';
  if (transientCodes.has(code) || transientMessage.test(message)) return 'transient';
  return 'final';
}

/** A call that etcd answered with `grpc-status` `status` (not 0) and `grpc-message` `message`. */
export function statusError(status: number, message: string, endpoint: string): TransportError {
  const code = statusNames[status] ?? `STATUS_${status}`;
  return new TransportError(`${status} ${code}: ${message}`, { code, kind: kindOf(code, message), endpoint });
}

/**
 * A failed TLS handshake (a certificate refused by either side): Node's and OpenSSL's codes and
 * texts. Retrying cannot help, unlike an unreachable host.
 */
const tlsText =
  /alert bad certificate|certificate required|handshake failure|unknown ca|certificate verify failed|self[- ]signed certificate|unable to (get|verify)|CERT_|ERR_TLS|ERR_SSL|wrong version number|x509/i;

function isTls(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return tlsText.test(code) || tlsText.test(error.message);
}

/** Failures that say the member itself is unreachable or silent (not an answer from etcd). */
const unreachable = new WeakSet<TransportError>();

/** True when `error` came from a connection that failed or a member that did not answer in time. */
export function isUnreachable(error: unknown): boolean {
  return error instanceof TransportError && unreachable.has(error);
}

/** The error a broken connection or stream (no gRPC status) becomes. */
export function connectionError(error: Error, endpoint: string): TransportError {
  const cause = error.cause instanceof Error ? error.cause : error;
  if (isTls(cause)) {
    return new TransportError(`14 UNAVAILABLE: TLS handshake failed: ${cause.message}`, { code: 'UNAVAILABLE', kind: 'tls', endpoint, cause });
  }
  const failure = new TransportError(`14 UNAVAILABLE: ${cause.message}`, { code: 'UNAVAILABLE', kind: 'transient', endpoint, cause });
  unreachable.add(failure);
  return failure;
}

/** The caller's deadline passed before etcd answered. */
export function deadlineError(timeoutMs: number, endpoint: string): TransportError {
  const failure = new TransportError(`4 DEADLINE_EXCEEDED: no answer within ${timeoutMs} ms`, { code: 'DEADLINE_EXCEEDED', kind: 'transient', endpoint });
  unreachable.add(failure);
  return failure;
}

/** The transport was closed by its owner. */
export function closedError(endpoint: string | undefined): TransportError {
  return new TransportError('the etcd client is closed', { code: 'CLIENT_CLOSED', kind: 'final', endpoint });
}

/** `grpc-message` is percent-encoded. */
export function decodeGrpcMessage(value: unknown): string {
  if (typeof value !== 'string') return '';
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A non-200 HTTP status without a gRPC status (a proxy's answer, say). */
export class HttpStatusError extends Error {
  constructor(readonly status: unknown) {
    super(`Received HTTP status code ${String(status)}`);
    this.name = 'HttpStatusError';
  }
}

/** grpc-js's status for an HTTP status: 400 INTERNAL, 401, 403, 404, 429/502/503/504, else UNKNOWN. */
const httpStatuses: Record<number, number> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };

const { NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY } = http2.constants;
/** grpc-js's status for a stream the server reset (RST_STREAM) while the connection stayed up. */
const resets: Record<number, [number, string]> = {
  [NGHTTP2_NO_ERROR]: [13, 'Call ended without gRPC status'],
  [NGHTTP2_REFUSED_STREAM]: [14, 'Stream refused by server'],
  [NGHTTP2_CANCEL]: [1, 'Call cancelled'],
  [NGHTTP2_ENHANCE_YOUR_CALM]: [8, 'Bandwidth exhausted or memory limit exceeded'],
  [NGHTTP2_INADEQUATE_SECURITY]: [7, 'Protocol not secure enough'],
};

/** How a call's stream ended, as {@link endError} reads it. */
export interface StreamEnd {
  /** What failed on our side or the stream's error, if anything. */
  failure: Error | undefined;
  /** `grpc-status`, when one came. */
  status: number | undefined;
  grpcMessage: string;
  /** The stream's RST_STREAM code. */
  rstCode: number | undefined;
  /** The connection is gone (destroyed), not just the stream. */
  connectionLost: boolean;
}

/**
 * The error of a call that did not end with status OK: our own refusals (a message over the limit:
 * RESOURCE_EXHAUSTED; a compressed one: INTERNAL, final, an answer rather than silence), then the
 * gRPC status, then an HTTP status other than 200, then a lost connection (unreachable), then the
 * RST_STREAM code of a stream the server reset (REFUSED_STREAM → UNAVAILABLE, CANCEL → CANCELLED,
 * ENHANCE_YOUR_CALM → RESOURCE_EXHAUSTED, INADEQUATE_SECURITY → PERMISSION_DENIED, others → INTERNAL).
 */
export function endError(end: StreamEnd, endpoint: string): TransportError {
  const { failure, status } = end;
  if (failure instanceof MessageTooLargeError) return statusError(8, failure.message, endpoint);
  if (failure instanceof CompressedMessageError) return new TransportError(`13 INTERNAL: ${failure.message}`, { code: 'INTERNAL', kind: 'final', endpoint });
  if (status !== undefined && status !== 0) return statusError(status, end.grpcMessage, endpoint);
  if (failure instanceof HttpStatusError) return statusError(httpStatuses[Number(failure.status)] ?? 2, failure.message, endpoint);
  const reset = (failure === undefined || (failure as NodeJS.ErrnoException).code === 'ERR_HTTP2_STREAM_ERROR') && !end.connectionLost && status === undefined;
  if (!reset || end.rstCode === undefined) return connectionError(failure ?? new Error(`the stream closed without a status (HTTP/2 code ${end.rstCode})`), endpoint);
  const [code, text] = resets[end.rstCode] ?? [13, `Received RST_STREAM with code ${end.rstCode}`];
  return statusError(code, text, endpoint);
}
