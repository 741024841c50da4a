/**
 * Per-acquisition key suffixes for the primitives whose holders may share a lease: a Semaphore (one
 * Session may hold several permits at once) and a ReadWriteLock (two readers on one Session share).
 *
 * The suffix is `${leaseHex}-${processNonce}${counter}`: the lease first, so `etcdctl get --prefix`
 * shows whose key it is; a random nonce per process, so two processes that adopted the same lease
 * (`SessionOptions.leaseId`) never pick the same name; a counter, so no two acquisitions of this
 * process do. A retried enqueue reuses the suffix it was given, so the put stays idempotent.
 */
import { randomBytes } from 'node:crypto';

let nonce: string | undefined;
let counter = 0;

/** A suffix no other acquisition on any lease uses: `${leaseHex}-${nonce}${counter}`. */
export function acquisitionSuffix(leaseHex: string): string {
  nonce ??= randomBytes(4).toString('hex');
  return `${leaseHex}-${nonce}${(counter++).toString(36)}`;
}
