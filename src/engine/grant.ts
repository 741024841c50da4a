/**
 * Granting (or adopting) a Session's lease: the I/O half of `Session.create`, so the Session itself
 * only keeps the lease alive and tracks its validity.
 *
 * The validity clock starts when the attempt that *succeeded* was sent — not before the first attempt,
 * which after a short outage would throw a good lease away — and a lease whose validity has already
 * run out by the time etcd answers is revoked rather than handed out (a session lost on arrival).
 */
import { LeaseLostError } from '../errors.js';
import { raceSignal } from '../transport/abort.js';
import type { EtcdClient } from '../transport/select.js';
import type { EtcdOps } from '../transport/etcd.js';
import { isLeaseNotFound } from '../transport/retry.js';
import { leaseHex } from './keys.js';
import { checkClient, checkSessionOptions, opsFor, timings } from './session-options.js';

/** A lease ready to be kept alive, with the timings and the calls of its session. */
export interface GrantedLease {
  client: EtcdClient;
  /** etcd's decimal lease id. */
  leaseId: string;
  /** The TTL etcd granted, in seconds. */
  ttl: number;
  /** The first validity deadline, on the performance.now() clock. */
  deadline: number;
  /** The keep-alive interval, in ms. */
  interval: number;
  /** The safety margin, in ms. */
  margin: number;
  /** The session's etcd calls (deadline, retry policy, re-check interval). */
  ops: EtcdOps;
  /** True when an existing lease was adopted (`leaseId`). */
  adopted: boolean;
}

/**
 * Checks `options`, then grants a lease (or looks up `options.leaseId`). Aborting `options.signal`
 * rejects with its reason and revokes a lease granted meanwhile.
 */
export async function grantLease(
  client: EtcdClient,
  options: unknown,
  defaults: { ttl: number; requestTimeout: number },
): Promise<GrantedLease> {
  checkClient(client, 'Session.create');
  const o = checkSessionOptions(options, 'Session.create', defaults);
  const signal = o.signal;
  signal?.throwIfAborted();
  const calls = opsFor(client, o);
  let sent = performance.now();
  const onAttempt = (): void => {
    sent = performance.now();
  };
  let leaseId: string;
  let ttl: number;
  let remaining: number;
  if (o.leaseId !== undefined) {
    leaseId = o.leaseId;
    const res = await calls.leaseTimeToLive(leaseId, signal, onAttempt);
    remaining = res.ttl;
    if (remaining <= 0) throw new LeaseLostError(`lease ${leaseHex(leaseId)} does not exist`, { leaseId });
    ttl = res.grantedTtl;
  } else {
    ttl = o.ttl!;
    remaining = ttl;
  }
  const { interval, margin } = timings(ttl, o);
  if (o.leaseId === undefined) {
    const grant = calls.leaseGrant(ttl, signal, onAttempt);
    try {
      const res = await raceSignal(grant, signal);
      leaseId = res.id;
      ttl = res.ttl;
    } catch (error) {
      // A grant that lands after the abort must not be left to run for its whole TTL.
      grant.then((res) => calls.leaseRevoke(res.id), () => undefined);
      throw error;
    }
  }
  const deadline = sent + remaining * 1000 - margin;
  if (performance.now() >= deadline) {
    void calls.leaseRevoke(leaseId!);
    throw new LeaseLostError(
      `lease ${leaseHex(leaseId!)} was granted ${Math.round(performance.now() - sent)} ms after the request was sent, past its validity (TTL ${ttl} s − safetyMargin ${margin} ms); etcd is too slow or unreachable`,
      { leaseId: leaseId! },
    );
  }
  // Waiters re-read a quiet watch every keep-alive interval, clamped to 1–10 s.
  const ops = calls.withRecheck(Math.min(10_000, Math.max(1000, interval)));
  return { client, leaseId: leaseId!, ttl, deadline, interval, margin, ops, adopted: o.leaseId !== undefined };
}

/**
 * Asks etcd whether the lease still exists: the reason it is gone (to lose the session with), or
 * `undefined` when it lives or etcd could not say.
 */
export async function leaseGone(ops: EtcdOps, leaseId: string, signal: AbortSignal): Promise<Error | undefined> {
  try {
    const res = await ops.leaseTimeToLive(leaseId, signal);
    return res.ttl <= 0 ? new LeaseLostError(`etcd reports lease ${leaseHex(leaseId)} with TTL ${res.ttl}`, { leaseId }) : undefined;
  } catch (error) {
    return isLeaseNotFound(error) ? (error as Error) : undefined;
  }
}
