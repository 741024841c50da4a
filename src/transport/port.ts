/**
 * The port between leasehold and etcd: leasehold's own request and response types and the one
 * interface, {@link EtcdTransport}, that every etcd call of the library goes through. Adapters
 * implement it — over the user's `etcd3` client, or the lean HTTP/2 client in `h2/` — and only an
 * adapter knows a wire library's types (the way undici puts every transport behind its Dispatcher).
 * The messages themselves are in `messages.ts`.
 *
 * Keys are absolute (the caller adds its namespace prefix). Every unary call is one attempt, sent to
 * a member the adapter chooses (never one it remembers as silent while another is left), with a
 * deadline; retrying is the caller's policy. Failures reject with {@link TransportError}, which names
 * the endpoint and the gRPC status, so one function above the adapters explains them all.
 */
import type {
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseTimeToLiveResponse,
  RangeRequest,
  RangeResponse,
  TxnRequest,
  TxnResponse,
  WatchRequest,
  WatchResponse,
} from './messages.js';


/** Options of one unary call. */
export interface CallOptions {
  /** The call's deadline, in milliseconds from now (sent as `grpc-timeout`). */
  timeoutMs: number;
  /**
   * Aborting it cancels the call: it rejects with `signal.reason` unchanged. Pass it only where an
   * abandoned answer is not wanted (reads); a write's outcome decides what must be cleaned up.
   */
  signal?: AbortSignal;
}

/** A member of the cluster as an adapter knows it (opaque beyond its endpoint). */
export interface Member {
  /** `host:port`, as error messages name it. */
  readonly endpoint: string;
}

/** What a stream tells its owner. After `end`, or after the owner's `close()`, nothing more. */
export interface StreamHandlers<Res> {
  message(res: Res): void;
  /** The stream ended without our `close()`: by the server, a broken connection, or a GOAWAY. */
  end(error: TransportError): void;
}

/** Our side of a bidirectional stream. */
export interface Stream<Req> {
  /** The member the stream is on: pass it to `markSilent` when the stream goes quiet. */
  readonly member: Member;
  send(req: Req): void;
  /** Ends our side and cancels the stream; idempotent; no handler is called after it. */
  close(): void;
}

/** Options of a stream being opened. */
export interface StreamOptions {
  /** Prefer another member than this one (the member a stream just went silent on). */
  avoid?: Member;
  /**
   * Send etcd's require-leader metadata (`hasleader: true`): a member cut off from the quorum then
   * ends the stream instead of keeping it open and silent (etcd issue 8980).
   */
  requireLeader?: boolean;
}

/** The one interface to etcd; see the file comment. One instance per client. */
export interface EtcdTransport {
  /** Every endpoint (`host:port`) the transport may talk to, for messages. */
  readonly endpoints: readonly string[];
  /** The user it authenticates as (never the password), for messages. */
  readonly user: string | undefined;
  range(req: RangeRequest, options: CallOptions): Promise<RangeResponse>;
  txn(req: TxnRequest, options: CallOptions): Promise<TxnResponse>;
  leaseGrant(ttlSeconds: number, options: CallOptions): Promise<LeaseGrantResponse>;
  leaseRevoke(id: string, options: CallOptions): Promise<void>;
  leaseTimeToLive(id: string, options: CallOptions): Promise<LeaseTimeToLiveResponse>;
  /** Opens a watch stream (one per client, shared by every watcher: see the watch hub). */
  watch(handlers: StreamHandlers<WatchResponse>, options?: StreamOptions): Promise<Stream<WatchRequest>>;
  /** Opens a lease keep-alive stream; send the decimal lease id to renew it. */
  leaseKeepAlive(handlers: StreamHandlers<LeaseKeepAliveResponse>, options?: StreamOptions): Promise<Stream<string>>;
  /** Remembers that `member` went silent: streams and calls prefer other members for a while. */
  markSilent(member: Member): void;
  /**
   * Remembers that `member` answered a request sent on a stream (a keep-alive's answer, a watch's
   * creation or progress answer). A stream's other messages are not answers: events keep arriving from
   * a member that our requests no longer reach (a one-way loss), so adapters count a unary call's
   * answer themselves and leave a stream's to its owner.
   */
  markAnswered(member: Member): void;
  /**
   * Calls `listener` each time a member goes silent (to a call, a keep-alive, a stream), so that a
   * stream on that member can check itself at once. Returns the way to stop.
   */
  onSilent(listener: (member: Member) => void): () => void;
  /** Closes every connection; calls in flight reject, streams end. Idempotent. */
  close(): void;
}

/** How a failure reads to leasehold: what retrying can do about it. */
export type FailureKind =
  /** unreachable, reset, timed out, overloaded, leader changing: the same call may succeed later */
  | 'transient'
  /** the TLS handshake failed: a certificate was refused; retrying cannot help */
  | 'tls'
  /** the user name or password was refused, or the token could not be renewed */
  | 'auth'
  /** etcd's RBAC refused the request */
  | 'permission'
  /** the lease does not exist (expired or revoked) */
  | 'lease-not-found'
  /** the revision asked for was compacted */
  | 'compacted'
  /** anything else etcd refused for good (invalid argument, too large, closed client) */
  | 'final';

/** A call or stream that failed, attributed to the endpoint it went to. */
export class TransportError extends Error {
  override name = 'TransportError';
  /** The gRPC status name (`UNAVAILABLE`, `PERMISSION_DENIED`, …), or `CLIENT_CLOSED` after `close()`. */
  readonly code: string;
  readonly kind: FailureKind;
  /** The endpoint (`host:port`) the attempt went to, when it reached that far. */
  readonly endpoint: string | undefined;

  constructor(message: string, options: { code: string; kind: FailureKind; endpoint: string | undefined; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.kind = options.kind;
    this.endpoint = options.endpoint;
  }
}

/** True for a {@link TransportError} whose call may succeed when tried again. */
export function isTransientTransportError(error: unknown): boolean {
  return error instanceof TransportError && error.kind === 'transient';
}
