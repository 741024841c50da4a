/**
 * `leasehold/prometheus`: Prometheus metrics for leasehold, fed by its diagnostics channels.
 * `prom-client` is an optional peer dependency: install it to use this module.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { registerLeaseholdMetrics } from 'leasehold/prometheus';
 *
 * const registry = new Registry();
 * const metrics = registerLeaseholdMetrics(registry, { names: (name) => name.split('/')[0] ?? name });
 * // … serve `await registry.metrics()` on /metrics …
 * metrics.unregister();
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, register as defaultRegistry, type Registry } from 'prom-client';
import {
  acquireChannel,
  campaignChannel,
  channels,
  type AcquireContext,
  type KeepAliveMessage,
  type ReleaseMessage,
  type SessionClosedMessage,
  type SessionLostMessage,
} from './diagnostics.js';

/** Options of {@link registerLeaseholdMetrics}. */
export interface LeaseholdMetricsOptions {
  /**
   * The `name` label: `true` for the primitive's name as it is, `false` for no such label, or a
   * function that maps names to a bounded set (for example the first path segment), to keep the
   * number of series in check. `leader_election_master_status` always has a `name` label, as in
   * client-go (`false` gives it the name as it is: elections are few).
   * @default true
   */
  names?: boolean | ((name: string) => string);
  /**
   * Buckets of the wait and hold histograms, in seconds.
   * @default [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]
   */
  buckets?: number[];
}

/** The defaults of {@link LeaseholdMetricsOptions}. */
export const leaseholdMetricsDefaults = {
  /** {@link LeaseholdMetricsOptions.names}: the `name` label holds the primitive's name as it is. */
  names: true,
  /** {@link LeaseholdMetricsOptions.buckets}: the buckets of the wait and hold histograms, in seconds. */
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
} as const;

/** What {@link registerLeaseholdMetrics} returns. */
export interface LeaseholdMetrics {
  /** Unsubscribes from the channels and removes the metrics from the registry. Idempotent. */
  unregister(): void;
}

/**
 * Registers leasehold's metrics in `registry` (prom-client's default registry when omitted) and keeps
 * them up to date from the diagnostics channels, for every Session of the process:
 *
 * - `leasehold_acquire_wait_seconds` (histogram; `primitive`, `name`, `outcome`): how long `lock()`,
 *   `acquire()`, `campaign()` and their `try…` forms took;
 * - `leasehold_acquisitions_total` (counter; `primitive`, `name`, `outcome`): granted, busy, aborted,
 *   lost, error;
 * - `leasehold_waiting` and `leasehold_held` (gauges; `primitive`, `name`): waits in progress and
 *   holdings (locks, permits, leaderships, raised barriers) now;
 * - `leasehold_hold_seconds` (histogram; `primitive`, `name`, `outcome`): how long holdings lasted,
 *   ended by a release, a lost lease or a closed session;
 * - `leasehold_sessions_lost_total` (counter);
 * - `leasehold_keepalive_round_trip_seconds` (histogram) and `leasehold_session_validity_seconds`
 *   (gauge; `lease`): how long keep-alives take, and how long each session is certainly valid (its
 *   series goes when the session is lost or closed);
 * - `leader_election_master_status` (gauge; `name`): 1 while this process leads the election, else
 *   0 — client-go's name, so existing dashboards and alerts work.
 *
 * @throws TypeError when an option is invalid; prom-client's error when a metric of the same name is
 * registered already.
 */
