/**
 * Opening gRPC streams (lease keep-alives, watches), preferring a member other than one that just
 * went silent.
 *
 * `etcd3` picks a random host for every stream, so after a stream stalls on a paused or partitioned
 * member, a replacement lands on that same member half the time (with two endpoints) — and a session
 * with a short TTL has only a few tries before its deadline, a waiter only a few re-checks before the
 * handoff is late. Its connection pool takes a host order as an argument; we pass one with the silent
 * host last. Which host went silent is remembered per client for a few seconds, so keep-alives and
 * watches of every session on that client learn from each other. If the pool does not look as
 * expected (another `etcd3` version, a mock), we fall back to the public clients.
 */
import type {
  IDuplexStream,
  ILeaseKeepAliveRequest,
  ILeaseKeepAliveResponse,
  IWatchRequest,
  IWatchResponse,
  Namespace,
} from 'etcd3';

export type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

interface PoolLike {
  hosts: unknown[];
  withConnection<R>(
    service: 'Lease' | 'Watch',
    fn: (args: { resource: unknown; client: Record<string, unknown>; metadata: unknown }) => R | Promise<R>,
    order: Generator<unknown>,
  ): Promise<R>;
}

/** How long a host that went silent is tried last. */
const silenceMemoryMs = 10_000;
const silent = new WeakMap<object, { host: unknown; until: number }>();

function poolOf(ns: Namespace): PoolLike | undefined {
  const pool = (ns as unknown as { pool?: Partial<PoolLike> }).pool;
  if (pool && Array.isArray(pool.hosts) && typeof pool.withConnection === 'function') return pool as PoolLike;
  return undefined;
}

/** Remembers that a stream on `host` (as returned by the open functions) went silent. */
export function markSilent(ns: Namespace, host: unknown): void {
  const pool = poolOf(ns);
  if (pool && host !== undefined) silent.set(pool, { host, until: performance.now() + silenceMemoryMs });
}

function silentHost(pool: PoolLike): unknown {
  const mark = silent.get(pool);
  return mark && mark.until > performance.now() ? mark.host : undefined;
}

/** Hosts in random order with `avoid` last, forever (the pool asks for as many as it tries). */
function* preferring(hosts: unknown[], avoid: unknown): Generator<unknown> {
  for (;;) {
    const others = hosts.filter((h) => h !== avoid);
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [others[i], others[j]] = [others[j], others[i]];
    }
    yield* others;
    if (hosts.includes(avoid)) yield avoid;
  }
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
  let host: unknown;
  const stream = await pool.withConnection(
    service,
    ({ resource, client, metadata }) => {
      host = resource;
      const call = client[method] as (metadata: unknown, options: object) => S;
      return call.call(client, metadata, {});
    },
    preferring(pool.hosts, avoid ?? silentHost(pool)),
  );
  return { stream, host };
}

/**
 * Opens a keep-alive stream, on a host other than `avoid` (or the client's last silent host) when
 * there is one. Resolves with the stream and the host it is on (opaque; pass it back as `avoid`).
 */
export function openKeepAlive(ns: Namespace, avoid?: unknown): Promise<{ stream: KeepAliveStream; host: unknown }> {
  return open(ns, 'Lease', 'leaseKeepAlive', avoid, () => ns.leaseClient.leaseKeepAlive());
}

/** Opens a watch stream, on a host other than the client's last silent one when there is one. */
export function openWatch(ns: Namespace): Promise<{ stream: WatchStream; host: unknown }> {
  return open(ns, 'Watch', 'watch', undefined, () => ns.watchClient.watch());
}
