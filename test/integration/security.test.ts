// Security end to end against a real etcd: every primitive over mutual TLS (3 members, peer TLS too)
// with auth enabled for a user scoped to a prefix; clean, typed, fast denials outside the prefix and
// for a read-only user; a wrong password and a missing client certificate; an auth token that expires
// during a long session; an etcd3 namespace as a jail; and no secret in anything leasehold builds.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AuthenticationError,
  Barrier,
  DoubleBarrier,
  Election,
  Mutex,
  PermissionDeniedError,
  ReadWriteLock,
  Semaphore,
  Session,
  TlsError,
  isEtcdRequestError,
  type Held,
} from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';

const appPassword = 'app-secret-Pa55word';
const readerPassword = 'reader-secret-Pa55word';
let etcd: EtcdCluster;

beforeAll(async () => {
  etcd = await startEtcd({
    members: 3,
    tls: true,
    auth: {
      roles: { app: { readwrite: ['app/'] }, reader: { read: ['app/'] } },
      users: { app: { password: appPassword, roles: ['app'] }, reader: { password: readerPassword, roles: ['reader'] } },
      tokenTtl: 2, // expires many times during the long-session test
    },
  });
}, 60_000);
afterAll(async () => {
  await etcd?.stop();
});

const app = () => etcd.client({ auth: { username: 'app', password: appPassword } });

/** Every primitive, taken and given back on `session` under `prefix`. */
const primitives: [string, (s: Session, prefix: string) => Promise<Held>][] = [
  ['Mutex', async (s, p) => new Mutex(s, `${p}mutex`).lock()],
  ['ReadWriteLock (write)', async (s, p) => new ReadWriteLock(s, `${p}rw`).writeLock()],
  ['Semaphore', async (s, p) => new Semaphore(s, `${p}sem`, { permits: 1 }).acquire()],
  ['Election', async (s, p) => new Election(s, `${p}election`).campaign('v')],
  ['Barrier', async (s, p) => (await new Barrier(s, `${p}barrier`).hold())!],
];

/**
 * The sessions that must outlive their TTL here: TTL 3 with a keep-alive every 400 ms, about 2.3 s
 * without an answer before one gives up (room for a re-election or a slow re-authentication on a
 * loaded machine).
 */
const steady = { ttl: 3, keepAliveInterval: 400 };

describe('mutual TLS and a user scoped to app/', () => {
  test.each(primitives)('%s: works, including a waiter\'s watch handoff and keep-alives', async (name, take) => {
    const [a, b] = [await Session.create(app(), steady), await Session.create(app(), steady)];
    const prefix = `app/${process.pid}-${name.split(' ')[0]!.toLowerCase()}/`;
    const first = await take(a, prefix);
    // The other session waits: in the queue, or (a Barrier) for the barrier to come down.
    const handoff = name === 'Barrier' ? new Barrier(b, `${prefix}barrier`).wait() : take(b, prefix);
    await delay(3500); // longer than the TTL: only keep-alives over TLS keep both sessions
    expect(a.alive && b.alive).toBe(true);
    expect(first.held).toBe(true);
    await first.release();
    const next = await handoff;
    if (next) {
      expect(next.held).toBe(true);
      await next.release();
    }
    await Promise.all([a.close(), b.close()]);
  });

  test('DoubleBarrier: two participants enter and leave over TLS with auth', async () => {
    const sessions = await Promise.all([0, 1].map(async () => Session.create(app(), { ttl: 5 })));
    const parts = sessions.map((s) => new DoubleBarrier(s, `app/${process.pid}-phase`, { count: 2 }));
    await Promise.all(parts.map(async (p) => p.enter({ signal: AbortSignal.timeout(10_000) })));
    await Promise.all(parts.map(async (p) => p.leave({ signal: AbortSignal.timeout(10_000) })));
    await Promise.all(sessions.map(async (s) => s.close()));
  });
});

