/**
 * The one backoff every retry loop of leasehold uses, on cockatiel's `IBackoff` (exponential with
 * decorrelated jitter): waits grow with each failure in a row and start over after a success.
 */
import { ExponentialBackoff, type IBackoff, type IBackoffFactory } from 'cockatiel';
import { sleep } from './abort.js';

/** The delays of leasehold's own retry loops (waits, watches, cleanups), in milliseconds. */
export const retryDelays = { initialDelay: 25, maxDelay: 2000 } as const;

/** A streak of failures and the delay before the next attempt. */
export class Backoff {
  readonly #delays: { initialDelay: number; maxDelay: number };
  /** Made at the first failure: most waits and releases never fail, and every one makes a Backoff. */
  #factory: IBackoffFactory<unknown> | undefined;
  #current: IBackoff<unknown> | undefined;

  constructor(delays: { initialDelay: number; maxDelay: number } = retryDelays) {
    this.#delays = delays;
  }

  /** The delay before the next attempt, one step longer than the last (without waiting). */
  next(): number {
    this.#current = this.#current ? this.#current.next(undefined) : (this.#factory ??= new ExponentialBackoff(this.#delays)).next(undefined);
    return this.#current.duration;
  }

  /** Waits the next delay; rejects with `signal.reason` when `signal` aborts meanwhile. */
  wait(signal?: AbortSignal): Promise<void> {
    return sleep(this.next(), signal);
  }

  /** A success: the next failure starts from the first delay again. */
  reset(): void {
    this.#current = undefined;
  }
}
