// The test-only seam (`bindTransport` in src/transport/select.ts) that runs sessions and primitives
// on the in-memory fake of the port: every call of a bound client, and of its namespaces, reaches the
// fake — and the seam is not part of the package's API.
import { expect, test } from 'vitest';
import * as api from '../../src/index.js';
import { Mutex, Session } from '../../src/index.js';
import { onFake } from './fake-client.js';

test('a Session and a Mutex on a bound client run on the fake, namespaces with their prefix', async () => {
  using f = onFake();
  await using session = await Session.create(f.client.namespace('app/'), { ttl: 5, transport: 'h2' });
  const lock = await new Mutex(session, 'jobs').lock();
  const keys = f.fake.store.kvs().map((kv) => [kv.key.toString(), kv.lease]);
  expect(keys).toEqual([[`app/jobs/${session.leaseHex}`, session.leaseId]]);
  await lock.release();
  expect(f.fake.store.kvs()).toEqual([]);
  expect(f.fake.calls.slice(0, 2)).toEqual(['leaseGrant', 'txn']);
});

test('the seam is not API: no entry point exports it, and no option names it', async () => {
  using f = onFake();
  expect(Object.keys(api)).not.toContain('bindTransport');
  await expect(Session.create(f.client, { transport: 'fake' } as never)).rejects.toThrow(/Expected `transport` to be one of 'h2', 'etcd3', got the string "fake"/);
});
