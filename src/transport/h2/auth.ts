/**
 * etcd authentication: a token from `Auth/Authenticate` (user name and password), sent with every
 * call as the `token` metadata. One token per transport, fetched when first needed; when etcd says a
 * token is invalid (expired after `--auth-token-ttl` unused, or the member restarted), it is
 * forgotten and the next call authenticates again.
 */
import type { TransportError } from '../port.js';

/** Fetches a token from some member (trying each in turn); rejects with the last member's error. */
export type Authenticate = () => Promise<string>;

export class Tokens {
  readonly #authenticate: Authenticate | undefined;
  #token: Promise<string> | undefined;
  /** The token `#token` resolved with, once it has. */
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

  /** The token to send, or undefined when the client does not authenticate. */
  async current(): Promise<string | undefined> {
    if (!this.#authenticate) return undefined;
    if (this.#value !== undefined) return this.#value;
    const pending = (this.#token ??= this.#authenticate());
    try {
      const token = await pending;
      if (this.#token === pending) this.#value = token;
      return token;
    } catch (error) {
      if (this.#token === pending) this.#token = undefined; // the next call tries again
      throw error as TransportError;
    }
  }

  /** Forgets `token` (etcd refused it), unless a newer one replaced it already. */
  invalidate(token: string | undefined): void {
    if (token === undefined || token !== this.#value) return;
    this.#value = undefined;
    this.#token = undefined;
  }
}
