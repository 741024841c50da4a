/**
 * The options of the HTTP/2 transport: the connection options a user gives an `etcd3` client
 * (`hosts`, `credentials`, `auth`, and the TLS server-name override from `grpcOptions`), read
 * structurally, plus our own timings.
 */
import type { SecureContextOptions } from 'node:tls';
import { maxMessageBytes } from './framing.js';

/** The options (a subset of `etcd3`'s, same names and shapes, and our timings). */
export interface H2Options {
  /** `host:port`, `http://host:port` or `https://host:port`; one or many. */
  hosts: string | readonly string[];
  /** TLS: the CA to trust, and the client certificate and key for mutual TLS. */
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  /** etcd authentication. */
  auth?: { username: string; password: string };
  /**
   * gRPC channel options; read: `grpc.ssl_target_name_override` (the TLS server name) and
   * `grpc.max_receive_message_length` (the largest answer accepted, in bytes; -1 for no limit;
   * default 4 MiB, as grpc-js).
   */
  grpcOptions?: Record<string, unknown>;
  /** How often an HTTP/2 ping goes out while streams are open, in ms. @default 10_000 */
  pingIntervalMs?: number;
  /** How long a ping may go unanswered before the connection is dropped, in ms. @default 5_000 */
  pingTimeoutMs?: number;
  /** How long a member that went silent is tried last, in ms. @default 10_000 */
  silenceMemoryMs?: number;
  /**
   * How long connecting to a member (TCP and the TLS handshake) may take before the connection is
   * dropped and the streams waiting on it fail (transient), in ms. A call's own deadline ends its
   * stream sooner. @default 10_000
   */
  connectTimeoutMs?: number;
}

/** The options resolved: endpoints without scheme, TLS options or none. */
export interface ResolvedH2Options {
  endpoints: string[];
  tls: (SecureContextOptions & { servername?: string }) | undefined;
  auth: { username: string; password: string } | undefined;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  silenceMemoryMs: number;
  connectTimeoutMs: number;
  maxReceiveBytes: number;
}

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function maxReceiveBytes(grpcOptions: Record<string, unknown> | undefined): number {
  const value = grpcOptions?.['grpc.max_receive_message_length'];
  if (value === undefined) return maxMessageBytes;
  if (value === -1) return Number.POSITIVE_INFINITY;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`Expected \`grpcOptions['grpc.max_receive_message_length']\` to be a whole number of bytes or -1, got ${show(value)}`);
  }
  return value;
}

/** Checks and resolves `options`; throws a TypeError naming the value that is wrong. */
export function resolveH2Options(options: H2Options): ResolvedH2Options {
  const hosts = typeof options.hosts === 'string' ? [options.hosts] : [...options.hosts];
  if (hosts.length === 0) throw new TypeError('Expected `hosts` to name at least one etcd endpoint, got none');
  const secure = hosts.map((h) => h.startsWith('https://'));
  if (secure.some((s) => s !== secure[0])) throw new TypeError(`Expected \`hosts\` to be all https:// or all not, got ${show(hosts.join(', '))}`);
  const endpoints = hosts.map((h) => {
    const endpoint = h.replace(/^https?:\/\//, '').replace(/\/$/, '');
    const m = /^(\[[0-9a-fA-F:.]+\]|[^\s/:[\]]+):(\d{1,5})$/.exec(endpoint);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65_535) {
      throw new TypeError(`Expected each of \`hosts\` to be host:port with a port from 1 to 65535, an IPv6 address in brackets ([::1]:2379), optionally with http:// or https://; got ${show(h)}`);
    }
    return endpoint;
  });
  const c = options.credentials;
  const servername = options.grpcOptions?.['grpc.ssl_target_name_override'];
  const tls =
    c || secure[0]
      ? {
          ...(c ? { ca: c.rootCertificate, ...(c.certChain ? { cert: c.certChain } : {}), ...(c.privateKey ? { key: c.privateKey } : {}) } : {}),
          ...(typeof servername === 'string' ? { servername } : {}),
        }
      : undefined;
  return {
    endpoints,
    tls,
    auth: options.auth ? { username: options.auth.username, password: options.auth.password } : undefined,
    pingIntervalMs: options.pingIntervalMs ?? 10_000,
    pingTimeoutMs: options.pingTimeoutMs ?? 5_000,
    silenceMemoryMs: options.silenceMemoryMs ?? 10_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    maxReceiveBytes: maxReceiveBytes(options.grpcOptions),
  };
}
