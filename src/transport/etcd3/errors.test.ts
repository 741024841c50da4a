// Which etcd3 errors are transient, what each becomes on the port, and what the user then sees: no
// etcd needed (a client on a closed port fails the way an unreachable etcd does).
import { BrokenCircuitError, IsolatedCircuitError } from 'cockatiel';
import {
  ClientClosedError,
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdInvalidAuthTokenError,
  EtcdLeaseInvalidError,
  EtcdPermissionDeniedError,
  GRPCCancelledError,
  GRPCDeadlineExceededError,
  GRPCGenericError,
  GRPCInternalError,
  GRPCInvalidArgumentError,
  GRPCResourceExhastedError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
  RecoverableError,
} from 'etcd3';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { EtcdUnavailableError, LeaseLostError, NotHeldError } from '../../errors.js';
import { explainTransportError } from '../explain.js';
import { TransportError } from '../port.js';
import { causes, defaultRetryPolicy, isLeaseNotFound, isTransientError as isTransient } from '../retry.js';
import { grpcCode, isTlsFailure, isTransientEtcd3Error, toTransportError } from './errors.js';
import { authUserOf, endpointOf, endpointsOf, unary } from './pool.js';

/** Whether leasehold retries `error` (an etcd3 error as the adapter reports it, or a leasehold error). */
const isTransientError = (error: unknown): boolean => isTransient(toTransportError(error, undefined));

/** What the user sees of an etcd3 error met on `ns` (about `key`). */
function explainEtcdError(error: unknown, ns: Etcd3, key?: string): unknown {
  return explainTransportError(toTransportError(error, endpointOf(error)), { endpoints: endpointsOf(ns), user: authUserOf(ns), key });
}

const unavailable = (): TransportError => new TransportError('14 UNAVAILABLE: x', { code: 'UNAVAILABLE', kind: 'transient', endpoint: undefined });

const clients: Etcd3[] = [];
/** A client of etcd at `hosts` (nothing listens there; nothing connects until a call is made). */
function client(hosts: string[], username?: string): Etcd3 {
  const c = new Etcd3({ hosts, ...(username === undefined ? {} : { auth: { username, password: 'secret' } }) });
  clients.push(c);
  return c;
}
afterAll(() => {
  for (const c of clients) c.close();
});

describe('causes', () => {
  test('the error, then its causes, at most 8 deep; a cause that is no Error ends the chain', () => {
    const root = new Error('root');
    const mid = new Error('mid', { cause: root });
    const top = new Error('top', { cause: mid });
    expect([...causes(top)]).toEqual([top, mid, root]);
    expect([...causes('text')]).toEqual(['text']);
    const odd = new Error('odd', { cause: 42 });
    expect([...causes(odd)]).toEqual([odd, 42]);
    expect([...causes(undefined)]).toEqual([]);
    let deep = new Error('0');
    for (let i = 1; i < 12; i++) deep = new Error(String(i), { cause: deep });
    expect([...causes(deep)].map((e) => (e as Error).message)).toEqual(['11', '10', '9', '8', '7', '6', '5', '4']);
  });
});

describe('isTlsFailure', () => {
  test.each([
    'alert bad certificate',
    'certificate required',
    'SSL routines: handshake failure',
    'unknown ca',
    'certificate verify failed',
    'self signed certificate in chain',
    'self-signed certificate',
    'unable to get local issuer certificate',
    'unable to verify the first certificate',
    'CERT_HAS_EXPIRED',
    'ERR_TLS_CERT_ALTNAME_INVALID',
    'wrong version number',
    'x509: certificate signed by unknown authority',
  ])('%s', (message) => {
    expect(isTlsFailure(new Error(`14 UNAVAILABLE: ${message}`))).toBe(true);
  });

  test('other messages and non-errors are no TLS failure', () => {
    expect(isTlsFailure(new Error('14 UNAVAILABLE: connect ECONNREFUSED'))).toBe(false);
    expect(isTlsFailure('certificate required')).toBe(false);
  });
});

