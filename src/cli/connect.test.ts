import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { clientOptions, connect, defaultEndpoint, parseEndpoints } from './connect.js';
import { TlsFileError, UsageError } from './exit-codes.js';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-connect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('parseEndpoints', () => {
  test.each([
    ['127.0.0.1:2379', false, ['http://127.0.0.1:2379']],
    ['127.0.0.1:2379', true, ['https://127.0.0.1:2379']],
    ['etcd-0.etcd:2379/', false, ['http://etcd-0.etcd:2379/']],
    ['https://etcd-0:2379', false, ['https://etcd-0:2379']],
    ['HTTP://a:1', true, ['HTTP://a:1']],
    ['[::1]:2379', false, ['http://[::1]:2379']],
    ['a:1, b:65535 ,c:0', false, ['http://a:1', 'http://b:65535', 'http://c:0']],
    ['http://https:1,b:2', false, ['http://https:1', 'http://b:2']],
  ])('%j (tls %s) → %j', (text, tls, urls) => {
    expect(parseEndpoints(text, tls)).toEqual(urls);
  });

  test.each([
    ['', '--endpoints: "" is not host:port (e.g. 127.0.0.1:2379 or https://etcd-0.etcd:2379)'],
    ['etcd-0', '--endpoints: "etcd-0" is not host:port'],
    ['etcd-0:', '--endpoints: "etcd-0:" is not host:port'],
    ['etcd-0 etcd-1', '--endpoints: "etcd-0 etcd-1" is not host:port'],
    ['a:65536', '--endpoints: "a:65536" is not host:port'],
    ['a:123456', '--endpoints: "a:123456" is not host:port'],
    ['a:99999/', '--endpoints: "a:99999/" is not host:port'],
    ['a b:1', '--endpoints: "a b:1" is not host:port'],
    ['x/a:1', '--endpoints: "x/a:1" is not host:port'],
    ['a:1ab://', '--endpoints: "a:1ab://" is not host:port'],
    ['xhttp://a:1', '--endpoints: "xhttp://a:1" has a scheme other than http:// or https://'],
    ['httpx://a:1', '--endpoints: "httpx://a:1" has a scheme other than http:// or https://'],
    ['a:1/x', '--endpoints: "a:1/x" is not host:port'],
    ['[::g]:1', '--endpoints: "[::g]:1" is not host:port'],
    ['a:1,,b:2', '--endpoints: "" is not host:port'],
    ['ftp://a:1', '--endpoints: "ftp://a:1" has a scheme other than http:// or https://'],
    ['http://a:1,https://b:2', '--endpoints: mixes http:// and https:// (http://a:1, https://b:2); a client talks TLS to every member or to none'],
    ['a:1,https://b:2', '--endpoints: mixes http:// and https://'],
  ])('%j is refused, naming it', (text, message) => {
    expect(() => parseEndpoints(text, false)).toThrow(message);
    expect(() => parseEndpoints(text, false)).toThrow(UsageError);
  });
});

