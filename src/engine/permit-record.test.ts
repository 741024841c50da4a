import { describe, expect, test } from 'vitest';
import { decodeRecord, encodeRecord } from './permit-record.js';

const decode = (text: string) => decodeRecord(Buffer.from(text));

describe('permit records', () => {
  test('encodeRecord writes permits and weight only, in that order; decodeRecord reads it back', () => {
    const record = { permits: 3, weight: 2, extra: 'x' } as never;
    expect(encodeRecord(record).toString()).toBe('{"permits":3,"weight":2}');
    expect(decodeRecord(encodeRecord({ permits: 3, weight: 2 }))).toEqual({ permits: 3, weight: 2 });
    // Other fields of a valid record are ignored.
    expect(decode('{"weight":1,"permits":1,"owner":"me"}')).toEqual({ permits: 1, weight: 1 });
  });

  test('weight from 1 to permits, both inclusive', () => {
    expect(decode('{"permits":5,"weight":1}')).toEqual({ permits: 5, weight: 1 });
    expect(decode('{"permits":5,"weight":5}')).toEqual({ permits: 5, weight: 5 });
    expect(decode(`{"permits":${Number.MAX_SAFE_INTEGER},"weight":${Number.MAX_SAFE_INTEGER}}`)).toEqual({ permits: Number.MAX_SAFE_INTEGER, weight: Number.MAX_SAFE_INTEGER });
  });

  test('what is not JSON, not an object, or an array is refused with a sentence', () => {
    expect(decode('permits=3')).toBe('not a permit record (9 bytes that are not JSON)');
    expect(decodeRecord(Buffer.from([0xff, 0xfe]))).toBe('not a permit record (2 bytes that are not JSON)');
    expect(decode('')).toBe('not a permit record (0 bytes that are not JSON)');
    expect(decode('3')).toBe('not a permit record (not a JSON object)');
    expect(decode('"x"')).toBe('not a permit record (not a JSON object)');
    expect(decode('null')).toBe('not a permit record (not a JSON object)');
    expect(decode('[3, 1]')).toBe('not a permit record (not a JSON object)');
  });

  test('permits must be a safe integer >= 1', () => {
    expect(decode('{"weight":1}')).toBe('not a permit record (permits undefined is not an integer >= 1)');
    expect(decode('{"permits":0,"weight":1}')).toBe('not a permit record (permits 0 is not an integer >= 1)');
    expect(decode('{"permits":-3,"weight":-100}')).toBe('not a permit record (permits -3 is not an integer >= 1)');
    expect(decode('{"permits":2.5,"weight":1}')).toBe('not a permit record (permits 2.5 is not an integer >= 1)');
    expect(decode('{"permits":"3","weight":1}')).toBe('not a permit record (permits "3" is not an integer >= 1)');
    expect(decode('{"permits":9007199254740992,"weight":1}')).toBe('not a permit record (permits 9007199254740992 is not an integer >= 1)');
  });

  test('weight must be a safe integer from 1 to permits: a negative weight never frees capacity', () => {
    expect(decode('{"permits":3}')).toBe('not a permit record (weight undefined is not an integer from 1 to permits 3)');
    expect(decode('{"permits":3,"weight":-100}')).toBe('not a permit record (weight -100 is not an integer from 1 to permits 3)');
    expect(decode('{"permits":3,"weight":0}')).toBe('not a permit record (weight 0 is not an integer from 1 to permits 3)');
    expect(decode('{"permits":3,"weight":4}')).toBe('not a permit record (weight 4 is not an integer from 1 to permits 3)');
    expect(decode('{"permits":3,"weight":1.5}')).toBe('not a permit record (weight 1.5 is not an integer from 1 to permits 3)');
    expect(decode('{"permits":3,"weight":null}')).toBe('not a permit record (weight null is not an integer from 1 to permits 3)');
  });
});
