import { describe, expect, test } from 'vitest';
import {
  checkFunction,
  checkInteger,
  checkMs,
  checkName,
  checkOptions,
  checkRequiredOptions,
  checkSignal,
  checkText,
  loneSurrogateAt,
  maxNameBytes,
  maxValueBytes,
  show,
  signalOption,
} from './validate.js';

class Thing {}

describe('show: a value in an error message, with its type where that matters', () => {
  test('strings are quoted, long ones cut at 64 characters with their length', () => {
    expect(show('10')).toBe('the string "10"');
    expect(show('a"b')).toBe('the string "a\\"b"');
    expect(show('x'.repeat(64))).toBe(`the string "${'x'.repeat(64)}"`);
    expect(show('x'.repeat(65))).toBe(`the string "${'x'.repeat(64)}…" (65 characters)`);
  });

  test('other primitives in backquotes; functions, arrays and objects by kind; class instances by class', () => {
    expect(show(10n)).toBe('`10n`');
    expect(show(() => 1)).toBe('a function');
    expect(show(Symbol('s'))).toBe('`Symbol(s)`');
    expect(show(null)).toBe('`null`');
    expect(show(undefined)).toBe('`undefined`');
    expect(show(1.5)).toBe('`1.5`');
    expect(show(false)).toBe('`false`');
    expect(show([1])).toBe('an array');
    expect(show({ a: 1 })).toBe('an object');
    expect(show(Object.create(null))).toBe('an object');
    expect(show(new Thing())).toBe('an instance of Thing');
    expect(show({ constructor: { name: 42 } })).toBe('an object');
  });
});

describe('checkOptions: undefined or a plain object of known keys', () => {
  const known = ['ttl', 'signal', 'keepAliveInterval'] as const;

  test('returns the options, {} for undefined', () => {
    const options = { ttl: 5 };
    expect(checkOptions(options, 'Session.create', known)).toBe(options);
    expect(checkOptions(undefined, 'Session.create', known)).toEqual({});
    expect(checkOptions({}, 'Session.create', known)).toEqual({});
  });

  test('refuses null, arrays and primitives, naming the call and the value', () => {
    expect(() => checkOptions(null as never, 'Session.create', known)).toThrow(new TypeError('Expected the options of Session.create to be an object, got `null`'));
    expect(() => checkOptions([] as never, 'Session.create', known)).toThrow('Expected the options of Session.create to be an object, got an array');
    expect(() => checkOptions(5 as never, 'Session.create', known)).toThrow('got `5`');
    expect(() => checkOptions('x' as never, 'Session.create', known)).toThrow(TypeError);
  });

  test('an unknown key is an error naming it and the known ones, with the closest within 2 edits', () => {
    expect(() => checkOptions({ tll: 5 } as never, 'Session.create', known)).toThrow(
      new TypeError('Unknown option `tll` of Session.create (known: ttl, signal, keepAliveInterval); did you mean `ttl`?'),
    );
    expect(() => checkOptions({ keepaliveInterval: 5 } as never, 'Session.create', known)).toThrow('; did you mean `keepAliveInterval`?');
    expect(() => checkOptions({ sgnl: 5 } as never, 'X', known)).toThrow('Unknown option `sgnl` of X (known: ttl, signal, keepAliveInterval); did you mean `signal`?');
    // Three edits away: no suggestion.
    expect(() => checkOptions({ timeout: 5 } as never, 'X', known)).toThrow(/^Unknown option `timeout` of X \(known: ttl, signal, keepAliveInterval\)$/);
    expect(() => checkOptions({ abc: 5 } as never, 'X', ['a'])).toThrow(/^Unknown option `abc` of X \(known: a\); did you mean `a`\?$/);
    expect(() => checkOptions({ abcd: 5 } as never, 'X', ['a'])).toThrow(/^Unknown option `abcd` of X \(known: a\)$/);
    expect(() => checkOptions({ x: 1 } as never, 'X', [])).toThrow(/^Unknown option `x` of X \(known: \)$/);
  });

  test('the suggestion is the nearest known name, by edit distance', () => {
    expect(() => checkOptions({ permit: 1 } as never, 'X', ['weight', 'permits', 'signal'])).toThrow('did you mean `permits`?');
    expect(() => checkOptions({ singal: 1 } as never, 'X', ['signal', 'single'])).toThrow('did you mean `signal`?');
    expect(() => checkOptions({ sigle: 1 } as never, 'X', ['signal', 'single'])).toThrow('did you mean `single`?');
    expect(() => checkOptions({ ab: 1 } as never, 'X', ['b', 'abc'])).toThrow('did you mean `b`?');
    expect(() => checkOptions({ kitten: 1 } as never, 'X', ['sitting'])).toThrow(/\(known: sitting\)$/);
    expect(() => checkOptions({ kitten: 1 } as never, 'X', ['sittin'])).toThrow('did you mean `sittin`?');
    // The known list itself is not reordered.
    const list = ['b', 'a'];
    expect(() => checkOptions({ c: 1 } as never, 'X', list)).toThrow('(known: b, a)');
    expect(list).toEqual(['b', 'a']);
  });
});

