import { Etcd3 } from 'etcd3';
import { noop } from 'cockatiel';
import { afterAll, describe, expect, test } from 'vitest';
import { checkClient, checkSessionOptions, maxTtl, sessionOptionNames, timings } from './session-options.js';

const defaults = { ttl: 60, requestTimeout: 5000 };
/** `timings` with the options left out given as undefined, as `checkSessionOptions` returns them. */
const timingsOf = (ttl: number, options: { keepAliveInterval?: number; safetyMargin?: number }) =>
  timings(ttl, { keepAliveInterval: undefined, safetyMargin: undefined, ...options });
const check = (options: unknown) => checkSessionOptions(options, 'Session.create', defaults);
const etcd = new Etcd3({ hosts: '127.0.0.1:1' });
afterAll(() => etcd.close());

describe('checkClient', () => {
  test('an etcd3 client or namespace passes; anything else is named', () => {
    expect(() => checkClient(etcd, 'Session.create')).not.toThrow();
    expect(() => checkClient(etcd.namespace('app/'), 'Session.create')).not.toThrow();
    expect(() => checkClient(null, 'Session.create')).toThrow(new TypeError('Expected `client` of Session.create to be an etcd3 Etcd3 or Namespace, got `null`'));
    expect(() => checkClient('127.0.0.1:2379', 'X')).toThrow('got the string "127.0.0.1:2379"');
    expect(() => checkClient({ kv: {} }, 'X')).toThrow('got an object');
    expect(() => checkClient({ leaseClient: {} }, 'X')).toThrow(TypeError);
  });
});