describe('clientOptions', () => {
  test('endpoints: the flag, else $ETCD_ENDPOINTS, else the default; no TLS, no auth', () => {
    expect(clientOptions({ endpoints: 'a:1' }, { ETCD_ENDPOINTS: 'b:2' })).toEqual({ hosts: ['http://a:1'] });
    expect(clientOptions({}, { ETCD_ENDPOINTS: 'b:2' })).toEqual({ hosts: ['http://b:2'] });
    expect(clientOptions({}, {})).toEqual({ hosts: [`http://${defaultEndpoint}`] });
    expect(defaultEndpoint).toBe('127.0.0.1:2379');
  });

  test('TLS files are read (https assumed); --cert and --key go together; an unreadable one is a TLS error naming it', () => {
    const ca = file('ca.pem', 'CA');
    const cert = file('cert.pem', 'CERT');
    const key = file('key.pem', 'KEY');
    const onlyCa = clientOptions({ endpoints: 'a:1', cacert: ca }, {});
    expect(onlyCa.hosts).toEqual(['https://a:1']);
    expect(onlyCa.credentials?.rootCertificate.toString()).toBe('CA');
    expect(onlyCa.credentials).not.toHaveProperty('certChain');
    const mutual = clientOptions({ endpoints: 'a:1', cacert: ca, cert, key }, {});
    expect(mutual.credentials?.certChain?.toString()).toBe('CERT');
    expect(mutual.credentials?.privateKey?.toString()).toBe('KEY');
    expect(clientOptions({ endpoints: 'a:1', cert, key }, {}).hosts).toEqual(['https://a:1']);
    expect(() => clientOptions({ cert }, {})).toThrow(new UsageError('--cert and --key go together (a client certificate and its private key); got only --cert'));
    expect(() => clientOptions({ key }, {})).toThrow('got only --key');
    expect(() => clientOptions({ cacert: join(dir, 'missing.pem') }, {})).toThrow(new TlsFileError(`cannot read --cacert ${JSON.stringify(join(dir, 'missing.pem'))} (ENOENT)`));
    expect(() => clientOptions({ cert: dir, key }, {})).toThrow(new TlsFileError(`cannot read --cert ${JSON.stringify(dir)} (EISDIR)`));
    expect(() => clientOptions({ cert, key: dir }, {})).toThrow(TlsFileError);
    expect(() => clientOptions({ cert, key: dir }, {})).toThrow(`cannot read --key ${JSON.stringify(dir)} (EISDIR)`);
  });

  test('--user takes its password from $ETCD_PASSWORD or --password-file (one trailing newline dropped), never from the command line', () => {
    expect(clientOptions({ user: 'alice' }, { ETCD_PASSWORD: 's3cret' }).auth).toEqual({ username: 'alice', password: 's3cret' });
    expect(clientOptions({ user: 'alice', passwordFile: file('pw', 'from-file\n') }, { ETCD_PASSWORD: 'env' }).auth).toEqual({ username: 'alice', password: 'from-file' });
    expect(clientOptions({ user: 'alice', passwordFile: file('pw-crlf', 'pw\r\n') }, {}).auth?.password).toBe('pw');
    expect(clientOptions({ user: 'alice', passwordFile: file('pw-two', 'p\nw\n') }, {}).auth?.password).toBe('p\nw');
    expect(() => clientOptions({ user: 'alice' }, {})).toThrow(new UsageError('--user alice needs a password: set ETCD_PASSWORD or pass --password-file FILE'));
    expect(() => clientOptions({ user: 'alice' }, { ETCD_PASSWORD: '' })).toThrow('--user alice needs a password');
    expect(() => clientOptions({ user: 'alice', passwordFile: file('pw-empty', '\n') }, {})).toThrow('--user alice needs a password');
    expect(() => clientOptions({ user: '' }, { ETCD_PASSWORD: 'x' })).toThrow(new UsageError('--user: expected a user name (the password comes from ETCD_PASSWORD or --password-file), got ""'));
    expect(() => clientOptions({ user: 'alice:pw' }, { ETCD_PASSWORD: 'x' })).toThrow('got "alice:pw"');
    expect(() => clientOptions({ passwordFile: file('pw3', 'x') }, {})).toThrow(new UsageError('--password-file needs --user NAME'));
    const missing = join(dir, 'none');
    expect(() => clientOptions({ user: 'alice', passwordFile: missing }, {})).toThrow(new UsageError(`cannot read --password-file ${JSON.stringify(missing)} (ENOENT)`));
  });
});

describe('connect', () => {
  test('the client, the namespace (none when empty), and the endpoints as messages name them', () => {
    const plain = connect({ endpoints: 'http://a:1,b:2,[::1]:3/' }, {});
    expect(plain.ns).toBe(plain.client);
    expect(plain.endpoints).toEqual(['a:1', 'b:2', '[::1]:3']);
    plain.client.close();
    const empty = connect({ endpoints: 'a:1', namespace: '' }, {});
    expect(empty.ns).toBe(empty.client);
    empty.client.close();
    const spaced = connect({ endpoints: 'HTTPS://a:1', namespace: 'app/' }, {});
    expect(spaced.ns).not.toBe(spaced.client);
    expect(spaced.endpoints).toEqual(['a:1']);
    spaced.client.close();
  });
});
