// gRPC framing: messages split across and packed into DATA chunks arrive whole and in order.
import { describe, expect, test } from 'vitest';
import { Deframer, frame, maxMessageBytes, MessageTooLargeError } from './framing.js';

describe('framing', () => {
  const messages = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from('🔒 emoji')];
  const wireLength = messages.reduce((n, m) => n + 5 + m.length, 0);

  // Framed inside each test: a throw while the file is collected would fail no test.
  test.each([1, 3, 5, 64, 16_384, wireLength])('chunks of %i bytes', (size) => {
    const wire = Buffer.concat(messages.map((m) => frame(m)));
    expect(wire.length).toBe(wireLength);
    expect([...wire.subarray(0, 6)]).toEqual([0, 0, 0, 0, 1, 0x61]); // flag, big-endian length 1, 'a'
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
    expect(() => new Deframer().push(compressed, () => undefined)).toThrow(/compressed message \(flag 1\)/);
    const huge = Buffer.from([0, 0xff, 0xff, 0xff, 0xff]);
    expect(() => new Deframer().push(huge, () => undefined)).toThrow(`Received message larger than max (4294967295 vs ${maxMessageBytes})`);
  });

  test("the receive limit is grpc-js's 4 MiB unless set: one byte over is refused before its bytes arrive", () => {
    const at = Buffer.from([0, 0, 0x40, 0, 0]); // 4 MiB exactly: accepted (waits for the rest)
    const d = new Deframer();
    d.push(at, () => undefined);
    expect(d.partial).toBe(true);
    const over = Buffer.from([0, 0, 0x40, 0, 1]);
    expect(() => new Deframer().push(over, () => undefined)).toThrow(MessageTooLargeError);
    expect(() => new Deframer(10).push(frame(Buffer.alloc(11)), () => undefined)).toThrow('Received message larger than max (11 vs 10)');
    const got: Buffer[] = [];
    new Deframer(Number.POSITIVE_INFINITY).push(frame(Buffer.alloc(5_000_000)), (m) => got.push(m));
    expect(got[0]?.length).toBe(5_000_000);
  });

  test('after a refused frame every later chunk is refused the same way (the stream is out of step)', () => {
    const d = new Deframer(10);
    const wire = frame(Buffer.alloc(20, 0x78));
    expect(() => d.push(wire.subarray(0, 8), () => undefined)).toThrow('Received message larger than max (20 vs 10)');
    expect(() => d.push(wire.subarray(8), () => undefined)).toThrow('Received message larger than max (20 vs 10)');
  });

  test('a message in many chunks is delivered once, whole, after its last chunk', () => {
    const big = Buffer.alloc(1_000_000, 3);
    const wire = Buffer.concat([frame(big), frame(Buffer.from('next'))]);
    const d = new Deframer();
    const got: Buffer[] = [];
    for (let i = 0; i < wire.length; i += 16_384) d.push(wire.subarray(i, i + 16_384), (m) => got.push(Buffer.from(m)));
    expect(got.map((m) => m.length)).toEqual([1_000_000, 4]);
    expect(got[0]!.equals(big)).toBe(true);
    expect(d.partial).toBe(false);
  });

  test('an empty message whose header comes in pieces is delivered with its fifth byte, not with the next chunk', () => {
    const d = new Deframer();
    const got: Buffer[] = [];
    const empty = frame(Buffer.alloc(0));
    for (const piece of [empty.subarray(0, 2), empty.subarray(2, 4), empty.subarray(4)]) d.push(piece, (m) => got.push(m));
    expect(got.map((m) => m.length)).toEqual([0]);
    expect(d.partial).toBe(false);
  });
});
