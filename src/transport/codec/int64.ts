/**
 * etcd's int64 fields between leasehold's types (`bigint`, decimal lease ids) and the generated
 * code's (`Long`, or a plain number when it fits). protobufjs decodes every int64 as a `Long` when the
 * `long` package is loaded (its CommonJS build requires it; `int64.test.ts` checks it): exact, where
 * a number would round lease ids above 2^53.
 */
import Long from 'long';

/** A decoded int64 (a `Long`, or a number from a default) as a bigint. */
export function big(value: Long | number | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(value);
  if (value.high === 0 && value.low >= 0) return BigInt(value.low);
  return value.toBigInt();
}

/** A decoded int64 as a number (TTLs, watch ids: small by nature). */
export function small(value: Long | number | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/**
 * A decoded int64 as a decimal string (lease and member ids), through a native bigint: `Long`'s own
 * `toString` divides in JavaScript, about 25× slower, and every answer's header carries a member id.
 */
export function decimal(value: Long | number | null | undefined): string {
  if (value === null || value === undefined) return '0';
  if (typeof value === 'number') return value.toString();
  const { low, high } = value;
  if (high === 0 && low >= 0) return low.toString();
  return ((BigInt(value.unsigned ? high >>> 0 : high) << 32n) | BigInt(low >>> 0)).toString();
}

const maxExact = BigInt(Number.MAX_SAFE_INTEGER);

/** A bigint for the encoder: a number while it is exact, else a `Long`. */
export function wire(value: bigint): Long | number {
  return value <= maxExact && value >= -maxExact ? Number(value) : Long.fromBigInt(value);
}

/** The last id {@link wireId} converted, and what it gave: a session puts its one lease id on every key. */
let lastId: string | undefined;
let lastWire: Long | number = 0;

/** A decimal id (lease) for the encoder; rejects anything that is not an int64 in decimal. */
export function wireId(id: string): Long | number {
  if (id === lastId) return lastWire; // checked and converted already; the encoder only reads a Long
  if (!/^-?\d{1,20}$/.test(id)) throw new TypeError(`Expected a decimal int64 id, got ${JSON.stringify(id)}`);
  // Long.fromString multiplies in JavaScript; a native bigint parses about 8× faster (same wrap-around).
  lastWire = id.length < 16 ? Number(id) : Long.fromBigInt(BigInt(id));
  lastId = id;
  return lastWire;
}
