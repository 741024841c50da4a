// The h2 transport against a real etcd with mutual TLS and authentication, from the options a user
// gives etcd3: calls and streams as a user scoped to a prefix; denials, a wrong password and refused
// certificates told apart (and explained as leasehold's typed errors); an auth token that expires.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AuthenticationError, PermissionDeniedError, TlsError } from '../../src/index.js';
import { startEtcd, startProxy, type EtcdCluster, type TcpProxy } from '../../src/testing/index.js';
import { makeCertificates } from '../../src/testing/tls.js';
import { explainTransportError } from '../../src/transport/explain.js';
import { H2Transport } from '../../src/transport/h2/transport.js';
import type { H2Options } from '../../src/transport/h2/options.js';
import { TransportError } from '../../src/transport/port.js';
import { eventually } from '../helpers.js';

const password = 'app-secret-Pa55word';
const tokenTtl = 2;
let etcd: EtcdCluster;
const open: H2Transport[] = [];
const proxies: TcpProxy[] = [];
const call = { timeoutMs: 5000 };
const k = (name: string): Buffer => Buffer.from(`app/${process.pid}/${name}`);

beforeAll(async () => {
  etcd = await startEtcd({
    tls: true,
    auth: { roles: { app: { readwrite: ['app/'] } }, users: { app: { password, roles: ['app'] } }, tokenTtl },
  });
}, 60_000);
afterAll(async () => {
  for (const t of open) t.close();
  for (const p of proxies) await p[Symbol.asyncDispose]();
  await etcd?.stop();
});

/** A transport with the cluster's etcd3 options (its CA, client certificate, `app`'s password), and `overrides`. */
function transport(overrides: Partial<H2Options> = {}): H2Transport {
  const o = etcd.clientOptions({ auth: { username: 'app', password } });
  const t = new H2Transport({ hosts: o.hosts, credentials: o.credentials, auth: o.auth, grpcOptions: o.grpcOptions as Record<string, unknown>, ...overrides });
  open.push(t);
  return t;
}

const rejection = (p: Promise<unknown>): Promise<TransportError> => p.then(() => Promise.reject(new Error('resolved')), (e: unknown) => e as TransportError);

describe('mutual TLS and a user scoped to app/', () => {
  test('unary calls, a watch and a keep-alive stream work', async () => {
    const t = transport();
    const { id } = await t.leaseGrant(10, call);
    const answers: boolean[] = [];
    const watch = await t.watch({ message: (res) => answers.push(res.events.length > 0), end: () => undefined }, { requireLeader: true });
    watch.send({ create: { key: k('w'), watchId: 1 } });
    const kept: number[] = [];
    const keepAlive = await t.leaseKeepAlive({ message: (res) => kept.push(res.ttl), end: () => undefined });
    keepAlive.send(id);
    await eventually(() => answers.length === 1 && kept.length === 1, 5000, 'watch created, lease kept alive');
    await t.txn({ compare: [], success: [{ put: { key: k('w'), value: Buffer.from('v'), lease: id } }] }, call);
    await eventually(() => answers.includes(true), 5000, 'the put event');
    expect((await t.range({ key: k('w') }, call)).kvs[0]!.lease).toBe(id);
    expect(kept).toEqual([10]);
    watch.close();
    keepAlive.close();
    await t.leaseRevoke(id, call);
    expect(t.authentications).toBe(1);
  });

  test('the server name comes from grpc.ssl_target_name_override, or the IP address in the certificate', async () => {
    await transport().range({ key: k('x') }, call);
    await transport({ grpcOptions: {} }).range({ key: k('x') }, call);
  });
});

