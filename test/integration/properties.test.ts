// Property-based tests (fast-check) against a real etcd: generated names — lone surrogates, NUL, "/",
// emoji, very long, prefixes of one another — and generated option objects. For every input, either a
// TypeError/RangeError comes before any key is written, or the primitives keep their promises: mutual
// exclusion per name, names that do not nest, and no key left behind.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { Mutex, ReadWriteLock, Semaphore, Session, type LockHandle } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';

const fx = etcdForFile(5);

/** Characters that break naive code: surrogate halves, NUL, "/", U+FFFD, emoji, combining marks. */
const hostileChar = fc.constantFrom('a', 'Z', '/', '\0', '\uD83D', '\uDCE6', '📦', '\uFFFD', 'é', 'e\u0301', ' ', '-', '\u202E');
const hostileName = fc.oneof(
  { weight: 5, arbitrary: fc.array(hostileChar, { minLength: 0, maxLength: 12 }).map((cs) => cs.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  { weight: 1, arbitrary: fc.integer({ min: 4000, max: 5000 }).map((n) => 'x'.repeat(n)) },
);

let run = 0;

/** Every key under the test's root, as raw bytes in hex, so nothing hides behind a decoding. */
async function keysUnder(root: string): Promise<string[]> {
  const res = await fx.admin.getAll().prefix(root).exec();
  return res.kvs.map((kv) => kv.key.toString('hex'));
}

describe('properties', () => {
  test('a generated name is either refused before any key is written, or excludes, does not nest, and leaves nothing', async () => {
    const [s1, s2] = [await fx.session(), await fx.session()];
    await fc.assert(
      fc.asyncProperty(hostileName, hostileName, async (suffixA, suffixB) => {
        const root = `prop-${process.pid}-${run++}/`;
        const nameA = root + suffixA;
        const nameB = nameA + suffixB; // often a name nested under, or a prefix-extension of, the first
        const made: [Mutex, Mutex][] = [];
        for (const name of nameB === nameA ? [nameA] : [nameA, nameB]) {
          let pair: [Mutex, Mutex];
          try {
            pair = [new Mutex(s1, name), new Mutex(s2, name)];
          } catch (error) {
            expect(error instanceof TypeError || error instanceof RangeError, String(error)).toBe(true);
            expect(await keysUnder(root)).toEqual([]);
            continue;
          }
          made.push(pair);
        }
        const held: LockHandle[] = [];
        for (const [a, b] of made) {
          const h = await a.tryLock();
          expect(h, `the free lock ${JSON.stringify(a.name)}`).not.toBeNull();
          held.push(h!);
          // The same name from another session is excluded; a different name (nested or not) is not.
          expect(await b.tryLock(), `a second holder of ${JSON.stringify(a.name)}`).toBeNull();
        }
        await Promise.all(held.map(async (h) => h.release()));
        expect(await keysUnder(root)).toEqual([]);
      }),
      { numRuns: 60 },
    );
  }, 120_000);

  test('a generated name gives the same answer for every primitive', async () => {
    const s = await fx.session();
    await fc.assert(
      fc.asyncProperty(hostileName, async (suffix) => {
        const name = `prop-all-${process.pid}-${run++}/${suffix}`;
        const outcomes = [
          () => new Mutex(s, name),
          () => new ReadWriteLock(s, name),
          () => new Semaphore(s, name, { permits: 1 }),
        ].map((make) => {
          try {
            make();
            return 'ok';
          } catch (error) {
            return (error as Error).name;
          }
        });
        expect(new Set(outcomes).size, `${JSON.stringify(name)}: ${outcomes.join(', ')}`).toBe(1);
      }),
      { numRuns: 300 },
    );
  });

  test('generated Session options are either refused with a TypeError/RangeError or give a working session', async () => {
    const client = fx.etcd.client();
    const value = fc.oneof(
      fc.integer({ min: -2, max: 40 }),
      fc.double({ noNaN: false }),
      fc.constantFrom('10', null, true, 1e12, 2 ** 31, Number.MAX_SAFE_INTEGER, {}, [], 10n),
    );
    // (`requestTimeout` is left out: a valid but tiny one, like 0.5 ms, fails every call as it should.)
    const optionName = fc.constantFrom('ttl', 'keepAliveInterval', 'safetyMargin', 'tll', 'timeout');
    await fc.assert(
      fc.asyncProperty(fc.dictionary(optionName, value, { maxKeys: 3 }), async (options) => {
        let session: Session;
        try {
          session = await Session.create(client, options as never);
        } catch (error) {
          expect(error instanceof TypeError || error instanceof RangeError, `${JSON.stringify(options, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}: ${String(error)}`).toBe(true);
          expect((error as Error).message).toMatch(/`[a-zA-Z]+`/); // names the option
          return;
        }
        expect(session.alive).toBe(true);
        await session.close();
      }),
      { numRuns: 80 },
    );
  }, 60_000);
});