describe('denials are typed, fast and leave no key', () => {
  test.each(primitives)('%s outside the user\'s prefix → PermissionDeniedError naming the key', async (_name, take) => {
    const session = await Session.create(app(), { ttl: 5 });
    const started = performance.now();
    const error = await take(session, `other/${process.pid}/`).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(3000); // not retried (retrying takes 6–10 s)
    expect(error).toBeInstanceOf(PermissionDeniedError);
    const denied = error as PermissionDeniedError;
    expect(denied.code).toBe('PERMISSION_DENIED');
    expect(denied.key).toMatch(new RegExp(`^other/${process.pid}/`));
    expect(denied.message).toMatch(/^etcd at 127\.0\.0\.1:\d+ denied access to "other\//);
    expect(isEtcdRequestError(denied)).toBe(true);
    expect(await etcd.client().getAll().prefix('other/').keys()).toEqual([]);
    await session.close();
  });

  test('a read-only user: a lock is denied cleanly; observing the election works', async () => {
    const readerClient = etcd.client({ auth: { username: 'reader', password: readerPassword } });
    const session = await Session.create(readerClient, { ttl: 5 });
    const error = await new Mutex(session, `app/${process.pid}-ro`).lock().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermissionDeniedError);
    const leader = new Election(session, `app/${process.pid}-ro-election`).leader().catch((e: unknown) => e);
    expect((await leader as Error).name).toBe('NoLeaderError'); // reading is allowed
    expect(await etcd.client().getAll().prefix(`app/${process.pid}-ro`).keys()).toEqual([]);
    await session.close();
  });

  test('a wrong password → AuthenticationError at once, without the password anywhere', async () => {
    const client = etcd.client({ auth: { username: 'app', password: 'not-the-password' } });
    const started = performance.now();
    const error = await Session.create(client, { ttl: 5 }).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(4000); // not retried (retrying takes 6–10 s)
    expect(error).toBeInstanceOf(AuthenticationError);
    expect((error as Error).message).toMatch(/refused to authenticate user "app"/);
    expect(everything(error)).not.toContain('not-the-password');
  });

  test('no client certificate → TlsError at once, told apart from an unreachable host', async () => {
    const options = etcd.clientOptions();
    const client = new Etcd3({ ...options, credentials: { rootCertificate: etcd.tls!.ca } });
    try {
      const started = performance.now();
      const error = await Session.create(client, { ttl: 5 }).catch((e: unknown) => e);
      expect(performance.now() - started).toBeLessThan(4000); // not retried (retrying takes 6–10 s)
      expect(error).toBeInstanceOf(TlsError);
      expect((error as Error).message).toMatch(/^TLS handshake with etcd at 127\.0\.0\.1:\d+(, 127\.0\.0\.1:\d+)* failed/);
    } finally {
      client.close();
    }
  });

  test('no leasehold error, log or cause chain carries a password, token, key or certificate', async () => {
    const secrets = [appPassword, readerPassword, etcd.auth!.rootPassword, etcd.tls!.clientKey.toString(), etcd.tls!.clientCert.toString()];
    const errors: unknown[] = [];
    const session = await Session.create(app(), { ttl: 5 });
    errors.push(await new Mutex(session, 'forbidden/x').lock().catch((e: unknown) => e));
    errors.push(await Session.create(etcd.client({ auth: { username: 'app', password: appPassword + 'x' } })).catch((e: unknown) => e));
    const noCert = new Etcd3({ ...etcd.clientOptions(), credentials: { rootCertificate: etcd.tls!.ca } });
    errors.push(await Session.create(noCert).catch((e: unknown) => e));
    noCert.close();
    for (const error of errors) {
      const text = everything(error);
      for (const secret of secrets) expect(text).not.toContain(secret);
      expect(text).not.toMatch(/token["':= ]+[A-Za-z]{16}\.\d+/); // etcd's simple tokens
    }
    await session.close();
  });
});

describe('auth tokens and namespaces', () => {
  test('an auth token that expires again and again during a long session loses neither the lease nor the lock', async () => {
    const client = app();
    const session = await Session.create(client, steady);
    const lock = await new Mutex(session, `app/${process.pid}-long`).lock();
    const waiter = await Session.create(app(), steady);
    const waiting = new Mutex(waiter, `app/${process.pid}-long`).lock();
    await delay(6500); // the 2 s tokens expire three times
    expect(session.alive).toBe(true);
    expect(lock.held).toBe(true);
    await lock.commit(client.put(`app/${process.pid}-long-data`).value('written under the lock'));
    await lock.release();
    const next = await waiting; // the waiter's watch still delivers the handoff
    await next.release();
    await Promise.all([session.close(), waiter.close()]);
  }, 30_000);

  test('an etcd3 namespace used as a jail keeps every key inside it', async () => {
    const root = etcd.client();
    const before = new Set(await root.getAll().prefix('').keys());
    const jail = app().namespace(`app/${process.pid}-jail/`);
    const session = await Session.create(jail, { ttl: 5 });
    const held: Held[] = [];
    for (const [, take] of primitives) held.push(await take(session, 'p/'));
    const added = (await root.getAll().prefix('').keys()).filter((k) => !before.has(k));
    expect(added.length).toBeGreaterThanOrEqual(held.length);
    expect(added.filter((k) => !k.startsWith(`app/${process.pid}-jail/p/`))).toEqual([]);
    for (const h of held) await h.release();
    await session.close();
  });
});

/** An error's message, name, cause chain and own properties as text. */
function everything(error: unknown, depth = 0): string {
  if (depth > 6 || error === undefined || error === null) return '';
  if (typeof error !== 'object') return String(error);
  const e = error as Record<string, unknown>;
  const own = Object.entries(e)
    .filter(([k]) => k !== 'cause')
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x)) : String(v)}`)
    .join(' ');
  return `${String((error as Error).name)} ${String((error as Error).message)} ${String((error as Error).stack)} ${own} ${everything(e['cause'], depth + 1)}`;
}

describe('the command line over mutual TLS with auth', () => {
  const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
  const leasehold = (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> =>
    new Promise((resolve) => {
      const tls = etcd.tls!;
      const endpoints = etcd.endpoints.map((e) => e.replace('127.0.0.1', 'localhost')).join(',');
      const connection = ['--endpoints', endpoints, '--cacert', tls.caFile, ...(args.includes('--no-client-cert') ? [] : ['--cert', tls.clientCertFile, '--key', tls.clientKeyFile])];
      // The connection options go before `--` (after it, everything is the command's).
      const argv = [args[0]!, ...connection, ...args.slice(1).filter((a) => a !== '--no-client-cert')];
      const child = spawn(process.execPath, ['--conditions=leasehold-source', '--import', 'tsx', cli, ...argv], {
        env: { ...process.env, ETCD_PASSWORD: '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('exit', (code) => resolve({ code, output }));
    });

  test('lock and status work with client certificates and a password from ETCD_PASSWORD or --password-file, never echoed', async () => {
    const name = `app/${process.pid}-cli`;
    const viaEnv = await leasehold(['lock', name, '--user', 'app', '--', 'sh', '-c', 'echo "ran with token $LEASEHOLD_TOKEN"'], { ETCD_PASSWORD: appPassword });
    expect(viaEnv, viaEnv.output).toMatchObject({ code: 0 });
    expect(viaEnv.output).toMatch(/ran with token \d+/);
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-secret-'));
    try {
      writeFileSync(join(dir, 'password'), `${appPassword}\n`, { mode: 0o600 });
      const viaFile = await leasehold(['status', name, '--user', 'app', '--password-file', join(dir, 'password'), '--json']);
      expect(viaFile.code).toBe(0);
      expect(JSON.parse(viaFile.output)).toMatchObject({ kind: 'mutex', name, holders: [], waiters: [] });
      for (const r of [viaEnv, viaFile]) expect(r.output).not.toContain(appPassword);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a wrong password → 77; a read-only user → 77 for lock but status works; no client certificate → 78', async () => {
    const name = `app/${process.pid}-cli-denied`;
    const wrong = await leasehold(['lock', name, '--user', 'app', '--', 'true'], { ETCD_PASSWORD: 'not-the-password' });
    expect(wrong.code).toBe(77);
    expect(wrong.output).not.toContain('not-the-password');
    const reader = await leasehold(['lock', name, '--user', 'reader', '--', 'true'], { ETCD_PASSWORD: readerPassword });
    expect(reader.code).toBe(77);
    expect(reader.output).toMatch(/permission denied/i);
    expect((await leasehold(['status', name, '--user', 'reader'], { ETCD_PASSWORD: readerPassword })).code).toBe(0);
    const noCert = await leasehold(['status', name, '--user', 'app', '--no-client-cert'], { ETCD_PASSWORD: appPassword });
    expect(noCert.code).toBe(78);
  }, 60_000);
});
