/** Parsers for the command line's values: each names the flag and the value it refuses. */
import { maxTimerMs } from '../transport/abort.js';
import { UsageError } from './exit-codes.js';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration: `500ms`, `10s`, `2m`, `1h`, or a bare number of seconds (`1.5`). Returns milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * units[match[2] ?? 's']! : NaN;
  if (!(ms <= maxTimerMs)) {
    throw new UsageError(`${flag}: expected a duration such as 500ms, 10s, 2m or 1h, got ${JSON.stringify(text)}`);
  }
  return Math.round(ms);
}

/** A whole number from `min` up to `max`. */
export function parseInteger(text: string, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^[0-9]+$/.test(text.trim()) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag}: expected a whole number ${range}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** A duration in milliseconds as the flags take it: `10s` when whole seconds, else `1500ms`. */
export function showDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Checks the command to run (everything after `--`) before anything is taken: a program name, not an
 * empty string. (The arguments of a process cannot contain NUL, so nothing else can be wrong here;
 * whether the program exists is found out by running it: exit 126 or 127.)
 */
export function checkCommand(command: readonly string[]): void {
  if (command.length === 0 || command[0] === '') {
    throw new UsageError(`the command after -- must start with a program name, got ${JSON.stringify(command[0] ?? '')}`);
  }
}
