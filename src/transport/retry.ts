/**
 * Which failures are transient (worth trying again), and the default retry policy for them. Both
 * adapters report failures as {@link TransportError}s of one kind (see `port.ts`), so this is the
 * one place that decides what a retry can fix.
 */
import { ExponentialBackoff, handleWhen, retry, type IPolicy } from 'cockatiel';
import { isLeaseholdError } from '../errors.js';
import { TransportError } from './port.js';

/** The error and its `cause` chain. */
export function* causes(error: unknown): Generator<unknown> {
  for (let e = error, depth = 0; e !== undefined && depth < 8; depth++) {
    yield e;
    e = e instanceof Error ? e.cause : undefined;
  }
}

/**
 * True for failures worth retrying: unreachable, deadline, leader change, overload, an etcd3 circuit
 * breaker open — a {@link TransportError} of kind `transient`, or the {@link EtcdUnavailableError}
 * one became.
 */
export function isTransientError(error: unknown): boolean {
  if (isLeaseholdError(error)) return error.name === 'EtcdUnavailableError';
  return error instanceof TransportError && error.kind === 'transient';
}

/** True when etcd says a lease does not exist (expired or revoked), also as the cause of another error. */
export function isLeaseNotFound(error: unknown): boolean {
  for (const e of causes(error)) {
    if (e instanceof TransportError ? e.kind === 'lease-not-found' : e instanceof Error && /requested lease not found|lease not found/i.test(e.message)) {
      return true;
    }
  }
  return false;
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
