// The error classes and their type guards across two installed copies of the package: the build (dist)
// of this tree is installed twice, in two node_modules of their own, so each copy has its own classes
// (instanceof fails across them) while the guards still agree. Every error is produced by a real
// operation against etcd with copy A and judged by copy B's guards (and A's).
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { noop } from 'cockatiel';
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
  'isForeignKeyError',
  'isEtcdUnavailableError',
  'isEtcdRequestError',
  'isPermissionDeniedError',
  'isAuthenticationError',
  'isTlsError',
] as const;
type Guard = (typeof guards)[number];
type ErrorName =
  | 'LeaseLostError'
  | 'NotHeldError'
  | 'NotLeaderError'
  | 'NoLeaderError'
  | 'PermitsMismatchError'
  | 'SessionClosedError'
  | 'ForeignKeyError'
  | 'EtcdUnavailableError'
  | 'EtcdRequestError'
  | 'PermissionDeniedError'
  | 'AuthenticationError'
  | 'TlsError';

/** The guards that are true for an error of a kind: its own, the base's, and a family's. */
function trueGuards(guard: Guard): Guard[] {
  const family: Guard[] = ['isPermissionDeniedError', 'isAuthenticationError', 'isTlsError'].includes(guard) ? ['isEtcdRequestError'] : [];
  return [guard, 'isLeaseholdError', ...family];
}

/** What each class's constructor needs besides its message. */
const fields: Record<ErrorName, object> = {
  LeaseLostError: { leaseId: '1' },
  NotHeldError: { key: 'k' },
  NotLeaderError: { key: 'k' },
  NoLeaderError: { election: 'e' },
  PermitsMismatchError: { expected: 1, actual: 2, key: 'k' },
  SessionClosedError: { leaseId: '1' },
  ForeignKeyError: { key: 'k' },
  EtcdUnavailableError: { endpoints: ['127.0.0.1:1'], code: 'UNAVAILABLE' },
  EtcdRequestError: { endpoints: ['127.0.0.1:1'], code: 'INVALID_ARGUMENT' },
  PermissionDeniedError: { endpoints: ['127.0.0.1:1'], code: 'PERMISSION_DENIED', key: 'k' },
  AuthenticationError: { endpoints: ['127.0.0.1:1'], code: 'INVALID_ARGUMENT' },
  TlsError: { endpoints: ['127.0.0.1:1'], code: 'UNAVAILABLE' },
};

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
  for (const dep of ['cockatiel', 'etcd3', 'protobufjs', 'long']) symlinkSync(join(root, 'node_modules', dep), join(modules, dep), 'dir');
  return join(pkg, 'dist', 'index.js');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'leasehold-two-copies-'));
  const dist = join(dir, 'dist');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', dist]);
  // As `npm run build` does: the generated codec is JavaScript, which tsc does not copy.
  for (const file of ['rpc.js', 'rpc.d.ts']) copyFileSync(join(root, 'src/transport/codec', file), join(dist, 'transport/codec', file));
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
    const foreignName = uniqueName('two-copies-foreign');
    await client.put(`${foreignName}/no-lease`).value('');
    const foreignKey = async (): Promise<unknown> => new A.Mutex(s, foreignName).lock();

    const produced: [Guard, ErrorName, unknown][] = [
      ['isLeaseLostError', 'LeaseLostError', await caught(A.Session.create(client, { leaseId: '123456789' }))],
      ['isNotHeldError', 'NotHeldError', await caught(lock.commit(client.put('two-copies').value('x')))],
      ['isNotLeaderError', 'NotLeaderError', await caught(leadership.proclaim('y'))],
      ['isNoLeaderError', 'NoLeaderError', await caught(new A.Election(s, uniqueName('two-copies-none')).leader())],
      ['isPermitsMismatchError', 'PermitsMismatchError', await caught(new A.Semaphore(other, semName, { permits: 3 }).acquire())],
      ['isSessionClosedError', 'SessionClosedError', await caught(new A.Mutex(closed, 'x').lock())],
      ['isForeignKeyError', 'ForeignKeyError', await caught(foreignKey())],
      ['isEtcdUnavailableError', 'EtcdUnavailableError', await caught(A.Session.create(new Etcd3({ hosts: ['127.0.0.1:1'] }), { retryPolicy: noop }))],
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
          expect(copy[g](error), `${label}.${g}(${name})`).toBe(trueGuards(guard).includes(g));
        }
      }
    }
    // And errors of every class made by copy B, judged by copy A.
    for (const guard of guards.filter((g) => g !== 'isLeaseholdError')) {
      const name = guard.slice(2) as ErrorName;
      const Class = B[name] as unknown as new (message: string, options: object) => Error;
      const made = new Class('made by copy B', fields[name]);
      for (const g of guards) expect(A[g](made), `A.${g}(B.${name})`).toBe(trueGuards(guard).includes(g));
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
