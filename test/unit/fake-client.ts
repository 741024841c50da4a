/**
 * A real `etcd3` client whose every call goes through the in-memory fake of the port, through the
 * test-only seam `bindTransport` (src/transport/select.ts): sessions, primitives and static reads
 * made on it run in memory. Its own pool points at a port nothing listens on, so a call that bypassed
 * the port would fail rather than reach some etcd.
 */
import { Etcd3 } from 'etcd3';
import { bindTransport } from '../../src/transport/select.js';
import { FakeTransport } from './fake-transport.js';

export interface OnFake extends Disposable {
  client: Etcd3;
  fake: FakeTransport;
}

/** A fresh fake and a client bound to it; dispose (`using`) closes both. */
export function onFake(): OnFake {
  const fake = new FakeTransport();
  const client = new Etcd3({ hosts: '127.0.0.1:9' });
  bindTransport(client, fake);
  return {
    client,
    fake,
    [Symbol.dispose]: () => {
      fake.close();
      client.close();
    },
  };
}
