/**
 * Key layout. Mutex and Election use etcd's own layout, `${name}/${leaseHex}` (lower-case hex, no
 * padding), the layout of Go's `concurrency.Mutex`/`Election` and of `etcdctl lock`/`etcdctl elect`,
 * so they interoperate. Names do not nest: the lock `jobs` ignores `jobs/nightly/<lease>`.
 *
 * Keys read back from etcd are compared as bytes, never as decoded text: a key another program wrote
 * need not be valid UTF-8, and two different byte strings can decode to the same text (both as
 * U+FFFD). Names themselves are checked to be well-formed Unicode (`checkName`), so the bytes of our
 * own keys are exactly the UTF-8 of the names they were made from.
 */
import { checkName } from './validate.js';

/** Lower-case hex of a lease id, no padding: the suffix etcd's own recipes use. */
export function leaseHex(leaseId: string | bigint): string {
  return BigInt(leaseId).toString(16);
}

/**
 * Validates a lock/election name and returns the queue prefix `${name}/`.
 * @throws TypeError/RangeError naming the value when it is not a non-empty, well-formed string of at
 * most 4096 UTF-8 bytes, without NUL or a trailing `/`.
 */
export function queuePrefix(name: unknown, what: string): string {
  return checkName(name, what);
}

export { prefixEnd } from '../transport/etcd.js';

const slash = 0x2f;

/**
 * True when `key` is exactly one segment below `prefix` (so `jobs/` does not see `jobs/a/b`), compared
 * as bytes. Strings are taken as UTF-8.
 */
export function isDirectChild(key: Buffer | string, prefix: Buffer | string): boolean {
  const k = typeof key === 'string' ? Buffer.from(key) : key;
  const p = typeof prefix === 'string' ? Buffer.from(prefix) : prefix;
  return k.length > p.length && k.subarray(0, p.length).equals(p) && !k.subarray(p.length).includes(slash);
}

/** A lossless map key for a key's bytes (latin1 maps every byte to one char and back). */
export function keyId(bytes: Buffer): string {
  return bytes.toString('latin1');
}
