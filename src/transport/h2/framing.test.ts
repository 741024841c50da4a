// gRPC framing: messages split across and packed into DATA chunks arrive whole and in order.
import { describe, expect, test } from 'vitest';
import { Deframer, frame, maxMessageBytes } from './framing.js';

describe('framing', () => {
  const messages = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from('🔒 emoji')];
  const wire = Buffer.concat(messages.map((m) => frame(m)));

  test.each([1, 3, 5, 64, 16_384, wire.length])('chunks of %i bytes', (size) => {
    const d = new Deframer();
    const got: Buffer[] = [];
    for (let i = 0; i < wire.length; i += size) d.push(wire.subarray(i, i + size), (m) => got.push(Buffer.from(m)));
    expect(got).toEqual(messages);
    expect(d.partial).toBe(false);
  });

  test('a part of a message waits for its rest', () => {
    const d = new Deframer();
    const got: Buffer[] = [];
    d.push(frame(Buffer.from('hello')).subarray(0, 7), (m) => got.push(m));
    expect([got.length, d.partial]).toEqual([0, true]);
  });

  test('compressed or oversized messages are refused, naming what was wrong', () => {
    const compressed = frame(Buffer.from('x'));
    compressed[0] = 1;
    expect(() => new Deframer().push(compressed, () => undefined)).toThrow(/compressed gRPC message \(flag 1\)/);
    const huge = Buffer.from([0, 0xff, 0xff, 0xff, 0xff]);
    expect(() => new Deframer().push(huge, () => undefined)).toThrow(new RegExp(`4294967295 bytes, over the ${maxMessageBytes}`));
  });
});