describe('checkSessionOptions', () => {
  test('defaults, and every option passed through once checked', () => {
    // The default transport is LEASEHOLD_TRANSPORT's when set (CI runs a subset on etcd3), else h2's.
    const defaultTransport = process.env['LEASEHOLD_TRANSPORT'] ?? 'h2';
    expect(check(undefined)).toEqual({ ttl: 60, leaseId: undefined, keepAliveInterval: undefined, safetyMargin: undefined, requestTimeout: 5000, retryPolicy: undefined, signal: undefined, transport: defaultTransport });
    const signal = new AbortController().signal;
    expect(check({ ttl: 5, keepAliveInterval: 100, safetyMargin: 0, requestTimeout: 250, retryPolicy: noop, signal, transport: 'h2' })).toEqual({
      ttl: 5,
      leaseId: undefined,
      keepAliveInterval: 100,
      safetyMargin: 0,
      requestTimeout: 250,
      retryPolicy: noop,
      signal,
      transport: 'h2',
    });
    expect(() => check({ transport: 'http3' })).toThrow('Expected `transport` to be one of \'h2\', \'etcd3\', got the string "http3"');
    expect(sessionOptionNames).toEqual(['ttl', 'leaseId', 'keepAliveInterval', 'safetyMargin', 'requestTimeout', 'retryPolicy', 'transport', 'signal']);
  });

  test('ttl is an integer from 1 to etcd\'s maximum', () => {
    expect(check({ ttl: 1 }).ttl).toBe(1);
    expect(check({ ttl: maxTtl }).ttl).toBe(9_000_000_000);
    expect(() => check({ ttl: 0 })).toThrow(new RangeError('Expected `ttl` to be an integer from 1 to 9000000000, got `0`'));
    expect(() => check({ ttl: maxTtl + 1 })).toThrow(RangeError);
    expect(() => check({ ttl: '10' })).toThrow(new TypeError('Expected `ttl` to be an integer, got the string "10"'));
  });

  test('timings must be numbers of milliseconds; the margin may be 0', () => {
    expect(() => check({ keepAliveInterval: 0 })).toThrow('Expected `keepAliveInterval` to be a finite number of milliseconds > 0, got `0`');
    expect(() => check({ safetyMargin: -1 })).toThrow('Expected `safetyMargin` to be a finite number of milliseconds >= 0, got `-1`');
    expect(() => check({ requestTimeout: 0 })).toThrow('Expected `requestTimeout` to be a finite number of milliseconds > 0, got `0`');
    expect(() => check({ requestTimeout: '1s' })).toThrow(TypeError);
  });

  test('leaseId: a decimal string or bigint of a positive id below 2^63; it excludes ttl', () => {
    expect(check({ leaseId: '7587869354587438' })).toMatchObject({ leaseId: '7587869354587438', ttl: undefined });
    expect(check({ leaseId: 255n }).leaseId).toBe('255');
    expect(check({ leaseId: '9223372036854775807' }).leaseId).toBe('9223372036854775807');
    expect(check({ leaseId: 2n ** 63n - 1n }).leaseId).toBe('9223372036854775807');
    expect(check({ leaseId: 1n }).leaseId).toBe('1');
    expect(check({ leaseId: '1' }).leaseId).toBe('1');
    const refused = (value: unknown) => () => check({ leaseId: value });
    for (const bad of ['0', '-1', '01', '1af5', '9223372036854775808', '12345678901234567890', ' 1', '1 ', '', 0n, -1n, 2n ** 63n, 5, null]) {
      expect(refused(bad), String(bad)).toThrow(TypeError);
    }
    expect(refused('abc')).toThrow("Expected `leaseId` to be a positive decimal string or bigint below 2^63 (etcd's decimal lease id), got the string \"abc\"");
    expect(() => check({ leaseId: '1', ttl: 5 })).toThrow(new TypeError('Options `ttl` and `leaseId` of Session.create exclude each other: an adopted lease keeps the TTL it was granted with'));
  });

  test('retryPolicy must be a cockatiel policy; signal an AbortSignal; no unknown option', () => {
    expect(() => check({ retryPolicy: {} })).toThrow(new TypeError('Expected `retryPolicy` to be a cockatiel policy (an object with `execute`), got an object'));
    expect(() => check({ retryPolicy: null })).toThrow('got `null`');
    expect(() => check({ retryPolicy: () => 1 })).toThrow('got a function');
    // Even a function with an `execute` member is no policy.
    expect(() => check({ retryPolicy: Object.assign(() => 1, { execute: () => 1 }) })).toThrow('got a function');
    expect(() => check({ signal: 'x' })).toThrow('Expected `signal` of Session.create to be an AbortSignal');
    expect(() => check({ tll: 5 })).toThrow('Unknown option `tll` of Session.create');
  });
});

describe('timings', () => {
  test('defaults: a keep-alive every TTL/3, a margin of TTL/10', () => {
    expect(timingsOf(3, {})).toEqual({ interval: 1000, margin: 300 });
    expect(timingsOf(10, {})).toEqual({ interval: 10_000 / 3, margin: 1000 });
    expect(timingsOf(10, { keepAliveInterval: 500, safetyMargin: 0 })).toEqual({ interval: 500, margin: 0 });
  });

  test('the margin must be below the TTL, and the interval below TTL − margin', () => {
    expect(timingsOf(2, { safetyMargin: 1999, keepAliveInterval: 0.5 })).toEqual({ interval: 0.5, margin: 1999 });
    expect(() => timingsOf(2, { safetyMargin: 2000 })).toThrow(new RangeError('Expected `safetyMargin` to be less than the TTL (2000 ms), got `2000`'));
    expect(() => timingsOf(2, { safetyMargin: 1000, keepAliveInterval: 1000 })).toThrow(new RangeError('Expected `keepAliveInterval` to be less than TTL − safetyMargin (1000 ms), got `1000`'));
    expect(timingsOf(2, { safetyMargin: 1000, keepAliveInterval: 999 }).interval).toBe(999);
    expect(() => timingsOf(1, { safetyMargin: 700 })).toThrow('Expected `keepAliveInterval` to be less than TTL − safetyMargin (300 ms), got `333.3333333333333`');
  });
});
