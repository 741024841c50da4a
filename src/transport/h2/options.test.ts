// The h2 transport's options, checked where they enter: hosts (ports, IPv6 in brackets, schemes), TLS
// from the client's credentials, and the receive limit — each bad value refused naming it.
import { describe, expect, test } from 'vitest';
import { maxMessageBytes } from './framing.js';
import { resolveH2Options } from './options.js';

describe('resolveH2Options', () => {
  test.each([
    ['127.0.0.1:2379', '127.0.0.1:2379'],
    ['http://etcd-0.etcd:2379/', 'etcd-0.etcd:2379'],
    ['[::1]:2379', '[::1]:2379'],
    ['http://[fe80::1]:1', '[fe80::1]:1'],
    ['localhost:65535', 'localhost:65535'],
  ])('%s is the endpoint %s', (host, endpoint) => {
    expect(resolveH2Options({ hosts: host }).endpoints).toEqual([endpoint]);
  });

  test.each(['127.0.0.1:99999', '127.0.0.1:0', '::1:2379', 'etcd:', 'etcd', 'http://etcd/path:2379', ' etcd:2379', 'etcd:2379x'])(
    '%j is refused with a TypeError naming it',
    (host) => {
      expect(() => resolveH2Options({ hosts: [host] })).toThrow(new TypeError(`Expected each of \`hosts\` to be host:port with a port from 1 to 65535, an IPv6 address in brackets ([::1]:2379), optionally with http:// or https://; got ${JSON.stringify(host)}`));
    },
  );

  test('no hosts, or a mix of https:// and not, is refused', () => {
    expect(() => resolveH2Options({ hosts: [] })).toThrow('Expected `hosts` to name at least one etcd endpoint, got none');
    expect(() => resolveH2Options({ hosts: ['https://a:1', 'b:2'] })).toThrow('Expected `hosts` to be all https:// or all not, got "https://a:1, b:2"');
  });

  test("the receive limit: grpc-js's 4 MiB, a number of bytes, or -1 for none; anything else is refused naming it", () => {
    expect(resolveH2Options({ hosts: 'a:1' }).maxReceiveBytes).toBe(maxMessageBytes);
    expect(resolveH2Options({ hosts: 'a:1', grpcOptions: { 'grpc.max_receive_message_length': 100 } }).maxReceiveBytes).toBe(100);
    expect(resolveH2Options({ hosts: 'a:1', grpcOptions: { 'grpc.max_receive_message_length': -1 } }).maxReceiveBytes).toBe(Number.POSITIVE_INFINITY);
    for (const bad of ['4MB', -2, 1.5]) {
      expect(() => resolveH2Options({ hosts: 'a:1', grpcOptions: { 'grpc.max_receive_message_length': bad } })).toThrow(
        `Expected \`grpcOptions['grpc.max_receive_message_length']\` to be a whole number of bytes or -1, got ${typeof bad === 'string' ? JSON.stringify(bad) : bad}`,
      );
    }
  });

  test('TLS: https:// or credentials turn it on; the server-name override is read', () => {
    expect(resolveH2Options({ hosts: 'a:1' }).tls).toBeUndefined();
    expect(resolveH2Options({ hosts: 'https://a:1' }).tls).toEqual({});
    const ca = Buffer.from('ca');
    expect(resolveH2Options({ hosts: 'a:1', credentials: { rootCertificate: ca }, grpcOptions: { 'grpc.ssl_target_name_override': 'etcd' } }).tls).toEqual({ ca, servername: 'etcd' });
  });
});
