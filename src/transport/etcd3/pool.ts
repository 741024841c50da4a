/**
 * Everything that reaches into `etcd3`'s connection pool, in one module: opening gRPC streams (lease
 * keep-alives, watches) and making unary calls on a member we choose (see member-choice.ts: one that
 * answered, before one not heard from, before one that went silent), and knowing which member each
 * call went to.
 *
 * Why not the public clients: `etcd3` picks a random host for every stream and call, so after a
 * stream stalls on a paused or partitioned member, a replacement lands on that same member half the
 * time (with two endpoints), and a call that timed out there is retried there a third of the time
 * (with three) — and a session with a short TTL has only a few tries before its deadline. Its pool
 * takes a host order as an argument; we pass our own. What each member did is learnt per client, from
 * every call and stream: keep-alives, watches and calls of every session on that client learn from
 * each other. Calls and streams carry etcd's "require leader" metadata: a member cut off from the
 * quorum refuses them at once ("no leader") instead of letting them wait out their deadline, and ends
 * its streams. Unary calls made here also skip `etcd3`'s global retry policy (leasehold retries with
 * its own), which re-sends a call with its already expired deadline and so opens the circuit breakers
 * of healthy members; and each failure is attributed to the endpoint it came from.
 *
 * This leans on `etcd3` 1.1's pool internals (`pool.hosts[].host`, `pool.withConnection`,
 * `pool.authenticator`). When the pool does not look as expected (another `etcd3` version, a mock),
 * every function falls back to the public clients; `test/integration/pool.test.ts` fails loudly if a
 * new `etcd3` changes what this module relies on.
 */
import { MemberChoice } from '../member-choice.js';
import {
  castGrpcError,
  EtcdInvalidAuthTokenError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type IDuplexStream,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
  type IWatchRequest,
  type IWatchResponse,
  type Namespace,
} from 'etcd3';

export type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

interface HostLike {
  /** `host:port`, without the protocol. */
  host?: unknown;
}

interface PoolLike {
  hosts: HostLike[];
  withConnection<R>(
    service: 'Lease' | 'Watch' | 'KV',
    fn: (args: { resource: HostLike; client: Record<string, unknown>; metadata: unknown }) => R | Promise<R>,
    order: Generator<HostLike>,
  ): Promise<R>;
  authenticator?: { invalidateMetadata?: () => void };
}

/** Per client (its pool): what it learnt of each member (see member-choice.ts). */
const choices = new WeakMap<object, MemberChoice<HostLike>>();
/** The endpoint a failed call went to, for error messages. */
const failedAt = new WeakMap<object, string>();

/** The object per-client state is kept on: the client's pool (shared by its namespaces), else the namespace. */
export function poolKey(ns: Namespace): object {
  return poolOf(ns) ?? ns;
}

function poolOf(ns: Namespace): PoolLike | undefined {
  const pool = (ns as unknown as { pool?: Partial<PoolLike> }).pool;
  if (pool && Array.isArray(pool.hosts) && typeof pool.withConnection === 'function') return pool as PoolLike;
  return undefined;
}

/** The endpoints (`host:port`) the client talks to, as far as they can be known. */
export function endpointsOf(ns: Namespace): string[] {
  return (poolOf(ns)?.hosts ?? []).map((h) => h.host).filter((h): h is string => typeof h === 'string');
}

/** The user name the client signs in with (never the password), for messages. */
export function authUserOf(ns: Namespace): string | undefined {
  const user = (poolOf(ns) as { options?: { auth?: { username?: unknown } } } | undefined)?.options?.auth?.username;
  return typeof user === 'string' ? user : undefined;
}

/** The endpoint a call that failed with `error` went to, when it went through this module. */
export function endpointOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? failedAt.get(error) : undefined;
}

function choiceOf(pool: PoolLike): MemberChoice<HostLike> {
  let choice = choices.get(pool);
  if (!choice) choices.set(pool, (choice = new MemberChoice()));
  return choice;
}

