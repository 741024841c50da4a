/**
 * gRPC's length-prefixed messages on an HTTP/2 stream: each message is a 1-byte flag (0: not
 * compressed; we never compress and refuse compressed answers), a 4-byte big-endian length, then the
 * bytes. Messages and DATA frames need not line up, so the reader keeps what it has until a whole
 * message is in.
 */

/** The largest message we accept (etcd's default `--max-request-bytes` is 1.5 MiB; answers can be larger). */
export const maxMessageBytes = 64 * 1024 * 1024;

/** One message, framed. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Splits the bytes of a stream into messages; `push` throws on a frame it cannot read. */
export class Deframer {
  #buffer: Buffer | undefined;

  /** Adds `chunk` and calls `onMessage` for every message completed by it. */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    let buf = this.#buffer ? Buffer.concat([this.#buffer, chunk]) : chunk;
    while (buf.length >= 5) {
      if (buf[0] !== 0) throw new Error(`a compressed gRPC message (flag ${buf[0]}), which was not asked for`);
      const length = buf.readUInt32BE(1);
      if (length > maxMessageBytes) throw new Error(`a gRPC message of ${length} bytes, over the ${maxMessageBytes} accepted`);
      if (buf.length < 5 + length) break;
      onMessage(buf.subarray(5, 5 + length));
      buf = buf.subarray(5 + length);
    }
    this.#buffer = buf.length > 0 ? buf : undefined;
  }

  /** True when part of a message is still waiting for its rest. */
  get partial(): boolean {
    return this.#buffer !== undefined;
  }
}
