import { describe, expect, test } from 'vitest';
import { isDirectChild, leaseHex, prefixEnd, queuePrefix } from './keys.js';

describe('keys', () => {
  test('leaseHex is lower-case hex without padding, as etcd’s recipes write it', () => {
    expect(leaseHex('7587869354587438')).toBe('1af520817b752e');
    expect(leaseHex('1')).toBe('1');
    expect(leaseHex(255n)).toBe('ff');
  });

  test('prefixEnd is the first key after every key with the prefix', () => {
    expect(prefixEnd(Buffer.from('jobs/')).toString()).toBe('jobs0');
    expect([...prefixEnd(Buffer.from([0x61, 0xff]))]).toEqual([0x62]);
    expect([...prefixEnd(Buffer.from([0xff, 0xff]))]).toEqual([0]);
  });

  test('isDirectChild sees one segment below the prefix only, so names do not nest', () => {
    expect(isDirectChild('jobs/1af5', 'jobs/')).toBe(true);
    expect(isDirectChild('jobs/nightly/1af5', 'jobs/')).toBe(false);
    expect(isDirectChild('jobs/', 'jobs/')).toBe(false);
    expect(isDirectChild('jobsx/1af5', 'jobs/')).toBe(false);
  });

  test('queuePrefix rejects bad names, naming the value', () => {
    expect(queuePrefix('jobs', 'Mutex')).toBe('jobs/');
    expect(() => queuePrefix('', 'Mutex')).toThrow('Expected `name` of Mutex to be a non-empty string, got the string ""');
    expect(() => queuePrefix('a/', 'Mutex')).toThrow('got the string "a/"');
    expect(() => queuePrefix(undefined, 'Mutex')).toThrow('got `undefined`');
    expect(() => queuePrefix('a\0b', 'Mutex')).toThrow(TypeError);
  });

  test('queuePrefix names the NUL-containing value, escaped', () => {
    expect(() => queuePrefix('a\0b', 'Election')).toThrow('Expected `name` of Election not to contain NUL, got the string "a\\u0000b"');
    expect(() => queuePrefix(7, 'Semaphore')).toThrow('Expected `name` of Semaphore to be a non-empty string, got `7`');
    expect(() => queuePrefix('x/', 'ReadWriteLock')).toThrow('Expected `name` of ReadWriteLock not to end with "/", got the string "x/"');
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
