/**
 * Checking what users hand us, in one place: option objects (unknown keys are refused, with a
 * suggestion), numbers, signals, callbacks, names and values. Every failure is a `TypeError` or
 * `RangeError` whose message names the option and shows the value received, including its type when
 * that is the problem (``Expected `ttl` to be an integer >= 1, got the string "10"``).
 */
import type { IBackoffFactory } from 'cockatiel';

/** The longest name a primitive accepts, in UTF-8 bytes (its keys add a suffix of about 40 bytes). */
export const maxNameBytes = 4096;

/**
 * The largest election value (campaigned or proclaimed) in UTF-8 bytes. Values are for an identity or
 * an address: every observer reads the values of all contenders in one response, which gRPC caps at
 * 4 MiB, and an oversized response would fail on every retry. Store larger data elsewhere and proclaim
 * a pointer to it.
 */
export const maxValueBytes = 32 * 1024;

/** A short rendering of any value for an error message, saying what type it was when that matters. */
export function show(value: unknown): string {
  if (typeof value === 'string') {
    const json = JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value);
    return `the string ${json}${value.length > 64 ? ` (${value.length} characters)` : ''}`;
  }
  if (typeof value === 'bigint') return `\`${value}n\``;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return `\`${String(value)}\``;
  if (value === null || typeof value !== 'object') return `\`${String(value)}\``;
  if (Array.isArray(value)) return 'an array';
  const ctor = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof ctor === 'string' && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object';
}

/** Edit distance, for "did you mean" on misspelled option names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * Checks that `options` is undefined or a plain object whose keys are all in `known`, and returns it
 * (`{}` for undefined). A misspelled option is an error, never silently ignored.
 * @throws TypeError naming `where` and the unknown key (with the closest known one).
 */
export function checkOptions<T extends object>(options: T | undefined, where: string, known: readonly string[]): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`Expected the options of ${where} to be an object, got ${show(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const closest = [...known].sort((a, b) => distance(key, a) - distance(key, b))[0];
    const hint = closest !== undefined && distance(key, closest) <= 2 ? `; did you mean \`${closest}\`?` : '';
    throw new TypeError(`Unknown option \`${key}\` of ${where} (known: ${known.join(', ')})${hint}`);
  }
  return options;
}

/**
 * As {@link checkOptions}, for an options object that must be given (it holds a required option).
 * @throws TypeError naming `where` when `options` is missing or not an object, or has an unknown key.
 */
export function checkRequiredOptions<T extends object>(options: T | undefined, where: string, known: readonly string[]): T {
  if (options === undefined) {
    throw new TypeError(`Expected the options of ${where} to be an object with \`${known.join('`, `')}\`, got \`undefined\``);
  }
  return checkOptions(options, where, known);
}

/** An integer in `[min, max]` (safe integers only). */
export function checkInteger(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new TypeError(`Expected \`${name}\` to be an integer, got ${show(value)}`);
  }
  if (value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new RangeError(`Expected \`${name}\` to be an integer ${range}, got \`${value}\``);
  }
  return value;
}

/** A finite number of milliseconds, `> 0` (or `>= 0` when `zero` is allowed). */
export function checkMs(name: string, value: unknown, zero = false): number {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`Expected \`${name}\` to be a number of milliseconds, got ${show(value)}`);
  }
  if (!Number.isFinite(value) || value < 0 || (!zero && value === 0)) {
    throw new RangeError(`Expected \`${name}\` to be a finite number of milliseconds ${zero ? '>= 0' : '> 0'}, got \`${value}\``);
  }
  return value;
}

/** Throws a TypeError naming the value when `signal` is given but is not an AbortSignal. */
export function checkSignal(signal: unknown, where: string): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Expected \`signal\` of ${where} to be an AbortSignal, got ${show(signal)}`);
  }
}

/**
 * The options of a call whose only option is `signal`: checks them (no other key, an AbortSignal or
 * nothing) and returns the signal.
 */
export function signalOption(options: { signal?: AbortSignal } | undefined, where: string): AbortSignal | undefined {
  const { signal } = checkOptions(options, where, ['signal']);
  checkSignal(signal, where);
  return signal;
}

/** Throws a TypeError naming the value when `fn` is not a function; `label` as for {@link checkText}. */
export function checkFunction(fn: unknown, label: string): asserts fn is (...args: never[]) => unknown {
  if (typeof fn !== 'function') throw new TypeError(`Expected ${label} to be a function, got ${show(fn)}`);
}

/** The index of the first lone surrogate in `s`, or -1 when `s` is well-formed UTF-16. */
export function loneSurrogateAt(s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    return i;
  }
  return -1;
}

/**
 * Checks text that becomes etcd bytes (a name, a value): a string, well-formed Unicode (a lone
 * surrogate would be written as U+FFFD, so the key read back would no longer match the name it was
 * made from), at most `maxBytes` of UTF-8. `label` names it in messages, e.g. "`value` of Election.campaign".
 */
export function checkText(value: unknown, label: string, maxBytes: number): string {
  if (typeof value !== 'string') throw new TypeError(`Expected ${label} to be a string, got ${show(value)}`);
  const at = loneSurrogateAt(value);
  if (at >= 0) {
    const unit = value.charCodeAt(at).toString(16).toUpperCase();
    throw new TypeError(
      `Expected ${label} to be well-formed Unicode, got ${show(value)} with a lone surrogate U+${unit} at index ${at} (was a surrogate pair cut in two?)`,
    );
  }
  const bytes = Buffer.byteLength(value);
  if (bytes > maxBytes) {
    throw new RangeError(`Expected ${label} to be at most ${maxBytes} bytes of UTF-8, got ${bytes} bytes (${show(value)})`);
  }
  return value;
}

/**
 * Validates a primitive's name and returns its queue prefix `${name}/`: a non-empty, well-formed
 * string of at most {@link maxNameBytes} UTF-8 bytes, without NUL and without a trailing `/`.
 */
export function checkName(name: unknown, what: string): string {
  const where = `\`name\` of ${what}`;
  if (typeof name !== 'string' || name.length === 0) {
    throw new TypeError(`Expected ${where} to be a non-empty string, got ${show(name)}`);
  }
  checkText(name, where, maxNameBytes);
  if (name.endsWith('/')) throw new TypeError(`Expected ${where} not to end with "/", got ${show(name)}`);
  if (name.includes('\0')) throw new TypeError(`Expected ${where} not to contain NUL, got ${show(name)}`);
  return `${name}/`;
}

/** `value`, a cockatiel `IBackoffFactory` (anything with `next`), or `fallback()` when undefined. */
export function checkBackoff(value: unknown, fallback: () => IBackoffFactory<unknown>): IBackoffFactory<unknown> {
  if (value === undefined) return fallback();
  if (typeof value !== 'object' || value === null || typeof (value as IBackoffFactory<unknown>).next !== 'function') {
    throw new TypeError(`Expected \`backoff\` to be a cockatiel IBackoffFactory, got ${show(value)}`);
  }
  return value as IBackoffFactory<unknown>;
}
