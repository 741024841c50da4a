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

/**
 * How many ids {@link IdTexts} and {@link wireId} remember: a client sees few lease and member ids
 * (its sessions', its contenders', its members'), again and again; past this many they start over.
 */
const rememberedIds = 256;

/**
 * {@link decimal} for ids (member ids, the leases of keys read back), remembering the text of each id
 * converted lately: keyed by its low 32 bits and checked against the rest, so that one with other
 * high bits is converted, never mistaken.
 */
export class IdTexts {
  readonly #byLow = new Map<number, { high: number; unsigned: boolean; text: string }>();

  of(value: Long | number | null | undefined): string {
    if (typeof value !== 'object' || value === null) return decimal(value);
    const { low, high, unsigned } = value;
    if (high === 0 && low >= 0) return low.toString();
    const known = this.#byLow.get(low);
    if (known !== undefined && known.high === high && known.unsigned === unsigned) return known.text;
    if (this.#byLow.size >= rememberedIds) this.#byLow.clear();
    const text = decimal(value);
    this.#byLow.set(low, { high, unsigned, text });
    return text;
  }
}

/** What {@link wireId} gave for the ids it converted lately: a session puts its one lease id on every key. */
const wireIds = new Map<string, Long | number>();

/** A decimal id (lease) for the encoder; rejects anything that is not an int64 in decimal. */
export function wireId(id: string): Long | number {
  const known = wireIds.get(id); // checked and converted already; the encoder only reads a Long
  if (known !== undefined) return known;
  if (!/^-?\d{1,20}$/.test(id)) throw new TypeError(`Expected a decimal int64 id, got ${JSON.stringify(id)}`);
  // Long.fromString multiplies in JavaScript; a native bigint parses about 8× faster (same wrap-around).
  const converted = id.length < 16 ? Number(id) : Long.fromBigInt(BigInt(id));
  if (wireIds.size >= rememberedIds) wireIds.clear();
  wireIds.set(id, converted);
  return converted;
}