describe('checkRequiredOptions', () => {
  test('missing options name every required key; otherwise as checkOptions', () => {
    expect(() => checkRequiredOptions(undefined, 'Semaphore', ['permits'])).toThrow(new TypeError('Expected the options of Semaphore to be an object with `permits`, got `undefined`'));
    expect(() => checkRequiredOptions(undefined, 'X', ['a', 'b'])).toThrow('an object with `a`, `b`, got');
    expect(checkRequiredOptions({ permits: 2 }, 'Semaphore', ['permits'])).toEqual({ permits: 2 });
    expect(() => checkRequiredOptions({ permit: 2 } as never, 'Semaphore', ['permits'])).toThrow('Unknown option `permit`');
  });
});

describe('numbers', () => {
  test('checkInteger: a safe integer in range; the type is a TypeError, the range a RangeError', () => {
    expect(checkInteger('ttl', 1, 1)).toBe(1);
    expect(checkInteger('ttl', 9, 1, 9)).toBe(9);
    expect(checkInteger('n', Number.MAX_SAFE_INTEGER, 0)).toBe(Number.MAX_SAFE_INTEGER);
    expect(() => checkInteger('ttl', '10', 1)).toThrow(new TypeError('Expected `ttl` to be an integer, got the string "10"'));
    expect(() => checkInteger('ttl', 1.5, 1)).toThrow(new TypeError('Expected `ttl` to be an integer, got `1.5`'));
    expect(() => checkInteger('ttl', 2 ** 53, 1)).toThrow(TypeError);
    expect(() => checkInteger('ttl', Number.NaN, 1)).toThrow(TypeError);
    expect(() => checkInteger('ttl', 0, 1)).toThrow(new RangeError('Expected `ttl` to be an integer >= 1, got `0`'));
    expect(() => checkInteger('weight', 4, 1, 3)).toThrow(new RangeError('Expected `weight` to be an integer from 1 to 3, got `4`'));
    expect(() => checkInteger('weight', 0, 1, 3)).toThrow(new RangeError('Expected `weight` to be an integer from 1 to 3, got `0`'));
  });

  test('checkMs: a finite number > 0, or >= 0 when zero is allowed', () => {
    expect(checkMs('interval', 0.5)).toBe(0.5);
    expect(checkMs('margin', 0, true)).toBe(0);
    expect(() => checkMs('interval', '5')).toThrow(new TypeError('Expected `interval` to be a number of milliseconds, got the string "5"'));
    expect(() => checkMs('interval', Number.NaN)).toThrow(new TypeError('Expected `interval` to be a number of milliseconds, got `NaN`'));
    expect(() => checkMs('interval', 0)).toThrow(new RangeError('Expected `interval` to be a finite number of milliseconds > 0, got `0`'));
    expect(() => checkMs('margin', -1, true)).toThrow(new RangeError('Expected `margin` to be a finite number of milliseconds >= 0, got `-1`'));
    expect(() => checkMs('interval', -1)).toThrow(RangeError);
    expect(() => checkMs('interval', Number.POSITIVE_INFINITY)).toThrow('got `Infinity`');
    expect(() => checkMs('margin', Number.POSITIVE_INFINITY, true)).toThrow(RangeError);
  });
});

describe('signals and callbacks', () => {
  test('checkSignal accepts an AbortSignal or nothing', () => {
    expect(() => checkSignal(undefined, 'X')).not.toThrow();
    expect(() => checkSignal(new AbortController().signal, 'X')).not.toThrow();
    expect(() => checkSignal({ aborted: false }, 'Mutex.lock')).toThrow(new TypeError('Expected `signal` of Mutex.lock to be an AbortSignal, got an object'));
    expect(() => checkSignal(null, 'X')).toThrow('got `null`');
  });

  test('signalOption returns the signal of options that hold nothing else', () => {
    const signal = AbortSignal.abort();
    expect(signalOption({ signal }, 'X')).toBe(signal);
    expect(signalOption(undefined, 'X')).toBeUndefined();
    expect(signalOption({}, 'X')).toBeUndefined();
    expect(() => signalOption({ signal: 'no' } as never, 'Barrier.wait')).toThrow('Expected `signal` of Barrier.wait to be an AbortSignal, got the string "no"');
    expect(() => signalOption({ signl: signal } as never, 'Barrier.wait')).toThrow('Unknown option `signl` of Barrier.wait (known: signal); did you mean `signal`?');
  });

  test('checkFunction', () => {
    expect(() => checkFunction(() => 1, '`fn`')).not.toThrow();
    expect(() => checkFunction(42, '`fn` of Mutex.withLock')).toThrow(new TypeError('Expected `fn` of Mutex.withLock to be a function, got `42`'));
  });
});

