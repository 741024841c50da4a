/**
 * Opening a lease keep-alive stream, preferring a member other than the one that just went silent.
 *
 * `etcd3` picks a random host for every stream, so after a keep-alive stream stalls on a paused or
 * partitioned member, a replacement lands on that same member half the time (with two endpoints) —
 * and a session with a short TTL has only a few tries before its deadline. Its connection pool takes
 * a host order as an argument; we pass one with the silent host last. If the pool does not look as
 * expected (another `etcd3` version, a mock), we fall back to the public `leaseClient`.
 */
import type { ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, IDuplexStream, Namespace } from 'etcd3';

export type KeepAliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface PoolLike {
  hosts: unknown[];
  withConnection<R>(
    service: 'Lease',
    fn: (args: { resource: unknown; client: Record<string, unknown>; metadata: unknown }) => R | Promise<R>,
    order: Generator<unknown>,
  ): Promise<R>;
}

function poolOf(ns: Namespace): PoolLike | undefined {
  const pool = (ns as unknown as { pool?: Partial<PoolLike> }).pool;
  if (pool && Array.isArray(pool.hosts) && typeof pool.withConnection === 'function') return pool as PoolLike;
  return undefined;
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

/**
 * Opens a keep-alive stream, on a host other than `avoid` when there is one. Resolves with the
 * stream and the host it is on (opaque; pass it back as `avoid` after a stall).
 */
export async function openKeepAlive(ns: Namespace, avoid: unknown): Promise<{ stream: KeepAliveStream; host: unknown }> {
  const pool = poolOf(ns);
  if (!pool) return { stream: await ns.leaseClient.leaseKeepAlive(), host: undefined };
  let host: unknown;
  const stream = await pool.withConnection(
    'Lease',
    ({ resource, client, metadata }) => {
      host = resource;
      const open = client['leaseKeepAlive'] as (metadata: unknown, options: object) => KeepAliveStream;
      return open.call(client, metadata, {});
    },
    preferring(pool.hosts, avoid),
  );
  return { stream, host };
}
