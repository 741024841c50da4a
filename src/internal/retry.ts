/** Which etcd errors are transient, and the default retry policy for them. */
import { ExponentialBackoff, handleWhen, isBrokenCircuitError, retry, type IPolicy } from 'cockatiel';
import {
  EtcdLeaseInvalidError,
  GRPCDeadlineExceededError,
  GRPCInternalError,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
  GRPCCancelledError,
  isRecoverableError,
} from 'etcd3';

const transientMessage =
  /leader changed|request timed out|no leader|too many requests|timed out due to|connection (refused|reset)|ECONNREFUSED|ECONNRESET|unavailable|not capable|raft: stopped/i;

/** True for errors worth retrying: connection failures, deadlines, leader changes, overload. */
export function isTransientError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof EtcdLeaseInvalidError) return false;
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

/** True when etcd says a lease does not exist (expired or revoked). */
export function isLeaseNotFound(error: unknown): boolean {
  return (
    error instanceof EtcdLeaseInvalidError ||
    (error instanceof Error && /requested lease not found|lease not found/i.test(error.message))
  );
}

/**
 * The default policy for transient etcd errors: up to 12 attempts with exponential backoff from 25 ms
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