describe('text that becomes etcd bytes', () => {
  test('loneSurrogateAt finds the first unpaired surrogate, -1 for well-formed text', () => {
    expect(loneSurrogateAt('')).toBe(-1);
    expect(loneSurrogateAt('abc')).toBe(-1);
    expect(loneSurrogateAt('a😀b')).toBe(-1);
    expect(loneSurrogateAt('😀😀')).toBe(-1);
    expect(loneSurrogateAt('\ud83d')).toBe(0); // a high surrogate at the end
    expect(loneSurrogateAt('ab\ud83d')).toBe(2);
    expect(loneSurrogateAt('a\ud83dx')).toBe(1); // followed by no low surrogate
    expect(loneSurrogateAt('a\ud83d\ud83d\ude00')).toBe(1); // two highs, then a low: the first is lone
    expect(loneSurrogateAt('\ude00a')).toBe(0); // a low surrogate first
    expect(loneSurrogateAt('\udc00\udc00')).toBe(0); // two lows are no pair
    expect(loneSurrogateAt('a\udfff\udc00')).toBe(1);
    expect(loneSurrogateAt('😀\ude00')).toBe(2);
    // The edges of the surrogate ranges.
    expect(loneSurrogateAt('\ud7ff\ue000')).toBe(-1);
    expect(loneSurrogateAt('\ud800\udc00')).toBe(-1);
    expect(loneSurrogateAt('\udbff\udfff')).toBe(-1);
    expect(loneSurrogateAt('\udc00')).toBe(0);
    expect(loneSurrogateAt('\udfff')).toBe(0);
    expect(loneSurrogateAt('\ud800\ud7ff')).toBe(0);
    expect(loneSurrogateAt('\ud800\ue000')).toBe(0);
  });

  test('checkText: a well-formed string of at most maxBytes of UTF-8', () => {
    expect(checkText('é', '`value`', 2)).toBe('é');
    expect(() => checkText('é', '`value`', 1)).toThrow(new RangeError('Expected `value` to be at most 1 bytes of UTF-8, got 2 bytes (the string "é")'));
    expect(() => checkText(5, '`value` of Election.campaign', 10)).toThrow(new TypeError('Expected `value` of Election.campaign to be a string, got `5`'));
    expect(() => checkText('a\ud83d', '`name`', 100)).toThrow(
      new TypeError('Expected `name` to be well-formed Unicode, got the string "a\\ud83d" with a lone surrogate U+D83D at index 1 (was a surrogate pair cut in two?)'),
    );
    expect(() => checkText('\ude00', '`name`', 100)).toThrow('lone surrogate U+DE00 at index 0');
    expect(maxValueBytes).toBe(32 * 1024);
  });

  test('checkName: returns the queue prefix; refuses empty, non-strings, a trailing slash, NUL, lone surrogates and > 4096 bytes', () => {
    expect(checkName('jobs', 'Mutex')).toBe('jobs/');
    expect(checkName('a/b', 'Mutex')).toBe('a/b/');
    expect(checkName('é'.repeat(maxNameBytes / 2), 'Mutex')).toBe(`${'é'.repeat(maxNameBytes / 2)}/`);
    expect(() => checkName('é'.repeat(maxNameBytes / 2) + 'x', 'Mutex')).toThrow(new RangeError(`Expected \`name\` of Mutex to be at most 4096 bytes of UTF-8, got 4097 bytes (${show(`${'é'.repeat(maxNameBytes / 2)}x`)})`));
    expect(() => checkName('', 'Mutex')).toThrow(new TypeError('Expected `name` of Mutex to be a non-empty string, got the string ""'));
    expect(() => checkName(undefined, 'Election')).toThrow(new TypeError('Expected `name` of Election to be a non-empty string, got `undefined`'));
    expect(() => checkName('a/', 'Mutex')).toThrow(new TypeError('Expected `name` of Mutex not to end with "/", got the string "a/"'));
    expect(() => checkName('a\0b', 'Mutex')).toThrow(new TypeError('Expected `name` of Mutex not to contain NUL, got the string "a\\u0000b"'));
    expect(() => checkName('a\ud83d', 'Mutex')).toThrow('Expected `name` of Mutex to be well-formed Unicode');
  });
});
