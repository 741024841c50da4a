/**
 * The record every Semaphore participant writes into its waiter and holder keys — its `permits` and its
 * `weight` — and the one place such a record is read back. Anything read from etcd may have been
 * written by another program: a value that is not a valid record is refused with a sentence saying
 * why, never counted as free capacity.
 */

/** What every participant writes into its keys. */
export interface PermitRecord {
  permits: number;
  weight: number;
}

/** The value stored in a waiter's and a holder's key. */
export function encodeRecord(record: PermitRecord): Buffer {
  return Buffer.from(JSON.stringify({ permits: record.permits, weight: record.weight }));
}

/**
 * Parses a key's value: a record, or a sentence saying what is wrong with it. A valid record has
 * safe integers `1 <= weight <= permits`; anything else (another program's key, a hand-edited value)
 * is refused, never counted as free capacity.
 */
export function decodeRecord(value: Buffer): PermitRecord | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString());
  } catch {
    return `not a permit record (${value.length} bytes that are not JSON)`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'not a permit record (not a JSON object)';
  const { permits, weight } = parsed as Record<string, unknown>;
  if (!Number.isSafeInteger(permits) || (permits as number) < 1) {
    return `not a permit record (permits ${JSON.stringify(permits)} is not an integer >= 1)`;
  }
  if (!Number.isSafeInteger(weight) || (weight as number) < 1 || (weight as number) > (permits as number)) {
    return `not a permit record (weight ${JSON.stringify(weight)} is not an integer from 1 to permits ${permits as number})`;
  }
  return { permits: permits as number, weight: weight as number };
}
