// Ambiguous outcomes, on the in-memory fake of the port: a txn etcd applied whose answer was lost.
// Every txn leasehold retries is idempotent: a retried join finds the key it created and keeps its
// place (and token), a retried admission finds the permit it took, a retried release finds the key
// gone; a join that is given up after a lost answer still removes the key it wrote. A real etcd
// gives such outcomes only to the fault suite's proxy (`strand()`/`deliverStranded()`: see
// test/fault/proxy.test.ts and fencing.test.ts).
import { noop } from 'cockatiel';
import { expect, test } from 'vitest';
import { EtcdUnavailableError, Mutex, Semaphore } from '../../src/index.js';
import type { TxnRequest } from '../../src/transport/messages.js';
import { onFake, sessionsOn, until } from './fake-client.js';

const puts = (prefix: string) => (req: TxnRequest): boolean => req.success.some((op) => op.put?.key.toString().startsWith(prefix) ?? false);
const keys = (f: ReturnType<typeof onFake>): string[] => f.fake.store.kvs().map((kv) => kv.key.toString());

test('a join whose answer was lost: the retry finds its key and keeps its place and token', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  // Someone writes elsewhere before the retry: the revision moves on past our key's.
  const elsewhere = { compare: [], success: [{ put: { key: Buffer.from('elsewhere'), value: Buffer.alloc(0) } }] };
  f.fake.faults.loseAnswer((req) => {
    if (!puts('jobs/')(req)) return false;
    void f.fake.txn(elsewhere, { timeoutMs: 1000 });
    return true;
  });
  const lock = await new Mutex(s[0]!, 'jobs').lock({ signal: AbortSignal.timeout(2000) });
  expect(keys(f)).toEqual(['elsewhere', lock.key]);
  expect(lock.token).toBe(f.fake.store.kvs()[1]!.createRevision);
  expect(f.fake.store.revision).toBeGreaterThan(lock.token);
  await lock.release();
  expect(keys(f)).toEqual(['elsewhere']);
});

test("an admission whose answer was lost: the retry finds the permit it took", async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  f.fake.faults.loseAnswer(puts('sem/holders/'));
  const permit = await new Semaphore(s[0]!, 'sem', { permits: 2 }).acquire({ weight: 2, signal: AbortSignal.timeout(2000) });
  expect(keys(f)).toEqual([permit.key]); // the holder key; the waiter key went in the same txn
  expect(permit.token).toBe(f.fake.store.kvs()[0]!.createRevision);
});

test('a release whose answer was lost: the retry finds the key gone, and the release resolves', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const lock = await new Mutex(s[0]!, 'jobs').lock();
  f.fake.faults.loseAnswer((req) => req.success.some((op) => op.deleteRange !== undefined));
  expect(['deleted', 'already-gone']).toContain(await lock.release());
  expect(keys(f)).toEqual([]);
  await (await new Mutex(s[0]!, 'jobs').lock({ signal: AbortSignal.timeout(2000) })).release();
});

test('a join given up after a lost answer still removes the key it wrote', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1, { retryPolicy: noop });
  f.fake.faults.loseAnswer(puts('jobs/'));
  await expect(new Mutex(s[0]!, 'jobs').lock()).rejects.toBeInstanceOf(EtcdUnavailableError);
  await until(() => keys(f).length === 0); // the cleanup goes on in the background: etcd looked unreachable
});
