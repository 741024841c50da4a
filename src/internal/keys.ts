/**
 * Key layout. Mutex and Election use etcd's own layout, `${name}/${leaseHex}` (lower-case hex, no
 * padding), the layout of Go's `concurrency.Mutex`/`Election` and of `etcdctl lock`/`etcdctl elect`,
 * so they interoperate. Names do not nest: the lock `jobs` ignores `jobs/nightly/<lease>`.
 */

/** Lower-case hex of a lease id, no padding: the suffix etcd's own recipes use. */
export function leaseHex(leaseId: string | bigint): string {
  return BigInt(leaseId).toString(16);
}

/**
 * Validates a lock/election name and returns the queue prefix `${name}/`.
 * @throws TypeError naming the value when it is not a non-empty string without a trailing `/`.
 */
export function queuePrefix(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`Expected \`name\` of ${what} to be a non-empty string, got \`${String(name)}\``);
  }
  if (name.endsWith('/')) {
    throw new TypeError(`Expected \`name\` of ${what} not to end with "/", got \`${name}\``);
  }
  if (name.includes('\0')) {
    throw new TypeError(`Expected \`name\` of ${what} not to contain NUL, got \`${JSON.stringify(name)}\``);
  }
  return `${name}/`;
}

/** The end of the etcd range holding every key that starts with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** True when `key` is exactly one segment below `prefix` (so `jobs/` does not see `jobs/a/b`). */
export function isDirectChild(key: string, prefix: string): boolean {
  return key.startsWith(prefix) && key.length > prefix.length && !key.includes('/', prefix.length);
}
