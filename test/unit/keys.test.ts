// Key helpers, beyond src/internal/keys.test.ts: the exact messages, and prefixEnd at its edges.
import { describe, expect, test } from 'vitest';
import { isDirectChild, prefixEnd, queuePrefix } from '../../src/internal/keys.js';

describe('keys', () => {
  test('queuePrefix names the NUL-containing value, escaped', () => {
    expect(() => queuePrefix('a\0b', 'Election')).toThrow('Expected `name` of Election not to contain NUL, got `"a\\u0000b"`');
    expect(() => queuePrefix(7, 'Semaphore')).toThrow('Expected `name` of Semaphore to be a non-empty string, got `7`');
    expect(() => queuePrefix('x/', 'ReadWriteLock')).toThrow('Expected `name` of ReadWriteLock not to end with "/", got `x/`');
  });

  test('prefixEnd increments the last byte below 0xff and drops the 0xff bytes after it, without touching its input', () => {
    const input = Buffer.from([0x61, 0xfe, 0xff]);
    expect([...prefixEnd(input)]).toEqual([0x61, 0xff]);
    expect([...input]).toEqual([0x61, 0xfe, 0xff]);
    expect([...prefixEnd(Buffer.from([0x00]))]).toEqual([0x01]);
    expect([...prefixEnd(Buffer.alloc(0))]).toEqual([0]);
  });

  test('isDirectChild: a nested key, the prefix itself and a sibling prefix are not children', () => {
    expect(isDirectChild('a/b', 'a/')).toBe(true);
    expect(isDirectChild('a/b/', 'a/')).toBe(false);
    expect(isDirectChild('a/', 'a/')).toBe(false);
    expect(isDirectChild('ab/c', 'a/')).toBe(false);
  });
});
