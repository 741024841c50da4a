/**
 * The port over the user's `etcd3` client: every call and stream goes through the client's own
 * connection pool (`pool.ts`: our member choice, require-leader, no etcd3 retry), and its messages and
 * errors are translated to and from the port's (`convert.ts`, `errors.ts`). Selectable with the
 * `transport: 'etcd3'` Session option; the lean `h2/` transport does the same with half the CPU.
 *
 * The user owns the client: `close()` here closes nothing (closing the client ends everything).
 */
import type { IDuplexStream, ILeaseGrantResponse, ILeaseKeepAliveResponse, ILeaseTimeToLiveResponse, IRangeResponse, ITxnResponse, IWatchResponse, Namespace } from 'etcd3';
import { raceSignal } from '../abort.js';
import type { LeaseGrantResponse, LeaseKeepAliveResponse, LeaseTimeToLiveResponse, RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchRequest, WatchResponse } from '../messages.js';
import { TransportError, type CallOptions, type EtcdTransport, type Member, type Stream, type StreamHandlers, type StreamOptions } from '../port.js';
import { header, keepAliveResponse, rangeResponse, timeToLiveResponse, toEtcd3Range, txnRequest, txnResponse, watchRequest, watchResponse } from './convert.js';
import { toTransportError } from './errors.js';
import { authUserOf, endpointOf, endpointsOf, markAnswered, markSilent, onSilent, openKeepAlive, openWatch, unary, type UnaryMethod } from './pool.js';
import { closeStream } from './streams.js';

export class Etcd3Transport implements EtcdTransport {
  readonly #ns: Namespace;
  /** The pool's opaque hosts as port members, one object per host. */
  readonly #members = new Map<unknown, Member>();
  readonly #hosts = new WeakMap<Member, unknown>();

  constructor(ns: Namespace) {
    this.#ns = ns;
  }

  get endpoints(): readonly string[] {
    return endpointsOf(this.#ns);
  }

  get user(): string | undefined {
    return authUserOf(this.#ns);
  }

  async range(req: RangeRequest, options: CallOptions): Promise<RangeResponse> {
    return rangeResponse(await this.#call<IRangeResponse>({ service: 'KV', method: 'range' }, toEtcd3Range(req), options));
  }

  async txn(req: TxnRequest, options: CallOptions): Promise<TxnResponse> {
    return txnResponse(await this.#call<ITxnResponse>({ service: 'KV', method: 'txn' }, txnRequest(req), options));
  }

  async leaseGrant(ttlSeconds: number, options: CallOptions): Promise<LeaseGrantResponse> {
    const res = await this.#call<ILeaseGrantResponse>({ service: 'Lease', method: 'leaseGrant' }, { TTL: ttlSeconds }, options);
    if (res.error) throw new TransportError(`etcd refused the lease: ${res.error}`, { code: 'UNKNOWN', kind: 'final', endpoint: undefined });
    return { header: header(res.header), id: String(res.ID), ttl: Number(res.TTL) };
  }

  async leaseRevoke(id: string, options: CallOptions): Promise<void> {
    await this.#call({ service: 'Lease', method: 'leaseRevoke' }, { ID: id }, options);
  }

  async leaseTimeToLive(id: string, options: CallOptions): Promise<LeaseTimeToLiveResponse> {
    return timeToLiveResponse(await this.#call<ILeaseTimeToLiveResponse>({ service: 'Lease', method: 'leaseTimeToLive' }, { ID: id }, options));
  }

  async watch(handlers: StreamHandlers<WatchResponse>, _options?: StreamOptions): Promise<Stream<WatchRequest>> {
    const { stream, host } = await this.#opening(openWatch(this.#ns));
    return this.#wrap(stream, host, (res: IWatchResponse) => handlers.message(watchResponse(res)), handlers, watchRequest);
  }

  async leaseKeepAlive(handlers: StreamHandlers<LeaseKeepAliveResponse>, options?: StreamOptions): Promise<Stream<string>> {
    const avoid = options?.avoid === undefined ? undefined : this.#hosts.get(options.avoid);
    const { stream, host } = await this.#opening(openKeepAlive(this.#ns, avoid));
    return this.#wrap(stream, host, (res: ILeaseKeepAliveResponse) => handlers.message(keepAliveResponse(res)), handlers, (id: string) => ({ ID: id }));
  }

  markSilent(member: Member): void {
    markSilent(this.#ns, this.#hosts.get(member));
  }

  markAnswered(member: Member): void {
    markAnswered(this.#ns, this.#hosts.get(member));
  }

  onSilent(listener: (member: Member) => void): () => void {
    return onSilent(this.#ns, (host) => listener(this.#member(host)));
  }

  close(): void {
    // The user's client: theirs to close.
  }

  async #call<Res>(method: UnaryMethod, payload: object, options: CallOptions): Promise<Res> {
    const calling = unary<Res>(this.#ns, method, payload, { deadline: Date.now() + options.timeoutMs }).catch((error: unknown) => {
      throw toTransportError(error, endpointOf(error));
    });
    return raceSignal(calling, options.signal);
  }

  async #opening<S>(opening: Promise<{ stream: S; host: unknown }>): Promise<{ stream: S; host: unknown }> {
    try {
      return await opening;
    } catch (error) {
      throw toTransportError(error, endpointOf(error));
    }
  }

  #member(host: unknown): Member {
    let member = this.#members.get(host);
    if (!member) {
      const endpoint = (host as { host?: unknown } | undefined)?.host;
      member = { endpoint: typeof endpoint === 'string' ? endpoint : '(unknown endpoint)' };
      this.#members.set(host, member);
      this.#hosts.set(member, host);
    }
    return member;
  }

  /** The port's side of an etcd3 duplex stream: `end` at most once, nothing after our `close()`. */
  #wrap<Req, Raw, RawRes>(
    stream: IDuplexStream<Raw, RawRes>,
    host: unknown,
    message: (res: RawRes) => void,
    handlers: StreamHandlers<unknown>,
    encode: (req: Req) => Raw,
  ): Stream<Req> {
    const member = this.#member(host);
    let done = false;
    const end = (error: unknown): void => {
      if (done) return;
      done = true;
      closeStream(stream);
      const failure = toTransportError(error, member.endpoint);
      handlers.end(failure instanceof TransportError ? failure : new TransportError(String((error as Error)?.message ?? error), { code: 'UNAVAILABLE', kind: 'transient', endpoint: member.endpoint, cause: error }));
    };
    stream.on('data', (res: RawRes) => {
      if (!done) message(res);
    });
    stream.on('error', (error: Error) => end(error));
    stream.on('end', () => end(new TransportError('the stream ended', { code: 'UNAVAILABLE', kind: 'transient', endpoint: member.endpoint })));
    return {
      member,
      send: (req) => {
        if (!done) stream.write(encode(req));
      },
      close: () => {
        if (done) return;
        done = true;
        closeStream(stream);
      },
    };
  }
}
