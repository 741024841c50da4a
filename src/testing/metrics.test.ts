import { describe, expect, test } from 'vitest';
import { parsePrometheusText, sumMetric } from './metrics.js';

const sample = `# HELP grpc_server_handled_total Total number of RPCs completed on the server.
# TYPE grpc_server_handled_total counter
grpc_server_handled_total{grpc_code="OK",grpc_method="Put",grpc_service="etcdserverpb.KV",grpc_type="unary"} 3
grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 5
grpc_server_handled_total{grpc_code="OK",grpc_method="Watch",grpc_service="etcdserverpb.Watch",grpc_type="bidi_stream"} 1

etcd_debugging_mvcc_watch_stream_total 2
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 7
odd{path="a b}c",quote="x\\"y"} 1.5e3 1700000000000
nan_metric NaN
`;

describe('parsePrometheusText', () => {
  test('the doc comment example', () => {
    expect(parsePrometheusText('# TYPE up gauge\nup{job="etcd"} 1\n').get('up{job="etcd"}')).toBe(1);
  });

  test('keys series as written, skips comments, drops timestamps, keeps special values', () => {
    const metrics = parsePrometheusText(sample);
    expect(metrics.size).toBe(7);
    expect(metrics.get('etcd_debugging_mvcc_watch_stream_total')).toBe(2);
    expect(metrics.get('etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}')).toBe(7);
    expect(metrics.get('odd{path="a b}c",quote="x\\"y"}')).toBe(1500);
    expect(metrics.get('nan_metric')).toBeNaN();
  });

  test('rejects a line it cannot read', () => {
    expect(() => parsePrometheusText('broken{a="1" 2')).toThrow(SyntaxError);
    expect(() => parsePrometheusText('no_value')).toThrow(SyntaxError);
  });
});

describe('sumMetric', () => {
  const metrics = parsePrometheusText(sample);
  test('sums every series of a name, or those matching labels', () => {
    expect(sumMetric(metrics, 'grpc_server_handled_total')).toBe(9);
    expect(sumMetric(metrics, 'grpc_server_handled_total', { grpc_service: 'etcdserverpb.KV' })).toBe(8);
    expect(sumMetric(metrics, 'grpc_server_handled_total', { grpc_method: 'Range', grpc_code: 'OK' })).toBe(5);
    expect(sumMetric(metrics, 'odd', { path: 'a b}c', quote: 'x"y' })).toBe(1500);
    expect(sumMetric(metrics, 'missing')).toBe(0);
  });
});
