/**
 * Which transport a client's calls go through: one transport per `etcd3` client (its pool, shared by
 * its namespaces) and kind, so every Session on the client shares one watch stream, one member
 * choice and, for `h2`, one connection per member.
 *
 * - `'h2'` (the default): the lean HTTP/2 transport (`h2/`), configured from the client's options
 *   (`hosts`, `credentials`, `auth`, `grpcOptions`'s TLS server name and receive limit); its
 *   connections close when the user closes the client. A client whose options cannot be read (a
 *   mock, another etcd3 version) gets the etcd3 transport.
 * - `'etcd3'`: the user's own client and connections (`etcd3/`).
 *
 * The default is the `LEASEHOLD_TRANSPORT` environment variable when it is set, else {@link defaultTransportKind}.
 *
 * A test-only seam: {@link bindTransport} makes a client use a transport of the caller's — leasehold's
 * own unit tests bind the in-memory fake of the port (`test/unit/fake-transport.ts`) to run sessions
 * and primitives without etcd. It is not API: no entry point of the package exports it, so users
 * cannot reach it, and no option names it (see docs/testing.md, "The in-memory fake of the port").
 */
import type { Namespace } from 'etcd3';
import { clientOptionsOf, onClientClose, poolKey } from './etcd3/pool.js';
import { Etcd3Transport } from './etcd3/transport.js';
import { H2Transport } from './h2/transport.js';
import type { H2Options } from './h2/options.js';
import type { EtcdTransport } from './port.js';

/** The user's etcd3 client (an `Etcd3` or a `Namespace`), as the layers below the public API name it. */
export type EtcdClient = Namespace;

/** The transports leasehold can use. */
export const transportKinds = ['h2', 'etcd3'] as const;
export type TransportKind = (typeof transportKinds)[number];

/** The transport used when neither the option nor `LEASEHOLD_TRANSPORT` says otherwise. */
export const defaultTransportKind: TransportKind = 'h2';

/** The kind to use: `chosen`, else `LEASEHOLD_TRANSPORT`, else the default. */
export function transportKind(chosen: TransportKind | undefined): TransportKind {
  if (chosen !== undefined) return chosen;
  const env = process.env['LEASEHOLD_TRANSPORT'];
  if (env === undefined || env === '') return defaultTransportKind;
  if (!(transportKinds as readonly string[]).includes(env)) {
    throw new TypeError(`Expected the environment variable LEASEHOLD_TRANSPORT to be one of ${transportKinds.join(', ')}, got ${JSON.stringify(env)}`);
  }
  return env as TransportKind;
}

const transports = new WeakMap<object, Map<TransportKind, EtcdTransport>>();
/** Transports bound by {@link bindTransport}, per client (its pool): they win over every kind. */
const bound = new WeakMap<object, EtcdTransport>();

/**
 * Test-only (see the file comment): every session, primitive and read on `client` — and on its
 * namespaces, which share its pool — goes through `transport`, whatever their `transport` option.
 * The caller closes `transport`.
 */
export function bindTransport(client: EtcdClient, transport: EtcdTransport): void {
  bound.set(poolKey(client), transport);
}

function h2Options(ns: Namespace): H2Options | undefined {
  const o = clientOptionsOf(ns);
  if (!o || (typeof o['hosts'] !== 'string' && !Array.isArray(o['hosts']))) return undefined;
  return {
    hosts: o['hosts'] as string | string[],
    ...(o['credentials'] ? { credentials: o['credentials'] as H2Options['credentials'] & object } : {}),
    ...(o['auth'] ? { auth: o['auth'] as H2Options['auth'] & object } : {}),
    ...(o['grpcOptions'] ? { grpcOptions: o['grpcOptions'] as Record<string, unknown> } : {}),
  };
}

function create(ns: Namespace, kind: TransportKind): EtcdTransport {
  const options = kind === 'h2' ? h2Options(ns) : undefined;
  if (!options) return new Etcd3Transport(ns);
  const transport = new H2Transport(options);
  onClientClose(ns, () => transport.close());
  return transport;
}

/** The client's transport of `kind`, and the namespace's key prefix (keys on the port are absolute). */
export function transportFor(ns: Namespace, kind: TransportKind): { transport: EtcdTransport; prefix: Buffer } {
  const key = poolKey(ns);
  const prefix = (ns as unknown as { prefix?: unknown }).prefix;
  const namespaced = Buffer.isBuffer(prefix) ? prefix : Buffer.alloc(0);
  const test = bound.get(key);
  if (test) return { transport: test, prefix: namespaced };
  let byKind = transports.get(key);
  if (!byKind) transports.set(key, (byKind = new Map()));
  let transport = byKind.get(kind);
  if (!transport) byKind.set(kind, (transport = create(ns, kind)));
  return { transport, prefix: namespaced };
}
