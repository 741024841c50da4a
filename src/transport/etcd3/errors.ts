/**
 * What an `etcd3` error means to leasehold: each becomes a {@link TransportError} of one
 * {@link FailureKind}, naming the endpoint it came from, so one function above the adapters
 * (`explain.ts`) explains the failures of either adapter the same way.
 */
import { isBrokenCircuitError } from 'cockatiel';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCGenericError,
  GRPCInternalError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  isRecoverableError,
} from 'etcd3';
import { TransportError, type FailureKind } from '../port.js';

const transientMessage =
  /leader changed|request timed out|no leader|too many requests|timed out due to|connection (refused|reset)|ECONNREFUSED|ECONNRESET|unavailable|not capable|raft: stopped/i;

/**
 * RESOURCE_EXHAUSTED is etcd's "too many requests" (retry later) but also gRPC's "message larger than
 * max" and etcd's "database space exceeded": resending those fails the same way, and each failure
 * counts against `etcd3`'s host circuit breaker, so that one oversized request would lock every
 * session on the client out of etcd for 5 s.
 */
const finalMessage = /larger than max|space exceeded|too large|request is too large/i;

/**
 * A failed TLS handshake: a certificate refused by the server (none sent, or not signed by its CA) or
 * by us. gRPC reports it as UNAVAILABLE, like an unreachable host, but trying again cannot help.
 */
const tlsMessage = /alert bad certificate|certificate required|handshake failure|unknown ca|certificate verify failed|self[- ]signed certificate|unable to (get|verify)|CERT_|ERR_TLS|wrong version number|x509/i;

/** Whether `error` is a TLS handshake failure (see `tlsMessage`). */
export function isTlsFailure(error: unknown): boolean {
  return error instanceof Error && tlsMessage.test(error.message);
}

/** A refused user name or password, or an auth token that could not be renewed. */
function isAuthFailure(error: Error): boolean {
  return (
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof GRPCUnauthenticatedError ||
    /authentication failed|invalid user ID or password|user name is empty/i.test(error.message)
  );
}

function isLeaseInvalid(error: Error): boolean {
  return error instanceof EtcdLeaseInvalidError || /requested lease not found|lease not found/i.test(error.message);
}

/** True for an etcd3 error worth retrying: connection failures, deadlines, leader changes, overload. */
export function isTransientEtcd3Error(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (isLeaseInvalid(error) || isAuthFailure(error) || isTlsFailure(error)) return false;
  if (finalMessage.test(error.message)) return false;
  // etcd3 opens a host's circuit breaker for 5 s after three failed calls: an outage, not a verdict.
  if (isBrokenCircuitError(error)) return true;
  if (
    error instanceof GRPCUnavailableError ||
    error instanceof GRPCDeadlineExceededError ||
    error instanceof GRPCInternalError ||
    error instanceof GRPCResourceExhastedError ||
    error instanceof GRPCCancelledError ||
    isRecoverableError(error)
  ) {
    return true;
  }
  return transientMessage.test(error.message);
}

/** True for an error of the `etcd3` client (gRPC status, etcd error, breaker, closed client). */
export function fromEtcd3(error: unknown): error is Error {
  return (
    error instanceof GRPCGenericError ||
    error instanceof EtcdError ||
    error instanceof EtcdPermissionDeniedError ||
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof EtcdInvalidAuthTokenError ||
    error instanceof EtcdLeaseInvalidError ||
    error instanceof ClientClosedError ||
    (error instanceof Error && isRecoverableError(error)) ||
    // etcd3's host breakers are broken circuits; an isolated one is the caller's own policy's verdict.
    // (cockatiel 3's `isIsolatedCircuitError` tests the wrong property, so the marker is read here.)
    (isBrokenCircuitError(error) && !('isIsolatedCircuitError' in error)) ||
    (error instanceof Error && /^\d+ [A-Z_]+: /.test(error.message))
  );
}

/** The gRPC status name of an `etcd3` error (from its `"14 UNAVAILABLE: …"` message), or a stand-in. */
export function grpcCode(error: Error): string {
  if (isBrokenCircuitError(error)) return 'CIRCUIT_OPEN';
  if (error instanceof ClientClosedError) return 'CLIENT_CLOSED';
  return /^\d+ ([A-Z_]+):/.exec(error.message)?.[1] ?? error.constructor.name;
}

function kindOf(error: Error, code: string): FailureKind {
  if (isLeaseInvalid(error)) return 'lease-not-found';
  if (error instanceof EtcdPermissionDeniedError || code === 'PERMISSION_DENIED') return 'permission';
  if (isAuthFailure(error)) return 'auth';
  if (isTlsFailure(error)) return 'tls';
  if (isTransientEtcd3Error(error)) return 'transient';
  if (/compacted/i.test(error.message)) return 'compacted';
  return 'final';
}

/**
 * An `etcd3` error as the port's {@link TransportError} (the original as its `cause`), attributed to
 * `endpoint`; anything else (a programming error) is returned as it is.
 */
export function toTransportError(error: unknown, endpoint: string | undefined): unknown {
  if (error instanceof TransportError || !fromEtcd3(error)) return error;
  const code = grpcCode(error);
  const message = code === 'CIRCUIT_OPEN' ? `the etcd3 client's circuit breaker is open (${error.message})` : error.message;
  return new TransportError(message, { code, kind: kindOf(error, code), endpoint, cause: error });
}
