// The limit of MultiLock's "no deadlock", shown as it is documented in docs/multi-lock.md: code that
// holds one name (a Mutex on `a`) and then asks for another (`b`) while a MultiLock on [a, b] joined
// in between waits for ever with it, until a signal gives up (both give up, nothing is left). Sets
// taken together by MultiLocks in any order do not deadlock: multi-lock.test.ts shows that.
import { describe, expect, test } from 'vitest';
import { MultiLock, Mutex } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { eventually, keysUnder, uniqueName } from '../helpers.js';

const fx = etcdForFile();

describe('MultiLock beside code that locks the same names one at a time', () => {
  test('a holder of `a` asking for `b` while a MultiLock on [a, b] waits: each waits for the other until its signal gives up; no key is left', async () => {
    const one = await fx.session();
    const multi = await fx.session();
    const base = uniqueName('ml-limit');
    const [a, b] = [`${base}/a`, `${base}/b`];
    const heldA = await new Mutex(one, a).lock();
    const all = new MultiLock(multi, [a, b]).lock({ signal: AbortSignal.timeout(4000) }).catch((e: unknown) => e);
    // The MultiLock has joined both queues (one key on each, one revision) and waits for `a`.
    await eventually(async () => (await keysUnder(fx.admin, `${base}/`)).length === 3, 5000, 'the MultiLock queued on both names');
    const b1 = await new Mutex(one, b).lock({ signal: AbortSignal.timeout(2000) }).catch((e: unknown) => e);
    expect(String(b1)).toMatch(/TimeoutError|timed out|aborted/i); // `b` waits for the MultiLock, which waits for `a`
    expect(String(await all)).toMatch(/TimeoutError|timed out|aborted/i);
    await heldA.release();
    expect(await keysUnder(fx.admin, `${base}/`)).toEqual([]);
  });

});
