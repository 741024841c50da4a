/**
 * gRPC's length-prefixed messages on an HTTP/2 stream: each message is a 1-byte flag (0: not
 * compressed; we never compress and refuse compressed answers), a 4-byte big-endian length, then the
 * bytes. Messages and DATA frames need not line up, so the reader keeps what it has until a whole
 * message is in.
 */

/**
 * The largest message accepted by default: 4 MiB, as grpc-js (and so the `etcd3` path) accepts, so an
 * answer refused on one transport is refused on the other. `grpc.max_receive_message_length` in the
 * client's `grpcOptions` changes it (-1: no limit), as it does for grpc-js.
 */
export const maxMessageBytes = 4 * 1024 * 1024;

/** A message over the receive limit: the answer is refused, as grpc-js refuses it (RESOURCE_EXHAUSTED). */
export class MessageTooLargeError extends Error {
  constructor(readonly length: number, readonly limit: number) {
    super(`Received message larger than max (${length} vs ${limit})`);
    this.name = 'MessageTooLargeError';
  }
}

/** A message with the compressed flag: we never ask for compression (gRPC: a protocol error, INTERNAL). */
export class CompressedMessageError extends Error {
  constructor(readonly flag: number) {
    super(`Received a compressed message (flag ${flag}), which was not asked for`);
    this.name = 'CompressedMessageError';
  }
}

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
  /** Bytes received and not yet part of a whole message, in the chunks they came in. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** The length of the message being gathered, once its header is in. */
  #need: number | undefined;
  /** Set by the first frame refused: a stream that sent one is read no further. */
  #failed: Error | undefined;

  /** @param limit the largest message accepted, in bytes. */
  constructor(readonly limit: number = maxMessageBytes) {}

  /**
   * Adds `chunk` and calls `onMessage` for every message completed by it. A message that arrives in
   * many chunks is copied once, when it is whole (not once per chunk). After a throw every later
   * push throws the same error: the stream is out of step and must be dropped.
   */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): void {
    if (this.#failed) throw this.#failed;
    let buf: Buffer;
    if (this.#pending.length === 0) buf = chunk;
    else {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      if (this.#need === undefined && this.#pendingBytes >= 5) this.#need = this.#header(Buffer.concat(this.#pending, 5));
      if (this.#need === undefined || this.#pendingBytes < 5 + this.#need) return;
      buf = Buffer.concat(this.#pending, this.#pendingBytes);
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#need = undefined;
    }
    while (buf.length >= 5) {
      const length = this.#header(buf);
      if (buf.length < 5 + length) {
        this.#need = length; // the header of the message left waiting for its rest
        break;
      }
      onMessage(buf.subarray(5, 5 + length));
      buf = buf.subarray(5 + length);
    }
    if (buf.length > 0) {
      this.#pending = [buf];
      this.#pendingBytes = buf.length;
    }
  }

  /** The length of the message whose 5-byte header starts `buf`; throws on a frame we refuse. */
  #header(buf: Buffer): number {
    if (buf[0] !== 0) throw (this.#failed = new CompressedMessageError(buf[0]!));
    const length = buf.readUInt32BE(1);
    if (length > this.limit) throw (this.#failed = new MessageTooLargeError(length, this.limit));
    return length;
  }

  /** True when part of a message is still waiting for its rest. */
  get partial(): boolean {
    return this.#pendingBytes > 0;
  }
}