/** Remembers that a stream or call on `host` (as returned by the functions here) went silent. */
export function markSilent(ns: Namespace, host: unknown): void {
  const pool = poolOf(ns);
  if (pool && host !== undefined) choiceOf(pool).silent(host as HostLike);
}

/** Remembers that `host` answered a request sent on one of its streams (see the port's `markAnswered`). */
export function markAnswered(ns: Namespace, host: unknown): void {
  const pool = poolOf(ns);
  if (pool && host !== undefined) choiceOf(pool).answered(host as HostLike);
}

/**
 * Calls `listener` with the host (as the functions here return it) each time one of the client's
 * members goes silent — a keep-alive stalled, a call got no answer — so that a stream on that member
 * can check itself at once. Returns the way to stop.
 */
export function onSilent(ns: Namespace, listener: (host: unknown) => void): () => void {
  const pool = poolOf(ns);
  return pool ? choiceOf(pool).onSilent(listener) : () => undefined;
}

/** A failure that says the member did not serve the call: no answer in time, unreachable, no leader. */
function isSilence(error: unknown): boolean {
  return error instanceof GRPCDeadlineExceededError || error instanceof GRPCUnavailableError;
}

/**
 * Records how `host` met a call or a stream: answered, or silent (see {@link isSilence}). A call or
 * stream we cancelled ourselves says nothing of the member: counted as an answer, the stream a ping
 * found silent and closed would make its member "answered" again, and the next one open there.
 */
function learn(pool: PoolLike, host: HostLike, error?: unknown): void {
  const choice = choiceOf(pool);
  const cause = error === undefined ? undefined : castGrpcError(error as Error);
  if (cause instanceof GRPCCancelledError) return;
  if (cause !== undefined && isSilence(cause)) choice.silent(host);
  else choice.answered(host);
}

/** The pool's hosts in the order the client's choice gives, forever (the pool asks for as many as it tries). */
function* preferring(pool: PoolLike, avoid: unknown): Generator<HostLike> {
  for (;;) yield* choiceOf(pool).order(pool.hosts, avoid as HostLike | undefined);
}

async function open<S>(
  ns: Namespace,
  service: 'Lease' | 'Watch',
  method: string,
  avoid: unknown,
  fallback: () => Promise<S>,
): Promise<{ stream: S; host: unknown }> {
  const pool = poolOf(ns);
  if (!pool) return { stream: await fallback(), host: undefined };
  let host: HostLike | undefined;
  const stream = await pool.withConnection(
    service,
    ({ resource, client, metadata }) => {
      host = resource;
      const call = client[method] as (metadata: unknown, options: object) => S;
      return call.call(client, requireLeader(metadata), {});
    },
    preferring(pool, avoid),
  );
  // What the stream's end says of its member: a refusal ("no leader") or a broken connection. Its
  // messages are not answers of themselves (events arrive from a member our requests no longer reach):
  // the stream's owner tells which are (markAnswered).
  const on = (stream as { on?: (event: string, fn: (arg: unknown) => void) => void }).on?.bind(stream);
  const member = host;
  if (member !== undefined && on) on('error', (error) => learn(pool, member, error ?? new Error('stream error')));
  return { stream, host };
}

/**
 * etcd's "require leader" metadata (`hasleader: true`): a member that has lost its leader (cut off from
 * the quorum) refuses a call or a new stream at once, and ends its open streams within three election
 * timeouts, instead of keeping them open and quiet (etcd issue 8980).
 */
function requireLeader(metadata: unknown): unknown {
  const m = metadata as { clone?: () => { set(key: string, value: string): void } };
  if (typeof m?.clone !== 'function') return metadata;
  const copy = m.clone();
  copy.set('hasleader', 'true');
  return copy;
}

/**
 * Opens a keep-alive stream, on a host other than `avoid` and the client's silent hosts when there is
 * one. Resolves with the stream and the host it is on (opaque; pass it back as `avoid`).
 */