describe('refusals are told apart and explained', () => {
  test('outside the user\'s prefix: PERMISSION_DENIED → PermissionDeniedError naming the key', async () => {
    const t = transport();
    const error = await rejection(t.txn({ compare: [], success: [{ put: { key: Buffer.from('other/x'), value: Buffer.from('v') } }] }, call));
    expect([error.code, error.kind]).toEqual(['PERMISSION_DENIED', 'permission']);
    const explained = explainTransportError(error, { endpoints: t.endpoints, user: t.user, key: 'other/x' });
    expect(explained).toBeInstanceOf(PermissionDeniedError);
    expect((explained as PermissionDeniedError).key).toBe('other/x');
    expect((explained as Error).message).toMatch(/^etcd at 127\.0\.0\.1:\d+ denied access to "other\/x"/);
  });

  test('a wrong password: auth, at once → AuthenticationError naming the user, not the password', async () => {
    const t = transport({ auth: { username: 'app', password: 'not-the-password' } });
    const error = await rejection(t.range({ key: k('x') }, call));
    expect(error.kind).toBe('auth');
    const explained = explainTransportError(error, { endpoints: t.endpoints, user: t.user });
    expect(explained).toBeInstanceOf(AuthenticationError);
    expect((explained as Error).message).toMatch(/refused to authenticate user "app": .*invalid user ID or password/);
    expect(JSON.stringify(explained, Object.getOwnPropertyNames(explained)) + String((explained as Error).stack)).not.toContain('not-the-password');
  });

  test('no client certificate: tls → TlsError, told apart from an unreachable host', async () => {
    const error = await rejection(transport({ credentials: { rootCertificate: etcd.tls!.ca } }).range({ key: k('x') }, call));
    expect([error.code, error.kind]).toEqual(['UNAVAILABLE', 'tls']);
    expect(explainTransportError(error, { endpoints: [], user: undefined })).toBeInstanceOf(TlsError);
  });

  test('a server certificate our CA did not sign: tls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-other-ca-'));
    try {
      const other = makeCertificates(dir);
      const error = await rejection(transport({ credentials: { rootCertificate: other.ca, certChain: etcd.tls!.clientCert, privateKey: etcd.tls!.clientKey } }).range({ key: k('x') }, call));
      expect(error.kind).toBe('tls');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('cleartext to a TLS member: unreachable (transient), not a hang', async () => {
    const t = new H2Transport({ hosts: etcd.endpoints.map((e) => e.replace('https://', 'http://')) });
    open.push(t);
    const error = await rejection(t.range({ key: k('x') }, { timeoutMs: 2000 }));
    expect(error.kind).toBe('transient');
  });
});

test('an auth token that expires unused: the next call authenticates again, and so does the next stream', async () => {
  const t = transport();
  await t.range({ key: k('x') }, call);
  expect(t.authentications).toBe(1);
  await delay((tokenTtl + 1.5) * 1000); // unused, the token expires on the server
  await t.range({ key: k('x') }, call);
  expect(t.authentications).toBe(2);
  await delay((tokenTtl + 1.5) * 1000);
  // The cached token has expired again: etcd refuses a watch created with it (watch id -1, "invalid
  // auth token"); the transport ends that stream as transient and forgets the token, so the owner's
  // next stream authenticates again and its watch is created.
  const answers: boolean[] = [];
  const ended: TransportError[] = [];
  const handlers = { message: (res: { created: boolean; canceled: boolean }) => answers.push(res.created && !res.canceled), end: (e: TransportError) => ended.push(e) };
  const stale = await t.watch(handlers);
  stale.send({ create: { key: k('w'), watchId: 1 } });
  await eventually(() => ended.length === 1, 5000, 'the stale stream ended');
  expect([ended[0]!.code, ended[0]!.kind, answers]).toEqual(['UNAUTHENTICATED', 'transient', []]);
  const watch = await t.watch(handlers);
  watch.send({ create: { key: k('w'), watchId: 1 } });
  await eventually(() => answers.length === 1, 5000, 'created');
  expect([answers, t.authentications]).toEqual([[true], 3]);
  watch.close();
});

describe('waiting for a token', () => {
  /** A transport whose first endpoint is a proxy to the member (started blackholed or slowed by the caller). */
  async function viaProxy(direct: boolean): Promise<{ t: H2Transport; proxy: TcpProxy }> {
    const proxy = await startProxy(etcd.members[0]!.clientUrl);
    proxies.push(proxy);
    const hosts = [proxy.url.replace('http://', 'https://'), ...(direct ? etcd.endpoints : [])];
    return { t: transport({ hosts }), proxy };
  }

  test('a call waits no longer than its deadline; the silent member is learned, so the next call authenticates elsewhere', async () => {
    const { t, proxy } = await viaProxy(true);
    proxy.blackhole();
    t.markSilent(t.members[1]!); // the direct member: the proxy is tried first
    const started = performance.now();
    const error = await rejection(t.range({ key: k('x') }, { timeoutMs: 1000 }));
    expect(performance.now() - started).toBeLessThan(2500); // was 5 s: the fetch's own fixed 5 s
    expect([error.code, error.kind]).toEqual(['DEADLINE_EXCEEDED', 'transient']);
    // Both members are now silent; the direct one longest, so it goes first (the proxy did not answer).
    await t.range({ key: k('x') }, { timeoutMs: 3000 });
  });

  test('a signal aborts one caller\'s wait with its reason; the fetch goes on for the others', async () => {
    const { t, proxy } = await viaProxy(false);
    proxy.delay(1000, 'toClient');
    const reason = new Error('caller gave up');
    const controller = new AbortController();
    const impatient = rejection(t.range({ key: k('x') }, { timeoutMs: 30_000, signal: controller.signal }));
    const patient = t.range({ key: k('x') }, { timeoutMs: 30_000 });
    await delay(300);
    const started = performance.now();
    controller.abort(reason);
    expect(await impatient).toBe(reason);
    expect(performance.now() - started).toBeLessThan(500); // not when the token came
    await patient;
    expect(t.authentications).toBe(1);
  });
});
