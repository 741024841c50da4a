import { describe, expect, test } from 'vitest';
import {
  AuthenticationError,
  EtcdRequestError,
  EtcdUnavailableError,
  ForeignKeyError,
  LeaseLostError,
  NotHeldError,
  NotLeaderError,
  PermissionDeniedError,
  PermitsMismatchError,
  SessionClosedError,
  TlsError,
} from '../errors.js';
import { exitCodeOf, exitCodes, TlsFileError, UsageError } from './exit-codes.js';

const etcd = { endpoints: ['127.0.0.1:2379'], code: 'UNAVAILABLE' };

describe('exit codes', () => {
  test('leasehold’s own outcomes are distinct, in sysexits(3) (64–79) or the shell’s 126/127', () => {
    const codes = Object.values(exitCodes);
    expect(new Set(codes).size).toBe(codes.length);
    expect(exitCodes).toEqual({ usage: 64, data: 65, unavailable: 69, internal: 70, timeout: 75, denied: 77, tls: 78, lost: 79, cannotExecute: 126, notFound: 127 });
  });

  test.each([
    ['a usage error', new UsageError('x'), 64],
    ['a TypeError (an option the library refused)', new TypeError('x'), 64],
    ['a RangeError', new RangeError('x'), 64],
    ['a lost lease', new LeaseLostError('x', { leaseId: '1' }), 79],
    ['our key deleted by someone else', new NotHeldError('x', { key: 'k' }), 79],
    ['our campaign key deleted', new NotLeaderError('x', { key: 'k' }), 79],
    ['a failed TLS handshake', new TlsError('x', etcd), 78],
    ['an unreadable TLS file', new TlsFileError('x'), 78],
    ['failed authentication', new AuthenticationError('x', etcd), 77],
    ['a denied permission', new PermissionDeniedError('x', { ...etcd, key: 'k' }), 77],
    ['an unreachable etcd', new EtcdUnavailableError('x', etcd), 69],
    ['a foreign key', new ForeignKeyError('x', { key: 'k' }), 65],
    ['permits that disagree', new PermitsMismatchError('x', { expected: 2, actual: 3, key: 'k' }), 65],
    ['a request etcd refused', new EtcdRequestError('x', etcd), 70],
    ['a closed session', new SessionClosedError('x', { leaseId: '1' }), 70],
    ['any other error', new Error('x'), 70],
    ['a thrown string', 'x', 70],
    ['undefined', undefined, 70],
  ])('%s → %d', (_what, error, code) => {
    expect(exitCodeOf(error)).toBe(code);
  });

  test('the CLI’s own errors are named', () => {
    expect(new UsageError('x').name).toBe('UsageError');
    expect(new TlsFileError('x').name).toBe('TlsFileError');
  });
});
