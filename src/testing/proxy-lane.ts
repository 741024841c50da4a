/**
 * One direction of one proxied connection: the bytes read from one socket, queued in order until they
 * may be written to the other. A lane writes nothing while its direction is blackholed or it has no
 * sink yet (a connection accepted during a full blackhole is connected onward only on heal), and
 * holds each chunk until its due time when the direction is delayed.
 */
import type { Socket } from 'node:net';

/** What a lane asks its proxy: may it write now, and how long is a chunk read now delayed. */
export interface LanePolicy {
  stopped(): boolean;
  delayMs(): number;
}

export class Lane {
  /** The socket the bytes go to: the target's for requests, the client's for answers. */
  sink: Socket | undefined;
  readonly #policy: LanePolicy;
  readonly #queue: { chunk: Buffer; due: number }[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(policy: LanePolicy, sink?: Socket) {
    this.#policy = policy;
    this.sink = sink;
  }

  /** Bytes waiting in the lane. */
  get queued(): number {
    return this.#queue.reduce((n, q) => n + q.chunk.length, 0);
  }

  /** Takes a chunk read from the source socket. */
  push(chunk: Buffer): void {
    this.#queue.push({ chunk, due: performance.now() + this.#policy.delayMs() });
    this.drain();
  }

  /** Every chunk may go as soon as the lane flows (a delay that ended, a stranded request delivered). */
  expedite(): void {
    for (const q of this.#queue) q.due = 0;
    this.drain();
  }

  /** Writes every chunk that is due, in order, and waits for the next one; nothing while stopped. */
  drain(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const sink = this.sink;
    if (!sink || sink.destroyed || this.#policy.stopped()) return;
    const now = performance.now();
    while (this.#queue.length > 0 && this.#queue[0]!.due <= now) sink.write(this.#queue.shift()!.chunk);
    const next = this.#queue[0];
    if (next) {
      this.#timer = setTimeout(() => this.drain(), Math.max(1, next.due - now));
      this.#timer.unref();
    }
  }

  /** Forgets every queued chunk and its timer. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}
