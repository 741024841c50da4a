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
import { Counter, Gauge, Histogram, register as defaultRegistry, type GaugeConfiguration, type Registry } from 'prom-client';
import { acquireChannel, campaignChannel, channels, type AcquireContext, type KeepAliveMessage, type ReleaseMessage, type SessionRegrantedMessage } from './diagnostics.js';
import { liveState } from './live-state.js';

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

type Labels = Record<string, string>;
type Sample = [Labels, number];
type Read = () => Sample[];

/**
 * A gauge whose series `read` computes at each scrape (prom-client's `collect`): samples with the same
 * labels are summed, or `combine`d. With `remember`, a series an earlier scrape showed and this one
 * does not reads 0 instead of vanishing (a dashboard sees "none held" rather than no data).
 */
function stateGauge(config: GaugeConfiguration<string>, read: Read, remember: boolean, combine = (a: number, b: number) => a + b): Gauge {
  const seen = new Map<string, Labels>();
  return new Gauge({
    ...config,
    collect() {
      const now = new Map<string, Sample>();
      for (const [labels, value] of read()) {
        const key = JSON.stringify(labels);
        const before = now.get(key);
        now.set(key, [labels, before === undefined ? value : combine(before[1], value)]);
      }
      this.reset();
      for (const [key, labels] of seen) if (!now.has(key)) this.set(labels, 0);
      for (const [key, [labels, value]] of now) {
        if (remember) seen.set(key, labels);
        this.set(labels, value);
      }
    },
  });
}

/** What {@link registerLeaseholdMetrics} returns. */
export interface LeaseholdMetrics {
  /** Unsubscribes from the channels and removes the metrics from the registry. Idempotent. */
  unregister(): void;
}

/** Every metric `registerLeaseholdMetrics` registers (what `unregister()` removes). */
const metricNames = [
  'leasehold_acquire_wait_seconds',
  'leasehold_acquisitions_total',
  'leasehold_waiting',
  'leasehold_held',
  'leasehold_hold_seconds',
  'leasehold_sessions_lost_total',
  'leasehold_session_regrant_gap_seconds',
  'leasehold_session_without_seconds',
  'leasehold_keepalive_round_trip_seconds',
  'leasehold_session_validity_seconds',
  'leader_election_master_status',
];

