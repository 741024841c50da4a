// A key at the name of our own key (`name/<our lease in hex>`) that another program wrote, bound to
// no lease or to a lease not ours: a Mutex, an Election and a MultiLock refuse it with ForeignKeyError
// naming it. Adopting it would report "held" for a key our lease does not keep (it would outlive the
// lease and block the name for ever); deleting it would destroy another program's data.
import { describe, expect, test } from 'vitest';
import { Election, ForeignKeyError, MultiLock, Mutex } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { keysUnder, uniqueName } from '../helpers.js';

const fx = etcdForFile();

describe('a foreign key at our own key name', () => {
  test.each(['no lease', 'another lease'] as const)('bound to %s: Mutex, Election and MultiLock refuse it, naming it, and leave it as it was', async (bound) => {
    const s = await fx.session();
    const other = await fx.session();
    const lease = bound === 'no lease' ? undefined : other.leaseId;
    const base = uniqueName('foreign-own');
    const plant = async (name: string): Promise<string> => {
      const key = `${name}/${s.leaseHex}`;
      const put = fx.admin.put(key).value('not yours 📦');
      await (lease ? put.lease(lease) : put);
      return key;
    };
    const cases: [string, () => Promise<unknown>][] = [
      [`${base}/m`, async () => new Mutex(s, `${base}/m`).lock({ signal: AbortSignal.timeout(5000) })],
      [`${base}/e`, async () => new Election(s, `${base}/e`).campaign('v', { signal: AbortSignal.timeout(5000) })],
      [`${base}/a`, async () => new MultiLock(s, [`${base}/a`, `${base}/b`]).lock({ signal: AbortSignal.timeout(5000) })],
    ];
    for (const [name, acquire] of cases) {
      const key = await plant(name);
      const error = await acquire().catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(ForeignKeyError);
      expect((error as ForeignKeyError).key).toBe(key);
      expect(String(error)).toContain(bound === 'no lease' ? 'bound to no lease' : `bound to lease ${other.leaseHex}`);
      const kv = (await fx.admin.get(key).exec()).kvs[0];
      expect(kv?.value.toString(), name).toBe('not yours 📦');
      expect(kv?.lease, name).toBe(lease ?? '0');
    }
    // Nothing of ours was written beside them (the MultiLock's join is one txn: no key on `b`).
    expect((await keysUnder(fx.admin, `${base}/`)).sort()).toEqual([`${base}/a/${s.leaseHex}`, `${base}/e/${s.leaseHex}`, `${base}/m/${s.leaseHex}`]);
    await fx.admin.delete().prefix(`${base}/`);
  });
});
