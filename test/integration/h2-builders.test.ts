// Guarded commits built with etcd3's builders, through the port: etcd3's request ops (builders' op(),
// raw ops with enums by name or number, a nested txn) converted and committed by the h2 transport
// against a real etcd, and checked with an independent etcd3 client.
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { toCompare, toRequestOps } from '../../src/transport/etcd3/request-op.js';
import { H2Transport } from '../../src/transport/h2/transport.js';

let etcd: EtcdCluster;
let admin: Etcd3;
let t: H2Transport;
const call = { timeoutMs: 5000 };
const prefix = `h2-builders/${process.pid}/`;
const k = (name: string): Buffer => Buffer.from(`${prefix}${name}`);

beforeAll(async () => {
  etcd = await startEtcd();
  admin = etcd.client();
  t = new H2Transport({ hosts: [...etcd.endpoints] });
});
afterAll(async () => {
  t?.close();
  await etcd?.stop();
});

describe('etcd3 builders through the port (a guarded commit\'s ops)', () => {
  test('put, delete and get builders, a namespace\'s builder, and raw ops with enums by number and a nested txn', async () => {
    const { id: lease } = await t.leaseGrant(30, call);
    await admin.put(`${prefix}b/gone`).value('x');
    const ns = admin.namespace(`${prefix}ns/`);
    const ops = await toRequestOps([
      admin.put(`${prefix}b/1`).value('v1').lease(lease),
      ns.put('inside').value('🔒'),
      admin.delete().key(`${prefix}b/gone`),
      admin.get(`${prefix}b/1`),
      { request_range: { key: k('b/'), range_end: k('b0'), sort_order: 2, sort_target: 'Key', count_only: true } },
      { request_txn: { compare: [{ key: k('b/gone'), target: 'Version', result: 'Greater', version: 0 }], success: [{ request_put: { key: k('b/nested'), value: Buffer.from('n') } }] } },
    ]);
    const guard = toCompare({ key: k('b/gone'), target: 'Create', result: 'NotEqual', create_revision: '0' });
    const res = await t.txn({ compare: [guard], success: ops }, call);
    expect(res.succeeded).toBe(true);
    expect(res.responses[3]!.range!.kvs[0]!.value.toString()).toBe('v1'); // the txn's own put, read back
    expect(res.responses[4]!.range!.count).toBe(1n); // b/1 (b/gone is deleted)
    expect(res.responses[5]!.txn!.succeeded).toBe(true);
    const seen = await admin.getAll().prefix(prefix).exec();
    const byKey = new Map(seen.kvs.map((kv) => [kv.key.toString(), kv]));
    expect(byKey.get(`${prefix}b/1`)?.lease).toBe(lease);
    expect(byKey.get(`${prefix}ns/inside`)?.value.toString()).toBe('🔒');
    expect(byKey.has(`${prefix}b/gone`)).toBe(false);
    expect(byKey.get(`${prefix}b/nested`)?.value.toString()).toBe('n');
    await t.leaseRevoke(lease, call);
  });

  test('an op that is not one, or an enum out of range, is refused naming it', async () => {
    await expect(toRequestOps([{} as never])).rejects.toThrow(/Expected an etcd3 request op .*got \[\]/);
    expect(() => toCompare({ key: k('x'), target: 'Create', result: 'Sideways' as never })).toThrow(/`result` to be one of Equal, Greater, Less, NotEqual, got "Sideways"/);
  });
});