/**
 * Registers leasehold's metrics in `registry` (prom-client's default registry when omitted), for every
 * Session of the process: counters and histograms count the diagnostics channels' events from now on;
 * gauges are read from the live state (`liveState()`) at each scrape, so they are true even for what
 * began before this call, beside other subscribers and after an earlier registration was removed:
 *
 * - `leasehold_acquire_wait_seconds` (histogram; `primitive`, `name`, `outcome`): how long `lock()`,
 *   `acquire()`, `campaign()` and their `try…` forms took;
 * - `leasehold_acquisitions_total` (counter; `primitive`, `name`, `outcome`): granted, busy, aborted,
 *   lost, error;
 * - `leasehold_waiting` and `leasehold_held` (gauges; `primitive`, `name`): waits in progress and
 *   holdings (locks, permits, leaderships, raised barriers) now;
 * - a MultiLock counts in each of these once per name (`primitive` `multilock`), never under a label
 *   for its set of names;
 * - `leasehold_hold_seconds` (histogram; `primitive`, `name`, `outcome`): how long holdings lasted,
 *   ended by a release, a lost lease or a closed session;
 * - `leasehold_sessions_lost_total` (counter);
 * - `leasehold_session_regrant_gap_seconds` (histogram): how long a SessionSource was without a
 *   session, from a loss to the next lease — its count is the number of re-grants, its sum the time
 *   spent without a session; `leasehold_session_without_seconds` (gauge): how long the process's
 *   SessionSources have been without a session now (the longest gap; 0 while every one has one; no
 *   series without a source);
 * - `leasehold_keepalive_round_trip_seconds` (histogram) and `leasehold_session_validity_seconds`
 *   (gauge; `lease`): how long keep-alives take, and how long each session is certainly valid from
 *   the scrape on (it falls while keep-alives fail; the series goes when the session is lost or closed);
 * - `leader_election_master_status` (gauge; `name`): 1 while this process leads the election, 0 while
 *   it only campaigns and after it led — client-go's name, so existing dashboards and alerts work.
 *
 * A `leasehold_held`/`leasehold_waiting`/`leader_election_master_status` series once scraped stays,
 * at 0, when nothing has its labels any more (as a counted gauge's would).
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
  // A MultiLock's wait counts once per name, as its holding does: a label per set of names would
  // make a series for every combination.
  const eachName = (c: AcquireContext): Labels[] => (c.names ?? [c.name]).map((name) => labelsOf({ primitive: c.primitive, name }));
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: readonly string[], read: Read, remember = true, combine?: (a: number, b: number) => number): Gauge =>
    stateGauge({ name, help, labelNames: [...labelNames], registers }, read, remember, combine);

  const wait = new Histogram({ name: 'leasehold_acquire_wait_seconds', help: 'How long an acquisition (lock, acquire, campaign and their try forms) took, by outcome.', labelNames: [...base, 'outcome'], buckets: [...buckets], registers });
  const acquisitions = new Counter({ name: 'leasehold_acquisitions_total', help: 'Acquisitions, by outcome: granted, busy, aborted, lost, error.', labelNames: [...base, 'outcome'], registers });
  const hold = new Histogram({ name: 'leasehold_hold_seconds', help: 'How long holdings lasted, by how they ended: released, lost, closed.', labelNames: [...base, 'outcome'], buckets: [...buckets], registers });
  const lost = new Counter({ name: 'leasehold_sessions_lost_total', help: 'Sessions whose lease was lost.', registers });
  const gap = new Histogram({ name: 'leasehold_session_regrant_gap_seconds', help: 'How long a SessionSource was without a session, from a loss to the next lease (count: re-grants).', buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800], registers });
  const roundTrip = new Histogram({ name: 'leasehold_keepalive_round_trip_seconds', help: 'From sending a keep-alive to its answer.', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
  // The gauges are read from the live state at each scrape, never counted from events (see live-state.ts).
  gauge('leasehold_waiting', 'Acquisitions waiting now.', base, () =>
    liveState().waits.filter((c) => c.blocking).flatMap((c) => eachName(c).map((labels): Sample => [labels, 1])));
  gauge('leasehold_held', 'Locks, permits, leaderships and raised barriers held now.', base, () =>
    liveState().holdings.map((h) => [labelsOf(h), 1]));
  gauge('leasehold_session_validity_seconds', 'How long each live session is certainly valid from now (its validity deadline minus now).', ['lease'], () =>
    liveState().sessions.map((s) => [{ lease: s.lease }, s.validityMs / 1000]), false);
  gauge('leasehold_session_without_seconds', 'How long the SessionSources of this process have been without a session now (the longest; 0 while all have one).', [], () => {
    const { sources } = liveState();
    return sources.length === 0 ? [] : [[{}, Math.max(...sources.map((source) => source.withoutSessionMs)) / 1000]];
  }, false);
  // 1 for an election this process leads; 0 for one it campaigns in, or led since registration.
  gauge('leader_election_master_status', 'Whether this process leads the election (1) or not (0).', ['name'], () => {
    const { holdings, waits } = liveState();
    const campaigning = waits.filter((c) => c.primitive === 'election').map((c): Sample => [{ name: c.name }, 0]);
    return [...campaigning, ...holdings.filter((h) => h.primitive === 'election').map((h): Sample => [{ name: h.name }, 1])];
  }, true, Math.max);

  const onAsyncEnd = (message: unknown): void => {
    const c = message as AcquireContext;
    for (const name of eachName(c)) {
      const labels = { ...name, outcome: c.outcome ?? 'error' };
      wait.observe(labels, (c.waitedMs ?? 0) / 1000);
      acquisitions.inc(labels);
    }
  };
  const none = (): void => undefined;
  const tracing = { start: none, end: none, asyncStart: none, asyncEnd: onAsyncEnd, error: none };
  const traced = [acquireChannel, campaignChannel];
  const onRelease = (message: unknown): void => {
    const m = message as ReleaseMessage;
    hold.observe({ ...labelsOf(m), outcome: m.outcome }, m.heldMs / 1000);
  };
  const onKeepAlive = (message: unknown): void => roundTrip.observe((message as KeepAliveMessage).roundTripMs / 1000);
  const plain: [string, (message: unknown) => void][] = [
    [channels.release, onRelease],
    [channels.sessionLost, () => lost.inc()],
    [channels.sessionRegranted, (message) => gap.observe((message as SessionRegrantedMessage).withoutSessionMs / 1000)],
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
