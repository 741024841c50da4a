/**
 * A FIFO of local acquisitions per key. One Session owns one key per name (`name/<lease>`), so two
 * acquisitions of one name on one Session must never share that key: the second waits here, in order,
 * until the first has released (and its cleanup in etcd has finished).
 */
import { raceSignal } from '../transport/abort.js';

export class LocalQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** True when an acquisition of `key` is held or queued on this Session. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }

  /**
   * Waits for the turn of `key` and returns the function that passes it on. Aborting `signal` rejects
   * with its reason and drops this place in the queue (those behind it keep their order).
   */
  async enter(key: string, signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    const previous = this.#tails.get(key);
    let leave!: () => void;
    const mine = new Promise<void>((resolve) => {
      leave = resolve;
    });
    const tail = (previous ?? Promise.resolve()).then(() => mine);
    this.#tails.set(key, tail);
    let left = false;
    const release = (): void => {
      if (left) return;
      left = true;
      leave();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    if (previous) {
      try {
        await raceSignal(previous, signal);
      } catch (error) {
        // Our place must still pass the turn on once the one before us leaves.
        void previous.then(release);
        throw error;
      }
    }
    return release;
  }

  /** Non-blocking enter: the release function, or null when `key` is busy on this Session. */
  tryEnter(key: string): (() => void) | null {
    if (this.#tails.has(key)) return null;
    let leave!: () => void;
    const tail = new Promise<void>((resolve) => {
      leave = resolve;
    });
    this.#tails.set(key, tail);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      leave();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }

  /**
   * Takes the turns of every key in `keys`, one after another in one fixed order (sorted), and
   * returns the function that passes them all on. The fixed order means two acquisitions of
   * overlapping key sets on one Session can never each hold a turn the other waits for. Aborting
   * `signal` passes on the turns taken so far and rejects with its reason.
   */
  async enterAll(keys: readonly string[], signal?: AbortSignal): Promise<() => void> {
    const leaves: (() => void)[] = [];
    const leaveAll = (): void => {
      for (const leave of leaves) leave();
    };
    try {
      for (const key of [...keys].sort()) leaves.push(await this.enter(key, signal));
    } catch (error) {
      leaveAll();
      throw error;
    }
    return leaveAll;
  }

  /** Non-blocking {@link enterAll}: the release function, or null (holding no turn) when any key is busy. */
  tryEnterAll(keys: readonly string[]): (() => void) | null {
    if (keys.some((key) => this.#tails.has(key))) return null;
    const leaves = keys.map((key) => this.tryEnter(key)!);
    return () => {
      for (const leave of leaves) leave();
    };
  }
}
