/**
 * etcd authentication: a token from `Auth/Authenticate` (user name and password), sent with every
 * call as the `token` metadata. One token per transport, fetched when first needed; when etcd says a
 * token is invalid (expired after `--auth-token-ttl` unused, or the member restarted), it is
 * forgotten and the next call authenticates again.
 *
 * Many calls may wait for one fetch. Each waits no longer than its own deadline and signal: a call
 * that gives up leaves the fetch running for the others. The fetch tries the members one after
 * another; each attempt may take the longest remaining time among the calls still waiting, at most
 * {@link authAttemptMs} (so that a silent member leaves time for the next), and the fetch stops
 * once nobody waits any more. A stream, which has no deadline, waits for the fetch to end.
 */
import { clampDelay, raceSignal } from '../abort.js';
import { TransportError } from '../port.js';

/** The longest one `Authenticate` attempt may take, in ms. */
export const authAttemptMs = 5000;

/** One fetch of a token, shared by the calls waiting for it. */
export interface Attempts {
  /**
   * How long the next attempt may take, in ms: the longest remaining time of the calls still
   * waiting, at most {@link authAttemptMs}; 0 or less when nobody waits any more (stop).
   */
  budget(): number;
  /** The member being tried, for the message of a caller that gives up. */
  endpoint: string | undefined;
}

/** Fetches a token, trying members in turn within `attempts.budget()`; rejects with the last error. */
export type Authenticate = (attempts: Attempts) => Promise<string>;

class Fetch implements Attempts {
  promise!: Promise<string>;
  endpoint: string | undefined;
  /** The latest deadline of the calls that waited (performance.now() clock). */
  until = 0;
  waiters = 0;

  budget(): number {
    return this.waiters > 0 ? Math.min(authAttemptMs, this.until - performance.now()) : 0;
  }
}

export class Tokens {
  readonly #authenticate: Authenticate | undefined;
  #fetch: Fetch | undefined;
  /** The token the last fetch resolved with. */
  #value: string | undefined;

  constructor(authenticate: Authenticate | undefined) {
    this.#authenticate = authenticate;
  }

  /**
   * The token to send without waiting, when it needs no fetch: `undefined` when the client does not
   * authenticate, the cached token otherwise; `null` when one must be fetched ({@link current}).
   */
  get known(): string | undefined | null {
    if (!this.#authenticate) return undefined;
    return this.#value ?? null;
  }

  /**
   * The token to send, or undefined when the client does not authenticate. Waits at most `timeoutMs`
   * (then rejects with DEADLINE_EXCEEDED) and until `signal` aborts (then rejects with its reason).
   */
  async current(timeoutMs = Number.POSITIVE_INFINITY, signal?: AbortSignal): Promise<string | undefined> {
    if (!this.#authenticate) return undefined;
    if (this.#value !== undefined) return this.#value;
    signal?.throwIfAborted();
    let fetch = this.#fetch;
    const until = performance.now() + timeoutMs;
    if (fetch === undefined) {
      fetch = this.#fetch = new Fetch();
      fetch.until = until;
      fetch.waiters = 1;
      this.#start(fetch, this.#authenticate);
    } else {
      fetch.until = Math.max(fetch.until, until);
      fetch.waiters++;
    }
    try {
      return await wait(fetch, timeoutMs, signal);
    } finally {
      fetch.waiters--;
    }
  }

  /** Forgets `token` (etcd refused it), unless a newer one replaced it already. */
  invalidate(token: string | undefined): void {
    if (token === undefined || token !== this.#value) return;
    this.#value = undefined;
    this.#fetch = undefined;
  }

  #start(fetch: Fetch, authenticate: Authenticate): void {
    fetch.promise = authenticate(fetch);
    fetch.promise.then(
      (token) => {
        if (this.#fetch === fetch) this.#value = token;
      },
      () => {
        if (this.#fetch === fetch) this.#fetch = undefined; // the next call tries again
      },
    );
  }
}

/** `fetch`'s token, unless `timeoutMs` passes or `signal` aborts first. */
function wait(fetch: Fetch, timeoutMs: number, signal: AbortSignal | undefined): Promise<string> {
  return raceSignal(timeoutMs === Number.POSITIVE_INFINITY ? fetch.promise : bounded(fetch, timeoutMs), signal);
}

/** `fetch`'s token, or DEADLINE_EXCEEDED (naming the member being tried) once `timeoutMs` passes. */
function bounded(fetch: Fetch, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      const at = fetch.endpoint === undefined ? '' : ` (authenticating at ${fetch.endpoint})`;
      reject(new TransportError(`4 DEADLINE_EXCEEDED: no auth token within ${timeoutMs} ms${at}`, { code: 'DEADLINE_EXCEEDED', kind: 'transient', endpoint: fetch.endpoint }));
    }, clampDelay(timeoutMs));
    timer.unref(); // the fetch's own stream keeps the process alive while it runs
    fetch.promise.then(
      (token) => (clearTimeout(timer), resolve(token)),
      (error: unknown) => (clearTimeout(timer), reject(error)),
    );
  });
}
