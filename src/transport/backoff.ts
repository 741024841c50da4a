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
  readonly #factory: IBackoffFactory<unknown>;
  #current: IBackoff<unknown> | undefined;

  constructor(delays: { initialDelay: number; maxDelay: number } = retryDelays) {
    this.#factory = new ExponentialBackoff(delays);
  }

  /** The delay before the next attempt, one step longer than the last (without waiting). */
  next(): number {
    this.#current = this.#current ? this.#current.next(undefined) : this.#factory.next(undefined);
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
