/** Parsers for the command line's values: each names the flag and the value it refuses. */
import { maxTimerMs } from '../transport/abort.js';
import { UsageError } from './exit-codes.js';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration: `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds (`1.5`). Returns milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * units[match[2] ?? 's']! : NaN;
  if (!Number.isFinite(ms) || ms > maxTimerMs) {
    throw new UsageError(`${flag}: expected a duration such as 500ms, 10s, 2m or 1h, got ${JSON.stringify(text)}`);
  }
  return Math.round(ms);
}

/** A whole number from `min` up. */
export function parseInteger(text: string, flag: string, min: number): number {
  const n = /^[0-9]+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag}: expected a whole number of at least ${min}, got ${JSON.stringify(text)}`);
  }
  return n;
}
