/**
 * The lean transport: etcd's gRPC API on `node:http2`, implementing the port (`../port.ts`) with the
 * connection options a user gives `etcd3` (hosts, TLS and mutual TLS, user and password).
 *
 * Each unary call is one attempt on one member (see `members.ts`), with its deadline, the auth token
 * and, when etcd says the token is invalid, one more attempt with a fresh token. A call that found a
 * member unreachable or silent marks it, so the caller's retry goes elsewhere. Streams (the watch
 * stream, keep-alive streams) carry the token they were opened with; one that etcd refuses for an
 * invalid token forgets it, so the owner's next stream authenticates again.
 */
import type { LeaseGrantResponse, LeaseKeepAliveResponse, LeaseTimeToLiveResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchRequest, WatchResponse } from '../messages.js';
import { TransportError, type CallOptions, type EtcdTransport, type Member, type Stream, type StreamHandlers, type StreamOptions } from '../port.js';
import { decodeAuthenticate, decodeKeepAlive, decodeLeaseGrant, decodeRange, decodeTimeToLive, decodeTxn, decodeWatch } from '../codec/decode.js';
import { encodeAuthenticate, encodeLeaseGrant, encodeLeaseId, encodeRange, encodeTxn, encodeWatch } from '../codec/encode.js';
import { Tokens, type Attempts } from './auth.js';
import { openStream, unary } from './call.js';
import { Members, type H2Member } from './members.js';
import { resolveH2Options, type H2Options } from './options.js';
import { closedError, connectionError, invalidToken, isUnreachable } from './status.js';

export class H2Transport implements EtcdTransport {
  readonly endpoints: readonly string[];
  readonly user: string | undefined;
  readonly #members: Members;
  readonly #tokens: Tokens;
  #closed = false;
  /** How many times a token was fetched (tests: a token expiry costs one more). */
  authentications = 0;

  constructor(options: H2Options) {
    const o = resolveH2Options(options);
    this.endpoints = o.endpoints;
    this.user = o.auth?.username;
    this.#members = new Members(o.endpoints, { tls: o.tls, pingIntervalMs: o.pingIntervalMs, pingTimeoutMs: o.pingTimeoutMs, connectTimeoutMs: o.connectTimeoutMs, maxReceiveBytes: o.maxReceiveBytes }, o.silenceMemoryMs);
    const auth = o.auth;
    this.#tokens = new Tokens(auth ? (attempts) => this.#authenticate(auth.username, auth.password, attempts) : undefined);
  }

  /** The members, for tests (which member a stream is on, how many connections were made). */
  get members(): readonly H2Member[] {
    return this.#members.all;
  }

