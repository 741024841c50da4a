// An abort that lands while a write is on its way, on the in-memory fake of the port: the caller
// hears its own reason at once, and what the write created is removed — a queue key left on a live
// lease would block everyone behind it, a permit taken after the abort would be held by nobody.
// Proven against a real etcd in test/integration/mutex.test.ts, semaphore.test.ts and the fault suite.
import { expect, test } from 'vitest';
import { Mutex, Semaphore } from '../../src/index.js';
import type { TxnRequest } from '../../src/transport/messages.js';
import { onFake, sessionsOn, until } from './fake-client.js';

/** Aborts `controller` when a txn that puts a key under `prefix` reaches the fake (the txn still applies). */
function abortAt(controller: AbortController, prefix: string): (name: string, req: unknown) => boolean {
  return (name, req) => {
    if (name === 'txn' && (req as TxnRequest).success.some((op) => op.put?.key.toString().startsWith(prefix))) controller.abort(new Error('caller gave up'));
    return false;
  };
}

const keys = (f: ReturnType<typeof onFake>): string[] => f.fake.store.kvs().map((kv) => kv.key.toString());

test('an abort while the join is on its way: rejects with the reason, and the key it wrote goes', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const controller = new AbortController();
  f.fake.faults.failWhere(abortAt(controller, 'jobs/'));
  await expect(new Mutex(s[0]!, 'jobs').lock({ signal: controller.signal })).rejects.toThrow('caller gave up');
  await until(() => keys(f).length === 0);
  await (await new Mutex(s[0]!, 'jobs').lock({ signal: AbortSignal.timeout(2000) })).release(); // nothing left in the way
});

test('an abort while the admission is on its way: rejects with the reason, and the permit it took is given back', async () => {
  using f = onFake();
  await using s = await sessionsOn(f.client, 1);
  const controller = new AbortController();
  f.fake.faults.failWhere(abortAt(controller, 'sem/holders/'));
  const sem = new Semaphore(s[0]!, 'sem', { permits: 1 });
  await expect(sem.acquire({ signal: controller.signal })).rejects.toThrow('caller gave up');
  await until(() => keys(f).length === 0);
  await (await sem.acquire({ signal: AbortSignal.timeout(2000) })).release(); // the one permit is free
});
