import { describe, expect, test } from 'vitest';
import { maxTimerMs } from '../transport/abort.js';
import { checkCommand, parseDuration, parseInteger, showDuration } from './args.js';
import { UsageError } from './exit-codes.js';

describe('parseDuration', () => {
  test.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5', 1500],
    ['0', 0],
    ['0ms', 0],
    [' 3s ', 3000],
    ['1.0004s', 1000],
    ['1.5ms', 2],
    [`${maxTimerMs}ms`, maxTimerMs],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text, '--timeout')).toBe(ms);
  });

  test.each(['', 's', '5 parsecs', '-1s', '1e3', '1.s', '.5', '10 s', '1sm', '1d', '0x10', `${maxTimerMs + 1}ms`, '596.6h'])('%j is refused, naming the flag and the value', (text) => {
    expect(() => parseDuration(text, '--kill-grace')).toThrow(new UsageError(`--kill-grace: expected a duration such as 500ms, 10s, 2m or 1h, got ${JSON.stringify(text)}`));
    expect(() => parseDuration(text, '--kill-grace')).toThrow(UsageError);
  });
});

describe('parseInteger', () => {
  test('a whole number from min (up to max), surrounding blanks ignored', () => {
    expect(parseInteger('1', '--ttl', 1)).toBe(1);
    expect(parseInteger(' 7 ', '--ttl', 1)).toBe(7);
    expect(parseInteger('0', '--n', 0)).toBe(0);
    expect(parseInteger('9000000000', '--ttl', 1, 9_000_000_000)).toBe(9_000_000_000);
    expect(parseInteger(String(Number.MAX_SAFE_INTEGER), '--permits', 1)).toBe(Number.MAX_SAFE_INTEGER);
  });

  test.each([
    ['0', 1, undefined, '--ttl: expected a whole number of at least 1, got "0"'],
    ['9000000001', 1, 9_000_000_000, '--ttl: expected a whole number from 1 to 9000000000, got "9000000001"'],
    ['9007199254740992', 1, undefined, '--ttl: expected a whole number of at least 1, got "9007199254740992"'],
    ['1.5', 1, undefined, '--ttl: expected a whole number of at least 1, got "1.5"'],
    ['-1', 0, undefined, '--ttl: expected a whole number of at least 0, got "-1"'],
    ['', 0, undefined, '--ttl: expected a whole number of at least 0, got ""'],
    ['ten', 1, 5, '--ttl: expected a whole number from 1 to 5, got "ten"'],
    ['6', 1, 5, '--ttl: expected a whole number from 1 to 5, got "6"'],
  ])('%j (min %d, max %s) is refused', (text, min, max, message) => {
    expect(() => parseInteger(text, '--ttl', min, max)).toThrow(new UsageError(message));
  });
});

test('showDuration writes whole seconds as seconds, anything else in ms', () => {
  expect(showDuration(0)).toBe('0s');
  expect(showDuration(10_000)).toBe('10s');
  expect(showDuration(1500)).toBe('1500ms');
  expect(showDuration(999)).toBe('999ms');
});

describe('checkCommand', () => {
  test('a program name first passes; arguments may be anything, empty included', () => {
    expect(() => checkCommand(['true'])).not.toThrow();
    expect(() => checkCommand(['sh', '', '-c'])).not.toThrow();
  });

  test.each([[[]], [['']], [['', 'true']]])('%j is refused before anything is taken', (command) => {
    expect(() => checkCommand(command)).toThrow(new UsageError('the command after -- must start with a program name, got ""'));
  });
});
