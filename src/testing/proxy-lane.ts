/**
 * One direction of one proxied connection: the bytes read from one socket, queued in order until they
 * may be written to the other. A lane writes nothing while its direction is blackholed or it has no
 * sink yet (a connection accepted during a full blackhole is connected onward only on heal), and
 * holds each chunk until its due time when the direction is delayed. Chunks leave in the order they
 * came, as TCP delivers them: one held longer (jitter, a loss) holds those behind it.
 */
import type { Socket } from 'node:net';
import type { ProxyDelayOptions } from './proxy.js';

/** One direction's delay: each chunk waits `ms` ± `jitterMs`, and a lost one `stallMs` more. */
export interface Delay {
  ms: number;
  jitterMs: number;
  loss: number;
  stallMs: number;
  random: () => number;
}

export const noDelay: Delay = { ms: 0, jitterMs: 0, loss: 0, stallMs: 0, random: Math.random };

/** Checks `ms` and `options` of `TcpProxy.delay`, naming a bad value, and fills in the defaults. */
export function resolveDelay(ms: unknown, options: ProxyDelayOptions = {}): Delay {
  const finite = (value: unknown, name: string): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`Expected \`${name}\` to be a finite number of milliseconds >= 0, got \`${String(value)}\``);
    }
    return value;
  };
  const base = finite(ms, 'ms');
  const jitterMs = finite(options.jitterMs ?? 0, 'jitterMs');
  const loss = options.loss ?? 0;
  if (typeof loss !== 'number' || !(loss >= 0 && loss < 1)) throw new TypeError(`Expected \`loss\` to be a share from 0 to below 1, got \`${String(loss)}\``);
  const stallMs = finite(options.lossStallMs ?? Math.max(200, 2 * base), 'lossStallMs');
  const random = options.random ?? Math.random;
  if (typeof random !== 'function') throw new TypeError(`Expected \`random\` to be a function, got \`${String(random)}\``);
  return { ms: base, jitterMs, loss, stallMs, random };
}

/** Whether `d` holds nothing at all. */
export const isNoDelay = (d: Delay): boolean => d.ms === 0 && d.jitterMs === 0 && d.loss === 0;

/** How long one chunk waits under `d`: `ms` ± jitter (never below 0), plus `stallMs` when it is lost. */
export function drawDelay(d: Delay): number {
  if (isNoDelay(d)) return 0;
  const jitter = d.jitterMs === 0 ? 0 : (d.random() * 2 - 1) * d.jitterMs;
  const lost = d.loss > 0 && d.random() < d.loss ? d.stallMs : 0;
  return Math.max(0, d.ms + jitter) + lost;
}

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
