import { describe, expect, test } from 'vitest';
import { lockSpec, splitOperands } from './lock.js';

describe('splitOperands', () => {
  test('names before --, the command after it', () => {
    expect(splitOperands(['a', 'b', 'c', 'sh', '-c', 'x'], ['sh', '-c', 'x'])).toEqual({ names: ['a', 'b', 'c'], command: ['sh', '-c', 'x'] });
  });
  test('without --: one name, the rest is the command (as before several names)', () => {
    expect(splitOperands(['a', 'true', 'b'], undefined)).toEqual({ names: ['a'], command: ['true', 'b'] });
  });
  test('a name given twice is taken once, in first-seen order', () => {
    expect(splitOperands(['b', 'a', 'b', 'true'], ['true']).names).toEqual(['b', 'a']);
  });
  test('refused: no name, an invalid name, too many names', () => {
    expect(() => splitOperands(['true'], ['true'])).toThrow('expected at least one name before --, got none');
    expect(() => splitOperands(['jobs/', 'true'], ['true'])).toThrow('not to end with "/", got the string "jobs/"');
    const many = Array.from({ length: 65 }, (_, i) => `n${i}`);
    expect(() => splitOperands([...many, 'true'], ['true'])).toThrow('at most 64 distinct names at once');
  });
});

describe('lockSpec', () => {
  test('one name is a Mutex; several a MultiLock named for messages', () => {
    expect(lockSpec(['a'])).toMatchObject({ kind: 'mutex', name: 'a', waitingFor: 'lock "a"' });
    expect(lockSpec(['a'])).not.toHaveProperty('names');
    expect(lockSpec(['a', 'b', 'c'])).toMatchObject({ kind: 'multilock', names: ['a', 'b', 'c'], waitingFor: 'locks "a", "b" and "c"' });
  });
});
