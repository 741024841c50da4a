/**
 * etcd's own counters, read from `/metrics` before and after a scenario. Every figure is a delta
 * between two scrapes of the same etcd, divided by the acquisitions made in between.
 *
 * What etcd 3.4.23 really exposes (checked against its `/metrics`):
 * - `grpc_server_handled_total{grpc_type="unary",grpc_method=…}`: finished unary RPCs (Range, Txn,
 *   Put, DeleteRange, LeaseGrant, LeaseRevoke, LeaseTimeToLive, …), any status code.
 * - `etcd_debugging_mvcc_events_total`: events sent to watchers, one per event per watcher (one
 *   delete watched by two watchers counts 2).
 * - `grpc_server_msg_received_total` / `grpc_server_msg_sent_total` by method: stream messages,
 *   for `LeaseKeepAlive` (keep-alive requests/responses) and `Watch` (create/cancel requests;
 *   created/event/cancelled responses).
 * - `grpc_server_started_total{grpc_type="bidi_stream"}` by method: streams opened.
 * - `etcd_server_proposals_committed_total`: raft proposals (writes, lease grants/revokes) and
 *   `etcd_disk_wal_fsync_duration_seconds_count`: WAL fsyncs.
 */
import { sumMetric } from '../../src/testing/index.js';

export type Snapshot = ReadonlyMap<string, number>;

/** Unary RPCs by method, summed over status codes. */
function unaryByMethod(m: Snapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const [series, value] of m) {
    if (!series.startsWith('grpc_server_handled_total{') || !series.includes('grpc_type="unary"')) continue;
    const method = /grpc_method="([^"]*)"/.exec(series)?.[1] ?? '?';
    out.set(method, (out.get(method) ?? 0) + value);
  }
  return out;
}

/** after − before for every series. */
export function counterDelta(before: Snapshot, after: Snapshot): Map<string, number> {
  const out = new Map<string, number>();
  for (const [series, value] of after) out.set(series, value - (before.get(series) ?? 0));
  return out;
}

/** The per-acquisition etcd figures of one scenario row. */
export interface EtcdFigures {
  /** Unary requests (all methods) per acquisition. */
  unary: number;
  /** The same, by gRPC method (only methods that were called). */
  unaryByMethod: Record<string, number>;
  /** Watch events etcd sent (mvcc events_total) per acquisition. */
  watchEvents: number;
  /** Keep-alive stream messages, received by etcd and sent by it. */
  keepAliveMsgs: { received: number; sent: number };
  /** Watch stream messages, received by etcd and sent by it. */
  watchMsgs: { received: number; sent: number };
  /** Streams opened (gRPC stream calls started). */
  streamsOpened: { watch: number; keepAlive: number };
  /** Raft proposals committed (writes) and WAL fsyncs. */
  proposals: number;
  fsyncs: number;
  /** etcd's CPU time (`process_cpu_seconds_total`), in ms per acquisition. */
  cpuMs: number;
}

/** The deltas between two snapshots, divided by `per`. */
export function figures(before: Snapshot, after: Snapshot, per: number): EtcdFigures {
  const d = (name: string, labels: Record<string, string> = {}) =>
    (sumMetric(after, name, labels) - sumMetric(before, name, labels)) / per;
  const ub = unaryByMethod(before);
  const ua = unaryByMethod(after);
  const byMethod: Record<string, number> = {};
  let unary = 0;
  for (const [method, value] of ua) {
    const delta = value - (ub.get(method) ?? 0);
    if (delta > 0) {
      byMethod[method] = delta / per;
      unary += delta;
    }
  }
  return {
    unary: unary / per,
    unaryByMethod: byMethod,
    watchEvents: d('etcd_debugging_mvcc_events_total'),
    keepAliveMsgs: {
      received: d('grpc_server_msg_received_total', { grpc_method: 'LeaseKeepAlive' }),
      sent: d('grpc_server_msg_sent_total', { grpc_method: 'LeaseKeepAlive' }),
    },
    watchMsgs: {
      received: d('grpc_server_msg_received_total', { grpc_method: 'Watch' }),
      sent: d('grpc_server_msg_sent_total', { grpc_method: 'Watch' }),
    },
    streamsOpened: {
      watch: d('grpc_server_started_total', { grpc_method: 'Watch' }),
      keepAlive: d('grpc_server_started_total', { grpc_method: 'LeaseKeepAlive' }),
    },
    proposals: d('etcd_server_proposals_committed_total'),
    fsyncs: d('etcd_disk_wal_fsync_duration_seconds_count'),
    cpuMs: d('process_cpu_seconds_total') * 1000,
  };
}

/** The series a scenario needs, so a missing one is reported instead of read as zero. */
export const requiredSeries = [
  'grpc_server_handled_total',
  'etcd_debugging_mvcc_events_total',
  'grpc_server_msg_received_total',
  'grpc_server_msg_sent_total',
  'grpc_server_started_total',
  'etcd_server_proposals_committed_total',
  'etcd_disk_wal_fsync_duration_seconds_count',
] as const;

/** The names in `requiredSeries` that `snapshot` lacks entirely. */
export function missingSeries(snapshot: Snapshot): string[] {
  const names = new Set([...snapshot.keys()].map((s) => (s.includes('{') ? s.slice(0, s.indexOf('{')) : s)));
  return requiredSeries.filter((n) => !names.has(n));
}
