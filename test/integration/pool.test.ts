// The one module that reaches into etcd3's private connection pool (src/transport/pool.ts) must find
// what it relies on. If a new etcd3 changes its internals, these tests fail loudly instead of leasehold
// silently falling back to the public clients (and losing its member choice and endpoint attribution).
import { Etcd3 } from 'etcd3';
import { describe, expect, test } from 'vitest';
import { endpointOf, endpointsOf, openKeepAlive, openWatch, poolKey, unary } from '../../src/transport/etcd3/pool.js';
import { closeStream } from '../../src/transport/etcd3/streams.js';
import { etcdForFile } from '../fixture.js';

const fx = etcdForFile(5);

describe("etcd3's connection pool, as leasehold uses it", () => {
  test('the pool has hosts with `host:port`, withConnection and an authenticator; namespaces share it', () => {
    const client = fx.etcd.client();
    const pool = (client as unknown as { pool?: Record<string, unknown> }).pool;
    expect(pool, 'etcd3 no longer has `client.pool`').toBeDefined();
    expect(typeof pool!['withConnection']).toBe('function');
    expect(Array.isArray(pool!['hosts'])).toBe(true);
    expect(typeof (pool!['authenticator'] as { invalidateMetadata?: unknown }).invalidateMetadata).toBe('function');
    const expected = fx.etcd.endpoints.map((e) => e.replace(/^https?:\/\//, ''));
    expect(endpointsOf(client)).toEqual(expected);
    const ns = client.namespace('tenant/');
    expect(poolKey(ns)).toBe(poolKey(client));
    expect(poolKey(client)).toBe(pool);
  });

  test('a unary call goes through the pool and a failure names its endpoint', async () => {
    const client = fx.etcd.client();
    const res = await unary<{ header: { revision: string } }>(client, { service: 'KV', method: 'range' }, { key: Buffer.from('pool-test') }, { deadline: Date.now() + 5000 });
    expect(BigInt(res.header.revision)).toBeGreaterThan(0n);
    const dead = new Etcd3({ hosts: ['127.0.0.1:1'] });
    const error = await unary(dead, { service: 'KV', method: 'range' }, { key: Buffer.from('x') }, { deadline: Date.now() + 2000 }).catch((e: unknown) => e);
    expect(endpointOf(error)).toBe('127.0.0.1:1');
    dead.close();
  });

  test('streams are opened on a host the pool names', async () => {
    const client = fx.etcd.client();
    const watch = await openWatch(client);
    expect(watch.host).toBeDefined();
    expect((watch.host as { host?: unknown }).host).toBe(endpointsOf(client)[0]);
    closeStream(watch.stream);
    const keepAlive = await openKeepAlive(client);
    expect(keepAlive.host).toBe(watch.host);
    closeStream(keepAlive.stream);
  });
});