  async range(req: RangeRequest, options: CallOptions): Promise<RangeResponse> {
    return decodeRange(await this.#call('/etcdserverpb.KV/Range', encodeRange(req), options));
  }

  async txn(req: TxnRequest, options: CallOptions): Promise<TxnResponse> {
    return decodeTxn(await this.#call('/etcdserverpb.KV/Txn', encodeTxn(req), options));
  }

  async leaseGrant(ttlSeconds: number, options: CallOptions): Promise<LeaseGrantResponse> {
    const res = decodeLeaseGrant(await this.#call('/etcdserverpb.Lease/LeaseGrant', encodeLeaseGrant(ttlSeconds), options));
    if (res.error !== '') throw new TransportError(`etcd refused the lease: ${res.error}`, { code: 'UNKNOWN', kind: 'final', endpoint: undefined });
    return { header: res.header, id: res.id, ttl: res.ttl };
  }

  async leaseRevoke(id: string, options: CallOptions): Promise<void> {
    await this.#call('/etcdserverpb.Lease/LeaseRevoke', encodeLeaseId(id), options);
  }

  async leaseTimeToLive(id: string, options: CallOptions): Promise<LeaseTimeToLiveResponse> {
    return decodeTimeToLive(await this.#call('/etcdserverpb.Lease/LeaseTimeToLive', encodeLeaseId(id), options));
  }

  watch(handlers: StreamHandlers<WatchResponse>, options?: StreamOptions): Promise<Stream<WatchRequest>> {
    // etcd checks the stream's token at each watch creation, and refuses one whose token expired
    // with a cancel of watch id -1, which no watcher owns: end the stream, so that its owner opens a
    // new one (with a new token) and every watcher on it watches again.
    const stale = (res: WatchResponse): string | undefined => (res.canceled && invalidToken.test(res.cancelReason) ? res.cancelReason : undefined);
    return this.#open('/etcdserverpb.Watch/Watch', decodeWatch, encodeWatch, handlers, options, stale);
  }

  leaseKeepAlive(handlers: StreamHandlers<LeaseKeepAliveResponse>, options?: StreamOptions): Promise<Stream<string>> {
    return this.#open('/etcdserverpb.Lease/LeaseKeepAlive', decodeKeepAlive, encodeLeaseId, handlers, options);
  }

  markSilent(member: Member): void {
    this.#members.markSilent(member);
  }

  markAnswered(member: Member): void {
    this.#members.answered(member);
  }

  onSilent(listener: (member: Member) => void): () => void {
    return this.#members.onSilent(listener);
  }

  close(): void {
    this.#closed = true;
    this.#members.close();
  }

  /** Not `async`: a call is a hot path, and #attempt's promise is the only layer it needs. */
  #call(path: string, body: Uint8Array, options: CallOptions): Promise<Buffer> {
    if (this.#closed) return Promise.reject(closedError(undefined));
    const token = this.#tokens.known;
    return token === null ? this.#callAuthenticated(path, body, options, false) : this.#attempt(path, body, options, token, false);
  }

  /** A call that must wait for a token first: the wait counts against its deadline. */
  async #callAuthenticated(path: string, body: Uint8Array, options: CallOptions, retried: boolean): Promise<Buffer> {
    const started = performance.now();
    const token = await this.#tokens.current(options.timeoutMs, options.signal);
    const timeoutMs = Math.max(1, Math.ceil(options.timeoutMs - (performance.now() - started)));
    return this.#attempt(path, body, { timeoutMs, signal: options.signal }, token, retried);
  }

  async #attempt(path: string, body: Uint8Array, options: CallOptions, token: string | undefined, retried: boolean): Promise<Buffer> {
    const member = this.#members.pick();
    try {
      const res = await unary(member.channel, { path, token, timeoutMs: options.timeoutMs, requireLeader: true }, body, options.signal);
      this.#members.answered(member);
      return res;
    } catch (error) {
      if (!retried && error instanceof TransportError && invalidToken.test(error.message)) {
        this.#tokens.invalidate(token);
        return this.#callAuthenticated(path, body, options, true);
      }
      this.#learn(member, error);
      throw error;
    }
  }

  async #open<Req, Res>(
    path: string,
    decode: (m: Buffer) => Res,
    encode: (req: Req) => Uint8Array,
    handlers: StreamHandlers<Res>,
    options: StreamOptions | undefined,
    stale?: (res: Res) => string | undefined,
  ): Promise<Stream<Req>> {
    if (this.#closed) throw closedError(undefined);
    const token = await this.#tokens.current();
    const member = this.#members.pick(options?.avoid);
    const end = (error: TransportError): void => {
      if (invalidToken.test(error.message)) this.#tokens.invalidate(token);
      // A stream that broke on a dead or leaderless member must not be reopened there: a keep-alive
      // stream that kept going back to it would let the lease expire while other members are healthy.
      else this.#learn(member, error);
      handlers.end(error);
    };
    let raw: ReturnType<typeof openStream>;
    try {
      raw = openStream(member.channel, { path, token, requireLeader: options?.requireLeader ?? false }, (m) => {
        let res: Res;
        try {
          res = decode(m);
        } catch (error) {
          raw.close();
          end(new TransportError(`an answer that does not decode: ${(error as Error).message}`, { code: 'INTERNAL', kind: 'transient', endpoint: member.endpoint, cause: error }));
          return;
        }
        const reason = stale?.(res);
        if (reason === undefined) handlers.message(res);
        else {
          raw.close();
          end(new TransportError(`16 UNAUTHENTICATED: ${reason}`, { code: 'UNAUTHENTICATED', kind: 'transient', endpoint: member.endpoint }));
        }
      }, end);
    } catch (error) {
      throw connectionError(error as Error, member.endpoint);
    }
    return { member, send: (req) => raw.send(encode(req)), close: () => raw.close() };
  }

  /**
   * What a failed call or stream says of its member: no answer in time, unreachable, or "no leader"
   * (etcd's require-leader refusal) → try another member next; any other refusal is an answer. An
   * `OK` end (etcd ended a stream) says nothing.
   */
  #learn(member: H2Member, error: unknown): void {
    if (!(error instanceof TransportError)) return;
    if (isUnreachable(error) || error.code === 'UNAVAILABLE' || error.code === 'DEADLINE_EXCEEDED') this.#members.markSilent(member);
    else if (error.code !== 'OK') this.#members.answered(member);
  }

  /**
   * A token from the first member that gives one, trying them in the order of `members.ts`, each
   * within `attempts.budget()` (see `auth.ts`); each attempt tells the member choice what it learned.
   * A refusal (wrong password) is final at once.
   */
  async #authenticate(username: string, password: string, attempts: Attempts): Promise<string> {
    const body = encodeAuthenticate(username, password);
    this.authentications++;
    let last: unknown;
    for (const member of this.#members.ordered()) {
      const budget = Math.ceil(attempts.budget());
      if (budget <= 0) break;
      attempts.endpoint = member.endpoint;
      try {
        const token = decodeAuthenticate(await unary(member.channel, { path: '/etcdserverpb.Auth/Authenticate', timeoutMs: budget }, body));
        this.#members.answered(member);
        return token;
      } catch (error) {
        last = error;
        this.#learn(member, error);
        if (!(error instanceof TransportError) || error.kind !== 'transient') break;
      }
    }
    throw last ?? new TransportError('4 DEADLINE_EXCEEDED: no time left to authenticate', { code: 'DEADLINE_EXCEEDED', kind: 'transient', endpoint: undefined });
  }
}
