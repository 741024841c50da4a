// The `transport` option: each choice really carries the calls (counted on the transport itself), a
// namespace's prefix holds on both, a guarded commit built with etcd3's builders answers in etcd3's
// shape on both, the h2 transport's connections close with the user's client, and a bad choice is a
// TypeError naming it.
import { Etcd3 } from 'etcd3';
import { describe, expect, test } from 'vitest';
import { Mutex, Session } from '../../src/index.js';
import { H2Transport } from '../../src/transport/h2/transport.js';
import { Etcd3Transport } from '../../src/transport/etcd3/transport.js';
import { transportFor } from '../../src/transport/select.js';
import { etcdForFile } from '../fixture.js';
import { uniqueName } from '../helpers.js';

const fx = etcdForFile();

describe.each(['h2', 'etcd3'] as const)('transport %s', (kind) => {
  test('locks, a namespace prefix and a guarded commit of etcd3 builders', async () => {
    const client = fx.etcd.client();
    try {
      const ns = client.namespace(`${uniqueName('ns')}/`);
      await using session = await Session.create(ns, { ttl: 5, transport: kind });
      const { transport } = transportFor(ns, kind);
      expect(transport).toBeInstanceOf(kind === 'h2' ? H2Transport : Etcd3Transport);
      const name = uniqueName('lock');
      await using lock = await new Mutex(session, name).lock();
      // The key is under the namespace: an absolute read finds it there.
      const keys = await fx.admin.getAll().prefix(`${ns.prefix.toString()}${name}/`).keys();
      expect(keys).toEqual([`${ns.prefix.toString()}${lock.key}`]);
      const res = await lock.commit(ns.put('written').value('v'), ns.get('written'));
      expect(res.succeeded).toBe(true);
      expect(res.header.revision).toMatch(/^\d+$/);
      expect(res.responses[1]!.response_range.kvs[0]!.value.toString()).toBe('v');
      expect(await fx.admin.get(`${ns.prefix.toString()}written`).string()).toBe('v');
      if (transport instanceof H2Transport) expect(transport.members.some((m) => m.channel.connections > 0)).toBe(true);
    } finally {
      client.close();
    }
  });
});

test("closing the user's client closes the h2 transport's connections too", async () => {
  const client = new Etcd3({ hosts: [...fx.etcd.endpoints] });
  const session = await Session.create(client, { ttl: 5, transport: 'h2' });
  await session.close();
  const { transport } = transportFor(client, 'h2');
  client.close();
  await expect(transport.range({ key: Buffer.from('x') }, { timeoutMs: 1000 })).rejects.toMatchObject({ code: 'CLIENT_CLOSED' });
});

test('a transport that does not exist is a TypeError naming it', async () => {
  await expect(Session.create(fx.admin, { transport: 'grpc' as never })).rejects.toThrow("Expected `transport` to be one of 'h2', 'etcd3', got the string \"grpc\"");
});
