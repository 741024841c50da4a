/**
 * What a failed gRPC call means to leasehold: a gRPC status (from `grpc-status`/`grpc-message`, or the
 * stand-in for a connection that broke) becomes a {@link TransportError} of one {@link FailureKind},
 * naming the endpoint. etcd's error texts are its `rpctypes` (etcd 3.4); transient ones are the
 * same as the `etcd3` path retries.
 */
import { TransportError, type FailureKind } from '../port.js';

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