export function openKeepAlive(ns: Namespace, avoid?: unknown): Promise<{ stream: KeepAliveStream; host: unknown }> {
  return open(ns, 'Lease', 'leaseKeepAlive', avoid, () => ns.leaseClient.leaseKeepAlive());
}

/** Opens a watch stream, on a host other than the client's silent ones when there is one. */
export function openWatch(ns: Namespace): Promise<{ stream: WatchStream; host: unknown }> {
  return open(ns, 'Watch', 'watch', undefined, () => ns.watchClient.watch());
}

/** The unary calls leasehold makes, by service and method name as in etcd's proto. */
export type UnaryMethod = { service: 'KV'; method: 'txn' | 'range' } | { service: 'Lease'; method: 'leaseGrant' | 'leaseRevoke' | 'leaseTimeToLive' };

type Callback = (error: Error | null, res: unknown) => void;

/**
 * One attempt of a unary call, on the member the client's standings prefer (see the file comment),
 * with "require leader"; no retries (the caller's policy decides). Its outcome updates the member's
 * standing. A failure is `etcd3`'s typed error, and {@link endpointOf} tells which endpoint it came
 * from. An expired auth token is refreshed and the call made once more, as `etcd3` itself does.
 */
export async function unary<Res>(
  ns: Namespace,
  call: UnaryMethod,
  payload: object,
  options: { deadline: number },
  retriedAuth = false,
): Promise<Res> {
  const pool = poolOf(ns);
  if (!pool) {
    const client = (call.service === 'KV' ? ns.kv : ns.leaseClient) as unknown as Record<string, (p: object, o: object) => Promise<Res>>;
    return client[call.method]!.call(client, payload, options);
  }
  let endpoint: string | undefined;
  let host: HostLike | undefined;
  try {
    const res = await pool.withConnection(
      call.service,
      ({ resource, client, metadata }) => {
        host = resource;
        endpoint = typeof resource.host === 'string' ? resource.host : undefined;
        const method = client[call.method] as (p: object, m: unknown, o: object, cb: Callback) => void;
        return new Promise<Res>((resolve, reject) => {
          method.call(client, payload, requireLeader(metadata), options, (error, res) => {
            if (error) reject(castGrpcError(error));
            else resolve(res as Res);
          });
        });
      },
      preferring(pool, undefined),
    );
    if (host !== undefined) learn(pool, host);
    return res;
  } catch (error) {
    if (host !== undefined) learn(pool, host, error);
    if (error instanceof EtcdInvalidAuthTokenError && !retriedAuth) {
      pool.authenticator?.invalidateMetadata?.();
      return unary(ns, call, payload, options, true);
    }
    if (endpoint !== undefined && typeof error === 'object' && error !== null) failedAt.set(error, endpoint);
    throw error;
  }
}

/** The options the user gave the client (`hosts`, `credentials`, `auth`, `grpcOptions`), when they can be read. */
export function clientOptionsOf(ns: Namespace): Record<string, unknown> | undefined {
  const options = (poolOf(ns) as { options?: unknown } | undefined)?.options;
  return typeof options === 'object' && options !== null ? (options as Record<string, unknown>) : undefined;
}

const closeListeners = new WeakMap<object, (() => void)[]>();

/**
 * Calls `fn` when the user closes the client (`Etcd3.close()` closes its pool): what leasehold opened
 * for that client (another transport's connections) closes with it.
 */
export function onClientClose(ns: Namespace, fn: () => void): void {
  const pool = poolOf(ns) as (PoolLike & { close?: () => void }) | undefined;
  if (!pool || typeof pool.close !== 'function') return;
  let listeners = closeListeners.get(pool);
  if (!listeners) {
    closeListeners.set(pool, (listeners = []));
    const close = pool.close.bind(pool);
    const all = listeners;
    pool.close = () => {
      for (const listener of all.splice(0)) listener();
      close();
    };
  }
  listeners.push(fn);
}
