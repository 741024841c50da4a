/**
 * The faults the in-memory fake of the port (fake-transport.ts) injects into unary calls: a call that
 * fails (the next ones, or those a matcher picks), and a txn applied whose answer is lost — an
 * ambiguous outcome, as a connection that breaks after etcd applied the request leaves it. Every
 * injected failure answers after a turn of the event loop, as a real one does: a caller that retried
 * at once, for ever, spins without starving the timers of the test that watches it.
 */
import type { TxnRequest } from '../../src/transport/messages.js';
import type { TransportError } from '../../src/transport/port.js';
import { refusal } from './fake-store.js';

type Match<R> = (req: R) => boolean;

const injected = (): TransportError => refusal('UNAVAILABLE', 'transient', '14 UNAVAILABLE: injected');

/** The first entry `match` accepts, used up once `left` reaches zero. */
function take<T extends { left: number }>(list: T[], accepts: (entry: T) => boolean): T | undefined {
  const found = list.find(accepts);
  if (found && --found.left <= 0) list.splice(list.indexOf(found), 1);
  return found;
}

const turn = async (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FakeFaults {
  readonly #next: TransportError[] = [];
  readonly #where: { match: (name: string, req: unknown) => boolean; error: TransportError; left: number }[] = [];
  readonly #lost: { match: Match<TxnRequest>; left: number }[] = [];

  /** Rejects the next `times` unary calls with `error`. */
  failNext(error = injected(), times = 1): void {
    for (let i = 0; i < times; i++) this.#next.push(error);
  }

  /** Rejects the first `times` unary calls (by name and request) that `match` accepts with `error`. */
  failWhere(match: (name: string, req: unknown) => boolean, error = injected(), times = 1): void {
    this.#where.push({ match, error, left: times });
  }

  /** Applies the first `times` txns that `match` accepts, then rejects each (transient) as if its answer were lost. */
  loseAnswer(match: Match<TxnRequest>, times = 1): void {
    this.#lost.push({ match, left: times });
  }

  /** Before a call is served: rejects it when a fault says so. */
  async before(name: string, req: unknown): Promise<void> {
    const failure = this.#next.shift() ?? take(this.#where, (t) => t.match(name, req))?.error;
    if (!failure) return;
    await turn();
    throw failure;
  }

  /** After a txn was applied: rejects it when its answer is to be lost. */
  async after(req: TxnRequest): Promise<void> {
    if (!take(this.#lost, (l) => l.match(req))) return;
    await turn();
    throw refusal('UNAVAILABLE', 'transient', '14 UNAVAILABLE: injected: the connection was lost before the answer');
  }
}