describe('isTransientError', () => {
  test.each([
    ['GRPCUnavailableError', new GRPCUnavailableError('14 UNAVAILABLE: x')],
    ['GRPCDeadlineExceededError', new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: x')],
    ['GRPCInternalError', new GRPCInternalError('13 INTERNAL: x')],
    ['GRPCResourceExhastedError', new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: too many requests')],
    ['GRPCCancelledError', new GRPCCancelledError('1 CANCELLED: x')],
    ['a BrokenCircuitError (etcd3\'s breaker: an outage, not a verdict)', new BrokenCircuitError()],
    ['an error marked recoverable by etcd3', Object.assign(new Error('boom'), { [RecoverableError]: true })],
    ['leasehold\'s EtcdUnavailableError', new EtcdUnavailableError('x', { endpoints: [], code: 'UNAVAILABLE' })],
  ])('%s is transient', (_name, error) => {
    expect(isTransientError(error)).toBe(true);
  });

  test.each([
    'etcdserver: leader changed',
    'etcdserver: request timed out',
    'etcdserver: no leader',
    'etcdserver: too many requests',
    'etcdserver: request timed out, waiting for the applied index took too long; timed out due to',
    'connection refused',
    'Connection reset by peer',
    'connect ECONNREFUSED 127.0.0.1:1',
    'read ECONNRESET',
    'service unavailable',
    'etcdserver: not capable',
    'raft: stopped',
  ])('an error saying "%s" is transient', (message) => {
    expect(isTransientEtcd3Error(new Error(message))).toBe(true);
    expect(isTransientError(new Error(`14 UNAVAILABLE: ${message}`))).toBe(true);
  });

  test.each([
    ['a leasehold error other than EtcdUnavailableError', new NotHeldError('x', { key: 'k' })],
    ['a leasehold LeaseLostError', new LeaseLostError('x', { leaseId: '1' })],
    ['a non-error', 'ECONNREFUSED'],
    ['an expired lease', new EtcdLeaseInvalidError('1')],
    ['an expired lease, whatever its message says', Object.assign(new EtcdLeaseInvalidError('1'), { message: 'connection refused' })],
    ['a plain error saying "connection refused" (not etcd3\'s)', new Error('connection refused')],
    ['refused credentials', new EtcdAuthenticationFailedError('authentication failed')],
    ['GRPCUnauthenticatedError', new GRPCUnauthenticatedError('16 UNAUTHENTICATED: x')],
    ['an auth message', new Error('2 UNKNOWN: etcdserver: invalid user ID or password')],
    ['an empty user name', new Error('2 UNKNOWN: etcdserver: user name is empty')],
    ['a refused certificate, though UNAVAILABLE', new GRPCUnavailableError('14 UNAVAILABLE: alert bad certificate')],
    ['a message over 2 MiB, though RESOURCE_EXHAUSTED', new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: Received message larger than max (4194405 vs. 4194304)')],
    ['a full database', new GRPCResourceExhastedError('8 RESOURCE_EXHAUSTED: etcdserver: mvcc: database space exceeded')],
    ['a request too large', new Error('2 UNKNOWN: etcdserver: request is too large')],
    ['a key too large', new Error('14 UNAVAILABLE: too large')],
    ['an invalid argument', new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: x')],
    ['a plain error', new Error('boom')],
  ])('%s is not transient', (_name, error) => {
    expect(isTransientError(error)).toBe(false);
  });
});

describe('isLeaseNotFound', () => {
  test('etcd says the lease is gone: the error itself or a cause of it', () => {
    expect(isLeaseNotFound(toTransportError(new EtcdLeaseInvalidError('1'), undefined))).toBe(true);
    expect(isLeaseNotFound(toTransportError(new GRPCGenericError('5 NOT_FOUND: etcdserver: requested lease not found'), undefined))).toBe(true);
    expect(isLeaseNotFound(new Error('etcdserver: requested lease not found'))).toBe(true);
    expect(isLeaseNotFound(new Error('lease not found'))).toBe(true);
    expect(isLeaseNotFound(new Error('wrapped', { cause: new Error('Requested Lease Not Found') }))).toBe(true);
    expect(isLeaseNotFound(new Error('wrapped', { cause: toTransportError(new EtcdLeaseInvalidError('1'), undefined) }))).toBe(true);
    expect(isLeaseNotFound(new Error('lease expired'))).toBe(false);
    expect(isLeaseNotFound('lease not found')).toBe(false);
  });
});

describe('grpcCode', () => {
  test('the status name of the message, or a stand-in', () => {
    expect(grpcCode(new GRPCUnavailableError('14 UNAVAILABLE: x'))).toBe('UNAVAILABLE');
    expect(grpcCode(new Error('8 RESOURCE_EXHAUSTED: x'))).toBe('RESOURCE_EXHAUSTED');
    expect(grpcCode(new BrokenCircuitError())).toBe('CIRCUIT_OPEN');
    expect(grpcCode(new ClientClosedError('kv'))).toBe('CLIENT_CLOSED');
    expect(grpcCode(new GRPCGenericError('no status here'))).toBe('GRPCGenericError');
    expect(grpcCode(new Error('x 14 UNAVAILABLE: y'))).toBe('Error');
  });
});

describe('explainEtcdError', () => {
  const ns = client(['127.0.0.1:1', '127.0.0.1:2']);

  test('what is not an etcd3 error, or is a lost lease, is returned as it is', () => {
    for (const error of [new Error('boom'), new TypeError('bad'), 'text', new NotHeldError('x', { key: 'k' }), new IsolatedCircuitError()]) {
      expect(explainEtcdError(error, ns)).toBe(error);
    }
    const lease = new EtcdLeaseInvalidError('1');
    expect(explainEtcdError(lease, ns)).toMatchObject({ name: 'TransportError', kind: 'lease-not-found', cause: lease });
    const leaseGone = new GRPCGenericError('5 NOT_FOUND: etcdserver: requested lease not found');
    expect(explainEtcdError(leaseGone, ns)).toMatchObject({ name: 'TransportError', kind: 'lease-not-found', cause: leaseGone });
  });

  test('a transient error becomes EtcdUnavailableError, naming every endpoint when the failing one is not known', () => {
    const cause = new GRPCUnavailableError('14 UNAVAILABLE: connect ECONNREFUSED');
    const error = explainEtcdError(cause, ns) as EtcdUnavailableError;
    expect(error).toMatchObject({
      name: 'EtcdUnavailableError',
      message: 'etcd at 127.0.0.1:1, 127.0.0.1:2 unavailable: 14 UNAVAILABLE: connect ECONNREFUSED',
      endpoints: ['127.0.0.1:1', '127.0.0.1:2'],
      code: 'UNAVAILABLE',
      cause: { name: 'TransportError', kind: 'transient', cause },
    });
    // A message in etcd3's "<code> <NAME>: " form is an etcd3 error too — only at its start.
    expect(explainEtcdError(new Error('14 UNAVAILABLE: connection refused'), ns)).toMatchObject({ name: 'EtcdUnavailableError', code: 'UNAVAILABLE' });
    const quoted = new Error('not etcd3: 14 UNAVAILABLE: connection refused');
    expect(explainEtcdError(quoted, ns)).toBe(quoted);
    expect(explainEtcdError(new Error('4 DEADLINE_EXCEEDED: request timed out'), ns)).toMatchObject({ name: 'EtcdUnavailableError', code: 'DEADLINE_EXCEEDED' });
    expect(explainEtcdError(new Error('2 UNKNOWN: late'), ns)).toMatchObject({ name: 'EtcdRequestError', code: 'UNKNOWN' });
  });

  test("an open breaker says so; a closed client is a final error", () => {
    expect((explainEtcdError(new BrokenCircuitError(), ns) as Error).message).toBe(
      "etcd at 127.0.0.1:1, 127.0.0.1:2 unavailable: the etcd3 client's circuit breaker is open (Execution prevented because the circuit breaker is open)",
    );
    expect(explainEtcdError(new ClientClosedError('kv'), ns)).toMatchObject({ name: 'EtcdRequestError', code: 'CLIENT_CLOSED' });
  });

  test('a refusal becomes EtcdRequestError; a denied permission PermissionDeniedError with the key', () => {
    expect(explainEtcdError(new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: bad'), ns)).toMatchObject({
      name: 'EtcdRequestError',
      message: 'etcd at 127.0.0.1:1, 127.0.0.1:2 refused the request: 3 INVALID_ARGUMENT: bad',
      code: 'INVALID_ARGUMENT',
    });
    expect(explainEtcdError(new EtcdError('etcdserver: something'), ns)).toMatchObject({ name: 'EtcdRequestError', code: 'EtcdError' });
    expect(explainEtcdError(new EtcdPermissionDeniedError('etcdserver: permission denied'), ns, 'jobs/a')).toMatchObject({
      name: 'PermissionDeniedError',
      key: 'jobs/a',
      message:
        'etcd at 127.0.0.1:1, 127.0.0.1:2 denied access to "jobs/a": etcdserver: permission denied (the user lacks a permission on it; see docs/security.md)',
    });
    expect(explainEtcdError(new Error('7 PERMISSION_DENIED: etcdserver: permission denied'), ns)).toMatchObject({
      name: 'PermissionDeniedError',
      key: undefined,
      message: expect.stringContaining('denied the request: ') as unknown,
    });
  });

  test('refused credentials become AuthenticationError naming the user (never the password)', () => {
    const withUser = client(['127.0.0.1:1'], 'app');
    const error = explainEtcdError(new EtcdAuthenticationFailedError('etcdserver: authentication failed, invalid user ID or password'), withUser) as Error;
    expect(error).toMatchObject({ name: 'AuthenticationError', code: 'EtcdAuthenticationFailedError' });
    expect(error.message).toBe('etcd at 127.0.0.1:1 refused to authenticate user "app": etcdserver: authentication failed, invalid user ID or password');
    expect(error.message).not.toContain('secret');
    expect((explainEtcdError(new GRPCUnauthenticatedError('16 UNAUTHENTICATED: x'), ns) as Error).message).toBe('etcd at 127.0.0.1:1, 127.0.0.1:2 refused to authenticate: 16 UNAUTHENTICATED: x');
    expect(explainEtcdError(new EtcdInvalidAuthTokenError('etcdserver: invalid auth token'), ns)).toMatchObject({ name: 'EtcdRequestError' });
  });

  test('a refused certificate becomes TlsError', () => {
    expect(explainEtcdError(new GRPCUnavailableError('14 UNAVAILABLE: alert bad certificate'), ns)).toMatchObject({
      name: 'TlsError',
      message: expect.stringMatching(/^TLS handshake with etcd at 127\.0\.0\.1:1, 127\.0\.0\.1:2 failed — a certificate was refused .*: 14 UNAVAILABLE: alert bad certificate$/) as unknown,
    });
  });

  test('the endpoint a failed call went to is named instead of all of them; none known says so', async () => {
    const c = client(['127.0.0.1:1']);
    const failed = await unary(c, { service: 'KV', method: 'range' }, { key: Buffer.from('k') }, { deadline: Date.now() + 2000 }).catch((e: unknown) => e);
    expect(explainEtcdError(failed, ns)).toMatchObject({ name: 'EtcdUnavailableError', endpoints: ['127.0.0.1:1'], message: expect.stringMatching(/^etcd at 127\.0\.0\.1:1 unavailable: /) as unknown });
    const none = explainTransportError(toTransportError(new GRPCUnavailableError('14 UNAVAILABLE: x'), undefined), { endpoints: [], user: undefined });
    expect((none as Error).message).toBe('etcd at (unknown endpoint) unavailable: 14 UNAVAILABLE: x');
  });
});

describe('defaultRetryPolicy', () => {
  test('retries transient failures 12 times, with backoff; nothing else', async () => {
    vi.useFakeTimers();
    try {
      const policy = defaultRetryPolicy();
      let calls = 0;
      const failing = policy.execute(() => {
        calls++;
        throw unavailable();
      });
      const settled = failing.catch((e: unknown) => e);
      expect(calls, 'the first attempt at once').toBe(1);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(await settled).toBeInstanceOf(TransportError);
      expect(calls).toBe(13);
      let refused = 0;
      await expect(
        policy.execute(() => {
          refused++;
          throw new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: x');
        }),
      ).rejects.toBeInstanceOf(GRPCInvalidArgumentError);
      expect(refused).toBe(1);
      let flaky = 0;
      const recovered = policy.execute(() => {
        if (++flaky < 3) throw toTransportError(new Error('14 UNAVAILABLE: etcdserver: leader changed'), undefined);
        return 'ok';
      });
      await vi.advanceTimersByTimeAsync(10_000);
      expect(await recovered).toBe('ok');
      expect(flaky).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  test('the whole streak of retries lasts about 6.5 s at most', async () => {
    vi.useFakeTimers();
    try {
      const started = Date.now();
      let last = started;
      const done = defaultRetryPolicy()
        .execute(() => {
          last = Date.now();
          throw unavailable();
        })
        .catch(() => undefined);
      await vi.advanceTimersByTimeAsync(60_000);
      await done;
      expect(last - started).toBeGreaterThan(1000);
      expect(last - started).toBeLessThanOrEqual(12_000);
    } finally {
      vi.useRealTimers();
    }
  });
});
