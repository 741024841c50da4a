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
});
