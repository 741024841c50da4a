// The error classes and their type guards across two installed copies of the package: the build (dist)
// of this tree is installed twice, in two node_modules of their own, so each copy has its own classes
// (instanceof fails across them) while the guards still agree. Every error is produced by a real
// operation against etcd with copy A and judged by copy B's guards (and A's).
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as S from '../../src/index.js';
import { uniqueName } from '../helpers.js';
import { etcdForFile } from '../fixture.js';

type Leasehold = typeof import('../../src/index.js');

const root = fileURLToPath(new URL('../..', import.meta.url));
const fx = etcdForFile(10);

const guards = [
  'isLeaseholdError',
  'isLeaseLostError',
  'isNotHeldError',
  'isNotLeaderError',
  'isNoLeaderError',
  'isPermitsMismatchError',
  'isSessionClosedError',
] as const;
type Guard = (typeof guards)[number];
type ErrorName = 'LeaseLostError' | 'NotHeldError' | 'NotLeaderError' | 'NoLeaderError' | 'PermitsMismatchError' | 'SessionClosedError';

let dir: string;
let A: Leasehold;
let B: Leasehold;

/** Installs `dist` as `<dir>/<name>/node_modules/leasehold`, with its dependencies linked beside it. */
function install(dist: string, name: string): string {
  const modules = join(dir, name, 'node_modules');
  const pkg = join(modules, 'leasehold');
  mkdirSync(pkg, { recursive: true });
  cpSync(dist, join(pkg, 'dist'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'leasehold', type: 'module', exports: { '.': './dist/index.js' } }));
  for (const dep of ['cockatiel', 'etcd3']) symlinkSync(join(root, 'node_modules', dep), join(modules, dep), 'dir');
  return join(pkg, 'dist', 'index.js');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'leasehold-two-copies-'));
  const dist = join(dir, 'dist');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dist]);
  A = (await import(pathToFileURL(install(dist, 'a')).href)) as Leasehold;
  B = (await import(pathToFileURL(install(dist, 'b')).href)) as Leasehold;
}, 60_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('error type guards across two installed copies of leasehold', () => {
  test('every guard recognises its own error, and only it, from either copy; instanceof does not cross copies', async () => {
    expect(A.LeaseLostError).not.toBe(B.LeaseLostError);
    const client = fx.etcd.client();
    const s = await A.Session.create(client, { ttl: 10 });
    const other = await A.Session.create(fx.etcd.client(), { ttl: 10 });
    const caught = async (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => new Error('expected a rejection'),
        (e: unknown) => e,
      );

    const lock = await new A.Mutex(s, uniqueName('two-copies')).lock();
    await lock.release();
    const leadership = await new A.Election(s, uniqueName('two-copies-e')).campaign('x');
    await leadership.resign();
    const semName = uniqueName('two-copies-s');
    const permit = await new A.Semaphore(s, semName, { permits: 2 }).acquire();
    const closed = await A.Session.create(fx.etcd.client(), { ttl: 10 });
    await closed.close();

    const produced: [Guard, ErrorName, unknown][] = [
      ['isLeaseLostError', 'LeaseLostError', await caught(A.Session.create(client, { leaseId: '123456789' }))],
      ['isNotHeldError', 'NotHeldError', await caught(lock.commit(client.put('two-copies').value('x')))],
      ['isNotLeaderError', 'NotLeaderError', await caught(leadership.proclaim('y'))],
      ['isNoLeaderError', 'NoLeaderError', await caught(new A.Election(s, uniqueName('two-copies-none')).leader())],
      ['isPermitsMismatchError', 'PermitsMismatchError', await caught(new A.Semaphore(other, semName, { permits: 3 }).acquire())],
      ['isSessionClosedError', 'SessionClosedError', await caught(new A.Mutex(closed, 'x').lock())],
    ];
    await permit.release();
    for (const [guard, name, error] of produced) {
      expect(error, name).toBeInstanceOf(A[name]);
      expect(error, name).toBeInstanceOf(A.LeaseholdError);
      expect(error, name).not.toBeInstanceOf(B[name]);
      expect(error, name).not.toBeInstanceOf(B.LeaseholdError);
      expect((error as Error).name).toBe(name);
      // Copy A's own guards, copy B's, and those of the source tree (a third copy, the one the rest
      // of the tests use).
      for (const [label, copy] of [['A', A], ['B', B], ['src', S]] as const) {
        for (const g of guards) {
          expect(copy[g](error), `${label}.${g}(${name})`).toBe(g === guard || g === 'isLeaseholdError');
        }
      }
    }
    // And errors made by copy B, judged by copy A.
    for (const [guard, name] of produced) {
      const Class = B[name] as unknown as new (...args: unknown[]) => Error;
      const made = name === 'PermitsMismatchError' ? new Class('s', 1, 2) : new Class('k');
      for (const g of guards) expect(A[g](made), `A.${g}(B.${name})`).toBe(g === guard || g === 'isLeaseholdError');
    }
    await Promise.all([s.close(), other.close()]);
  });

  test('the guards reject look-alikes: a plain Error, an object with the name, null, a string', () => {
    const lookAlikes: unknown[] = [
      new Error('lease lost'),
      Object.assign(new Error('x'), { name: 'LeaseLostError' }),
      { name: 'NotHeldError', message: 'x' },
      null,
      undefined,
      'LeaseLostError',
      42,
    ];
    for (const copy of [A, B, S]) {
      for (const g of guards) for (const value of lookAlikes) expect(copy[g](value), `${g}(${String(value)})`).toBe(false);
    }
    // A base LeaseholdError is only a LeaseholdError.
    const base = new B.LeaseholdError('base');
    expect(guards.filter((g) => A[g](base))).toEqual(['isLeaseholdError']);
  });
});
