/**
 * Which etcd errors are transient, the default retry policy for them, and how an `etcd3` error that
 * outlasted the retries becomes a leasehold error naming the endpoint and the gRPC status.
 */
import { ExponentialBackoff, handleWhen, isBrokenCircuitError, retry, type IPolicy } from 'cockatiel';
import {
  ClientClosedError,
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCUnauthenticatedError,
  GRPCDeadlineExceededError,
  GRPCGenericError,
  GRPCInternalError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
  GRPCCancelledError,
  isRecoverableError,
  type Namespace,
} from 'etcd3';
import {
  AuthenticationError,
  EtcdRequestError,
  EtcdUnavailableError,
  isLeaseholdError,
  PermissionDeniedError,
  TlsError,
} from '../errors.js';
import { authUserOf, endpointOf, endpointsOf } from './pool.js';

const transientMessage =
  /leader changed|request timed out|no leader|too many requests|timed out due to|connection (refused|reset)|ECONNREFUSED|ECONNRESET|unavailable|not capable|raft: stopped/i;

/**
 * RESOURCE_EXHAUSTED is etcd's "too many requests" (retry later) but also gRPC's "message larger than
 * max" and etcd's "database space exceeded": resending those fails the same way, and each failure
 * counts against `etcd3`'s host circuit breaker, so that one oversized request would lock every
 * session on the client out of etcd for 5 s.
 */
const finalMessage = /larger than max|space exceeded|too large|request is too large/i;

/** The error and its `cause` chain. */
export function* causes(error: unknown): Generator<unknown> {
  for (let e = error, depth = 0; e !== undefined && depth < 8; depth++) {
    yield e;
    e = e instanceof Error ? e.cause : undefined;
  }
}

/**
 * A failed TLS handshake: a certificate refused by the server (none sent, or not signed by its CA) or
 * by us. gRPC reports it as UNAVAILABLE, like an unreachable host, but trying again cannot help.
 */
const tlsMessage = /alert bad certificate|certificate required|handshake failure|unknown ca|certificate verify failed|self[- ]signed certificate|unable to (get|verify)|CERT_|ERR_TLS|wrong version number|x509/i;

/** Whether `error` is a TLS handshake failure (see `tlsMessage`). */
export function isTlsFailure(error: unknown): boolean {
  return error instanceof Error && tlsMessage.test(error.message);
}

/** True for errors worth retrying: connection failures, deadlines, leader changes, overload. */
export function isTransientError(error: unknown): boolean {
  if (isLeaseholdError(error)) return error.name === 'EtcdUnavailableError';
  if (!(error instanceof Error)) return false;
  if (error instanceof EtcdLeaseInvalidError) return false;
  if (isAuthFailure(error) || isTlsFailure(error)) return false;
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

/** True when etcd says a lease does not exist (expired or revoked), also as the cause of another error. */
export function isLeaseNotFound(error: unknown): boolean {
  for (const e of causes(error)) {
    if (e instanceof EtcdLeaseInvalidError || (e instanceof Error && /requested lease not found|lease not found/i.test(e.message))) {
      return true;
    }
  }
  return false;
}

/** A refused user name or password, or an auth token that could not be renewed. */
function isAuthFailure(error: Error): boolean {
  return (
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof GRPCUnauthenticatedError ||
    /authentication failed|invalid user ID or password|user name is empty/i.test(error.message)
  );
}

/** True for an error of the `etcd3` client (gRPC status, etcd error, breaker, closed client). */
function fromEtcd3(error: unknown): error is Error {
  return (
    error instanceof GRPCGenericError ||
    error instanceof EtcdError ||
    error instanceof EtcdPermissionDeniedError ||
    error instanceof EtcdAuthenticationFailedError ||
    error instanceof EtcdInvalidAuthTokenError ||
    error instanceof ClientClosedError ||
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

/**
 * The error a leasehold call reports when an etcd call failed for good: an `etcd3` error becomes
 * {@link EtcdUnavailableError} (transient) or {@link EtcdRequestError} (final), naming the endpoint
 * and the gRPC status, with the original as `cause`. Anything else (a leasehold error, a lease that
 * etcd says is gone, a programming error) is returned as it is.
 */
export function explainEtcdError(error: unknown, ns: Namespace, key?: string): unknown {
  if (!fromEtcd3(error) || isLeaseNotFound(error)) return error;
  const last = endpointOf(error);
  const endpoints = last === undefined ? endpointsOf(ns) : [last];
  const code = grpcCode(error);
  const at = `etcd at ${endpoints.length > 0 ? endpoints.join(', ') : '(unknown endpoint)'}`;
  const options = { endpoints, code, cause: error };
  if (error instanceof EtcdPermissionDeniedError || code === 'PERMISSION_DENIED') {
    const what = key === undefined ? 'the request' : `access to ${JSON.stringify(key)}`;
    return new PermissionDeniedError(`${at} denied ${what}: ${error.message} (the user lacks a permission on it; see docs/security.md)`, { ...options, key });
  }
  if (isAuthFailure(error)) {
    const user = authUserOf(ns);
    return new AuthenticationError(`${at} refused to authenticate${user === undefined ? '' : ` user ${JSON.stringify(user)}`}: ${error.message}`, options);
  }
  if (isTlsFailure(error)) {
    return new TlsError(`TLS handshake with ${at} failed — a certificate was refused (no client certificate, one its CA did not sign, or a server certificate our CA does not verify): ${error.message}`, options);
  }
  if (isTransientError(error)) {
    const detail = code === 'CIRCUIT_OPEN' ? `the etcd3 client's circuit breaker is open (${error.message})` : error.message;
    return new EtcdUnavailableError(`${at} unavailable: ${detail}`, options);
  }
  return new EtcdRequestError(`${at} refused the request: ${error.message}`, options);
}

/**
 * The default policy for transient etcd errors: up to 12 retries with exponential backoff from 25 ms
 * to 1 s (about 6.5 s in all: long enough to ride out the 5 s that etcd3's default host circuit
 * breaker stays open). Every call leasehold makes is idempotent by construction, so a retry after an
 * ambiguous outcome is safe; retries also stop as soon as the session's lease is lost.
 */
export function defaultRetryPolicy(): IPolicy {
  return retry(handleWhen(isTransientError), {
    maxAttempts: 12,
    backoff: new ExponentialBackoff({ initialDelay: 25, maxDelay: 1000 }),
  });
}