export function registerLeaseholdMetrics(registry: Registry = defaultRegistry, options: LeaseholdMetricsOptions = {}): LeaseholdMetrics {
  const { names, buckets } = { ...leaseholdMetricsDefaults, ...options };
  if (typeof names !== 'boolean' && typeof names !== 'function') {
    throw new TypeError(`Expected \`names\` to be a boolean or a function, got \`${String(names)}\``);
  }
  const nameOf = (name: string): string => (typeof names === 'function' ? names(name) : name);
  const withName = names !== false;
  const base = withName ? (['primitive', 'name'] as const) : (['primitive'] as const);
  const labelsOf = (m: { primitive: string; name: string }): Record<string, string> =>
    withName ? { primitive: m.primitive, name: nameOf(m.name) } : { primitive: m.primitive };
  const registers = [registry];

  const wait = new Histogram({ name: 'leasehold_acquire_wait_seconds', help: 'How long an acquisition (lock, acquire, campaign and their try forms) took, by outcome.', labelNames: [...base, 'outcome'], buckets: [...buckets], registers });
  const acquisitions = new Counter({ name: 'leasehold_acquisitions_total', help: 'Acquisitions, by outcome: granted, busy, aborted, lost, error.', labelNames: [...base, 'outcome'], registers });
  const waiting = new Gauge({ name: 'leasehold_waiting', help: 'Acquisitions waiting now.', labelNames: [...base], registers });
  const held = new Gauge({ name: 'leasehold_held', help: 'Locks, permits, leaderships and raised barriers held now.', labelNames: [...base], registers });
  const hold = new Histogram({ name: 'leasehold_hold_seconds', help: 'How long holdings lasted, by how they ended: released, lost, closed.', labelNames: [...base, 'outcome'], buckets: [...buckets], registers });
  const lost = new Counter({ name: 'leasehold_sessions_lost_total', help: 'Sessions whose lease was lost.', registers });
  const roundTrip = new Histogram({ name: 'leasehold_keepalive_round_trip_seconds', help: 'From sending a keep-alive to its answer.', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
  const validity = new Gauge({ name: 'leasehold_session_validity_seconds', help: 'How long each session is certainly valid (its deadline minus now), at its last keep-alive.', labelNames: ['lease'], registers });
  const master = new Gauge({ name: 'leader_election_master_status', help: 'Whether this process leads the election (1) or not (0).', labelNames: ['name'], registers });
  const metricNames = [
    'leasehold_acquire_wait_seconds',
    'leasehold_acquisitions_total',
    'leasehold_waiting',
    'leasehold_held',
    'leasehold_hold_seconds',
    'leasehold_sessions_lost_total',
    'leasehold_keepalive_round_trip_seconds',
    'leasehold_session_validity_seconds',
    'leader_election_master_status',
  ];

  const onStart = (message: unknown): void => {
    const c = message as AcquireContext;
    if (c.blocking) waiting.inc(labelsOf(c));
  };
  const onAsyncEnd = (message: unknown): void => {
    const c = message as AcquireContext;
    const labels = labelsOf(c);
    if (c.blocking) waiting.dec(labels);
    const outcome = c.outcome ?? 'error';
    wait.observe({ ...labels, outcome }, (c.waitedMs ?? 0) / 1000);
    acquisitions.inc({ ...labels, outcome });
    if (outcome !== 'granted') return;
    held.inc(labels);
    if (c.primitive === 'election') master.set({ name: c.name }, 1);
  };
  const none = (): void => undefined;
  const tracing = { start: onStart, end: none, asyncStart: none, asyncEnd: onAsyncEnd, error: none };
  const traced = [acquireChannel, campaignChannel];
  const onRelease = (message: unknown): void => {
    const m = message as ReleaseMessage;
    const labels = labelsOf(m);
    held.dec(labels);
    hold.observe({ ...labels, outcome: m.outcome }, m.heldMs / 1000);
    if (m.primitive === 'election') master.set({ name: m.name }, 0);
  };
  const onLost = (message: unknown): void => {
    lost.inc();
    validity.remove({ lease: (message as SessionLostMessage).lease });
  };
  const onClosed = (message: unknown): void => {
    validity.remove({ lease: (message as SessionClosedMessage).lease });
  };
  const onKeepAlive = (message: unknown): void => {
    const m = message as KeepAliveMessage;
    roundTrip.observe(m.roundTripMs / 1000);
    validity.set({ lease: m.lease }, Math.max(0, m.validityMs / 1000));
  };
  const plain: [string, (message: unknown) => void][] = [
    [channels.release, onRelease],
    [channels.sessionLost, onLost],
    [channels.sessionClosed, onClosed],
    [channels.keepAlive, onKeepAlive],
  ];
  for (const t of traced) t.subscribe(tracing);
  for (const [name, fn] of plain) channel(name).subscribe(fn);
  let registered = true;
  return {
    unregister() {
      if (!registered) return;
      registered = false;
      for (const t of traced) t.unsubscribe(tracing);
      for (const [name, fn] of plain) channel(name).unsubscribe(fn);
      for (const name of metricNames) registry.removeSingleMetric(name);
    },
  };
}
