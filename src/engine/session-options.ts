/**
 * Validation of Session options, shared by `Session.create` and the `LeaderElector` constructor (which
 * must refuse bad session options up front rather than retry them for ever).
 */
import type { IPolicy } from 'cockatiel';
import { EtcdOps } from '../transport/etcd.js';
import { defaultRetryPolicy } from '../transport/retry.js';
import { transportFor, transportKind, transportKinds, type EtcdClient, type TransportKind } from '../transport/select.js';
import { checkInteger, checkMs, checkOptions, checkSignal, show } from './validate.js';

/** etcd's largest lease TTL, in seconds (`MaxLeaseTTL`); a larger grant is refused by the server. */
export const maxTtl = 9_000_000_000;

/** The option names `Session.create` accepts. */
export const sessionOptionNames = [
  'ttl',
  'leaseId',
  'keepAliveInterval',
  'safetyMargin',
  'requestTimeout',
  'retryPolicy',
  'transport',
  'signal',
] as const;

/** Session options after validation (timings that derive from the TTL are resolved by {@link timings}). */
export interface CheckedSessionOptions {
  ttl: number | undefined;
  leaseId: string | undefined;
  keepAliveInterval: number | undefined;
  safetyMargin: number | undefined;
  requestTimeout: number;
  retryPolicy: IPolicy | undefined;
  transport: TransportKind;
  signal: AbortSignal | undefined;
}

/** Throws a TypeError naming the value when `client` is not an etcd3 client or namespace. */
export function checkClient(client: unknown, where: string): asserts client is EtcdClient {
  if (client === null || typeof client !== 'object' || !('leaseClient' in client) || !('kv' in client)) {
    throw new TypeError(`Expected \`client\` of ${where} to be an etcd3 Etcd3 or Namespace, got ${show(client)}`);
  }
}

function parseLeaseId(value: unknown): string {
  if (typeof value === 'bigint' && value > 0n && value < 2n ** 63n) return value.toString();
  if (typeof value === 'string' && /^[1-9][0-9]{0,18}$/.test(value) && BigInt(value) < 2n ** 63n) return value;
  throw new TypeError(`Expected \`leaseId\` to be a positive decimal string or bigint below 2^63 (etcd's decimal lease id), got ${show(value)}`);
}

/**
 * Checks every option that can be checked without asking etcd: names, types, ranges.
 * @throws TypeError/RangeError naming the option and the value.
 */
export function checkSessionOptions(options: unknown, where: string, defaults: { ttl: number; requestTimeout: number }): CheckedSessionOptions {
  const o = checkOptions(options as Record<string, unknown> | undefined, where, sessionOptionNames);
  const signal = o['signal'];
  checkSignal(signal, where);
  const policy = o['retryPolicy'];
  if (policy !== undefined && (typeof policy !== 'object' || policy === null || typeof (policy as IPolicy).execute !== 'function')) {
    throw new TypeError(`Expected \`retryPolicy\` to be a cockatiel policy (an object with \`execute\`), got ${show(policy)}`);
  }
  const transport = o['transport'];
  if (transport !== undefined && !(transportKinds as readonly unknown[]).includes(transport)) {
    throw new TypeError(`Expected \`transport\` to be one of ${transportKinds.map((k) => `'${k}'`).join(', ')}, got ${show(transport)}`);
  }
  const leaseId = o['leaseId'] === undefined ? undefined : parseLeaseId(o['leaseId']);
  if (leaseId !== undefined && o['ttl'] !== undefined) {
    throw new TypeError(`Options \`ttl\` and \`leaseId\` of ${where} exclude each other: an adopted lease keeps the TTL it was granted with`);
  }
  return {
    ttl: leaseId === undefined ? checkInteger('ttl', o['ttl'] ?? defaults.ttl, 1, maxTtl) : undefined,
    leaseId,
    keepAliveInterval: o['keepAliveInterval'] === undefined ? undefined : checkMs('keepAliveInterval', o['keepAliveInterval']),
    safetyMargin: o['safetyMargin'] === undefined ? undefined : checkMs('safetyMargin', o['safetyMargin'], true),
    requestTimeout: checkMs('requestTimeout', o['requestTimeout'] ?? defaults.requestTimeout),
    retryPolicy: policy as IPolicy | undefined,
    transport: transportKind(transport as TransportKind | undefined),
    signal: signal as AbortSignal | undefined,
  };
}

/**
 * The keep-alive interval and safety margin for a lease of `ttl` seconds: the given ones, or the
 * defaults (TTL/3 and TTL/10).
 * @throws RangeError when the margin is not below the TTL, or the interval not below TTL − margin.
 */
export function timings(ttl: number, options: Pick<CheckedSessionOptions, 'keepAliveInterval' | 'safetyMargin'>): { interval: number; margin: number } {
  const ttlMs = ttl * 1000;
  const margin = options.safetyMargin ?? ttl * 100;
  if (margin >= ttlMs) {
    throw new RangeError(`Expected \`safetyMargin\` to be less than the TTL (${ttlMs} ms), got \`${margin}\``);
  }
  const interval = options.keepAliveInterval ?? ttlMs / 3;
  if (interval >= ttlMs - margin) {
    throw new RangeError(`Expected \`keepAliveInterval\` to be less than TTL − safetyMargin (${ttlMs - margin} ms), got \`${interval}\``);
  }
  return { interval, margin };
}

/** The etcd calls of a session on `client` with checked options (its transport, deadline and retry policy). */
export function opsFor(client: EtcdClient, o: Pick<CheckedSessionOptions, 'transport' | 'retryPolicy' | 'requestTimeout'>, recheckMs?: number): EtcdOps {
  const { transport, prefix } = transportFor(client, o.transport);
  return new EtcdOps(transport, prefix, o.retryPolicy ?? defaultRetryPolicy(), o.requestTimeout, recheckMs);
}
