/**
 * The deadlines of unary calls, with one timer per distinct timeout instead of one per call. Calls
 * with the same timeout expire in the order they started, so each timeout keeps its calls in a list,
 * oldest first, and one timer armed for the oldest: adding or removing a call is a few pointer moves,
 * where a Node timer per call costs an object and a timer-list insert and removal. Each call still
 * expires at its own deadline (to the millisecond).
 *
 * The timers do not keep the process alive: a call in flight does, through its connection (see
 * `channel.ts`), as a timer per call did.
 */
import { clampDelay } from '../abort.js';

/** A call with a deadline; the list's links live on the call (no allocation per call). */
export interface Deadline {
  readonly timeoutMs: number;
  /** performance.now() at which it expires; set by {@link Deadlines.add}. */
  deadline: number;
  prev: Deadline | undefined;
  next: Deadline | undefined;
  /** The deadline passed: called once, after the call was removed. */
  expired(): void;
}

/** The calls of one timeout, oldest first, and the timer armed for the oldest. */
class List {
  head: Deadline | undefined;
  tail: Deadline | undefined;
  timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires. */
  firesAt = Infinity;
}

export class Deadlines {
  readonly #lists = new Map<number, List>();

  /** Starts `call`'s deadline: `call.expired()` in `call.timeoutMs` unless removed first. */
  add(call: Deadline): void {
    let list = this.#lists.get(call.timeoutMs);
    if (list === undefined) this.#lists.set(call.timeoutMs, (list = new List()));
    call.deadline = performance.now() + call.timeoutMs;
    call.next = undefined;
    call.prev = list.tail;
    if (list.tail) list.tail.next = call;
    else list.head = call;
    list.tail = call;
    // An armed timer fires no later than the oldest call's deadline, so it also serves this newer one.
    if (list.timer === undefined) this.#arm(list, call.timeoutMs, call.deadline);
  }

  /** Ends `call`'s deadline (it settled). Idempotent. */
  remove(call: Deadline): void {
    const list = this.#lists.get(call.timeoutMs);
    if (list === undefined || (call.prev === undefined && list.head !== call)) return;
    if (call.prev) call.prev.next = call.next;
    else list.head = call.next;
    if (call.next) call.next.prev = call.prev;
    else list.tail = call.prev;
    call.prev = call.next = undefined;
    // The timer stays armed: when it fires early for a newer call, it re-arms (one timer per timeout
    // period at most, rather than one per call).
  }

  #arm(list: List, timeoutMs: number, at: number): void {
    list.firesAt = at;
    list.timer = setTimeout(() => this.#fire(list, timeoutMs), clampDelay(Math.ceil(at - performance.now())));
    list.timer.unref();
  }

  #fire(list: List, timeoutMs: number): void {
    list.timer = undefined;
    const now = performance.now();
    for (let call = list.head; call !== undefined && call.deadline <= now; call = list.head) {
      this.remove(call);
      call.expired();
    }
    if (list.head !== undefined) this.#arm(list, timeoutMs, list.head.deadline);
    else this.#lists.delete(timeoutMs);
  }
}

/** Every unary call's deadline. */
export const deadlines = new Deadlines();
