/**
 * Everything `leasehold` itself writes, on stdout or stderr, goes through an {@link Output}: nothing it
 * writes can end it or hold it up, because the supervisor of a running command must outlive its readers.
 *
 * - A failed write is dropped, never thrown: EPIPE (the reader went away: `observe NAME | head -1`, a
 *   log shipper restarting), EIO (the terminal hung up), anything else. After such an error the stream
 *   counts as closed and later lines are dropped at once.
 * - A write never blocks the event loop, so it holds up no keep-alive and no kill timer. A pipe is
 *   opened again through /proc/self/fd as a description of our own, non-blocking (the command shares
 *   the original one, and must keep it blocking as it got it): a full pipe answers EAGAIN, the line
 *   is tried again a few times, then dropped. Anything else — a terminal, a socket, a file — is written
 *   from libuv's thread pool, one write at a time, in order: a terminal stopped with Ctrl-S blocks only
 *   that thread. (A terminal must not be written from the event loop: in a background job on a
 *   `tostop` terminal, once SIGTTOU has a listener the kernel restarts the write after each signal,
 *   for ever.) Such a blocked write can delay leasehold's exit, as it would any program's.
 * - No other module writes to `process.stdout`/`process.stderr` (a unit test holds that).
 */
import { constants, fstatSync, openSync, write, writeSync } from 'node:fs';

/** How an {@link Output} waits for a pipe that is full (`EAGAIN`). */
export interface OutputOptions {
  /**
   * How many times a write that found the pipe full is tried again before its line is dropped.
   * @default 20
   */
  retries?: number;
  /**
   * The wait before the n-th retry is n times this, in ms (20 retries: 2.1 s in all).
   * @default 10
   */
  backoffMs?: number;
}

/** Writes from libuv's thread pool: resolves with the bytes written. */
function writeAside(fd: number, bytes: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, bytes, offset, bytes.length - offset, null, (error, written) => (error ? reject(error) : resolve(written)));
  });
}

/**
 * How to write to `fd`: a pipe through a non-blocking description of our own (written at once, on
 * the event loop), anything else from the thread pool. Without /proc, or when the pipe's reader is
 * already gone (ENXIO), the fd itself, from the thread pool.
 */
function writerFor(fd: number): (bytes: Buffer, offset: number) => Promise<number> {
  try {
    if (fstatSync(fd).isFIFO()) {
      const own = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
      return async (bytes, offset) => writeSync(own, bytes, offset);
    }
  } catch {
    // below
  }
  return async (bytes, offset) => writeAside(fd, bytes, offset);
}

/** One of leasehold's output streams (by file descriptor): ordered, never blocking, never failing. */
export class Output {
  readonly #fd: number;
  #writer: ((bytes: Buffer, offset: number) => Promise<number>) | undefined;
  readonly #retries: number;
  readonly #backoffMs: number;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  readonly #closedListeners = new Set<() => void>();

  constructor(fd: number, options: OutputOptions = {}) {
    this.#fd = fd;
    this.#retries = options.retries ?? 20;
    this.#backoffMs = options.backoffMs ?? 10;
  }

  /** True once a write failed for good: the reader is gone, and later writes are dropped. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Writes `text` as it is, after everything written before. Never throws; an error drops it. */
  write(text: string): void {
    const bytes = Buffer.from(text);
    this.#queue = this.#queue.then(() => this.#writeAll(bytes));
  }

  /** Writes `text` and a newline. */
  line(text: string): void {
    this.write(`${text}\n`);
  }

  /** Calls `listener` once when the stream closes (at once if it has). Returns the unsubscribe function. */
  onClosed(listener: () => void): () => void {
    if (this.#closed) {
      listener();
      return () => undefined;
    }
    this.#closedListeners.add(listener);
    return () => this.#closedListeners.delete(listener);
  }

  /** Resolves once everything written so far is out (or dropped), or after `ms`, whichever is first. */
  async flush(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#queue, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  async #writeAll(bytes: Buffer): Promise<void> {
    let offset = 0;
    let full = 0;
    while (offset < bytes.length && !this.#closed) {
      try {
        this.#writer ??= writerFor(this.#fd);
        offset += await this.#writer(bytes, offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.#close();
          return;
        }
        if (++full > this.#retries) return; // the rest of this line is dropped; the stream stays open
        await new Promise((resolve) => setTimeout(resolve, this.#backoffMs * full));
      }
    }
  }

  #close(): void {
    this.#closed = true;
    const listeners = [...this.#closedListeners];
    this.#closedListeners.clear();
    for (const listener of listeners) listener();
  }
}

/** leasehold's stdout: `status` and `observe` print on it (the run commands leave it to the command). */
export const stdout = new Output(1);
/** leasehold's stderr: its messages. */
export const stderr = new Output(2);

/** Waits (at most `ms`) until both streams have written what they were given: before the process exits. */
export async function flushOutput(ms = 2000): Promise<void> {
  await Promise.all([stdout.flush(ms), stderr.flush(ms)]);
}
