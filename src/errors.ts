/**
 * Errors thrown by leasehold. Every error is a {@link LeaseholdError} with a `name` and, where one
 * exists, a `cause`; each condition has its own subclass and a type guard that checks a brand
 * property, so the guards work even across two installed copies of the package.
 */

const brand = Symbol.for('leasehold.error');

/** Options accepted by every leasehold error; each subclass adds the fields it carries. */
export interface LeaseholdErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * The base class of every error leasehold throws on purpose (bad input throws `TypeError`/`RangeError`).
 * Every class has the same constructor shape: `(message, options)`, with the class's own fields in
 * `options` next to `cause`. Lease ids are fields in etcd's decimal form (`leaseId`, as
 * `Session.leaseId`) and in hex (`leaseHex`), and messages show the hex form, as keys and `etcdctl`
 * do.
 */
export class LeaseholdError extends Error {
  /** Brand checked by the type guards; do not rely on it directly. */
  readonly [brand] = true;
  /** The class name (`'LeaseholdError'` here; every subclass sets its own), which the type guards check. */
  override name = 'LeaseholdError';

  constructor(message: string, options?: LeaseholdErrorOptions) {
    super(message, options);
  }
}

/** Options of {@link LeaseLostError} and {@link SessionClosedError}. */
export interface LeaseErrorOptions extends LeaseholdErrorOptions {
  /** etcd's decimal lease id. */
  leaseId: string;
}

/**
 * The session's lease is gone (expired, revoked, or its validity deadline passed without a successful
 * keep-alive). Final: nothing held on that lease is held any more; create a new Session.
 */
export class LeaseLostError extends LeaseholdError {
  /** `'LeaseLostError'`: the class name, which {@link isLeaseLostError} checks. */
  override name = 'LeaseLostError';
  /** The lease id, etcd's decimal string (as `Session.leaseId`). */
  readonly leaseId: string;
  /** The lease id in lower-case hex (as `Session.leaseHex`), the form messages show. */
  readonly leaseHex: string;

  constructor(message: string, options: LeaseErrorOptions) {
    super(message, options);
    this.leaseId = options.leaseId;
    this.leaseHex = BigInt(options.leaseId).toString(16);
  }
}

/** Options of the errors about one key: {@link NotHeldError}, {@link NotLeaderError}, {@link ForeignKeyError}. */
export interface KeyErrorOptions extends LeaseholdErrorOptions {
  /** The key (relative to the namespace). */
  key: string;
}

/** An operation needed a lock (or permit) that is no longer held: released, or taken over. */
export class NotHeldError extends LeaseholdError {
  /** `'NotHeldError'`: the class name, which {@link isNotHeldError} checks. */
  override name = 'NotHeldError';
  /** The key of the lock that is not held. */
  readonly key: string;

  constructor(message: string, options: KeyErrorOptions) {
    super(message, options);
    this.key = options.key;
  }
}

/** An operation needed leadership that is gone: resigned, lost with the lease, or taken over. */
export class NotLeaderError extends LeaseholdError {
  /** `'NotLeaderError'`: the class name, which {@link isNotLeaderError} checks. */
  override name = 'NotLeaderError';
  /** The campaign key whose leadership is gone. */
  readonly key: string;

  constructor(message: string, options: KeyErrorOptions) {
    super(message, options);
    this.key = options.key;
  }
}

/** Options of {@link NoLeaderError}. */
export interface NoLeaderErrorOptions extends LeaseholdErrorOptions {
  /** The election name. */
  election: string;
}

/** There is no leader for an election right now. */
export class NoLeaderError extends LeaseholdError {
  /** `'NoLeaderError'`: the class name, which {@link isNoLeaderError} checks. */
  override name = 'NoLeaderError';
  /** The election name. */
  readonly election: string;

  constructor(message: string, options: NoLeaderErrorOptions) {
    super(message, options);
    this.election = options.election;
  }
}

/** Options of {@link PermitsMismatchError}. */
export interface PermitsMismatchErrorOptions extends LeaseholdErrorOptions {
  /** The permits this participant was configured with. */
  expected: number;
  /** The permits another participant recorded. */
  actual: number;
  /** The key that recorded `actual`. */
  key: string;
}

/** Participants of one semaphore disagree about its number of permits. */
export class PermitsMismatchError extends LeaseholdError {
  /** `'PermitsMismatchError'`: the class name, which {@link isPermitsMismatchError} checks. */
  override name = 'PermitsMismatchError';
  /** The permits this participant was configured with. */
  readonly expected: number;
  /** The permits another participant recorded. */
  readonly actual: number;
  /** The key that recorded `actual`. */
  readonly key: string;

  constructor(message: string, options: PermitsMismatchErrorOptions) {
    super(message, options);
    this.expected = options.expected;
    this.actual = options.actual;
    this.key = options.key;
  }
}

/** The session was closed by its owner; nothing more can be acquired with it. */
export class SessionClosedError extends LeaseholdError {
  /** `'SessionClosedError'`: the class name, which {@link isSessionClosedError} checks. */
  override name = 'SessionClosedError';
  /** The lease id, etcd's decimal string (as `Session.leaseId`). */
  readonly leaseId: string;
  /** The lease id in lower-case hex (as `Session.leaseHex`), the form messages show. */
  readonly leaseHex: string;

  constructor(message: string, options: LeaseErrorOptions) {
    super(message, options);
    this.leaseId = options.leaseId;
    this.leaseHex = BigInt(options.leaseId).toString(16);
  }
}

/** Options of {@link EtcdUnavailableError} and {@link EtcdRequestError}. */
export interface EtcdErrorOptions extends LeaseholdErrorOptions {
  /** The endpoint the last attempt went to, or every endpoint of the client when that is not known. */
  endpoints: readonly string[];
  /** The gRPC status name (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, …), or a stand-in (`CIRCUIT_OPEN`, `CLIENT_CLOSED`). */
  code: string;
}

/** What {@link EtcdUnavailableError} and {@link EtcdRequestError} share: where the call went, and its gRPC status. */
export abstract class EtcdCallError extends LeaseholdError {
  /** The endpoint the last attempt went to, or every endpoint of the client when that is not known. */
  readonly endpoints: readonly string[];
  /** The gRPC status name (`UNAVAILABLE`, `RESOURCE_EXHAUSTED`, …), or a stand-in (`CIRCUIT_OPEN`, `CLIENT_CLOSED`). */
  readonly code: string;

  constructor(message: string, options: EtcdErrorOptions) {
    super(message, options);
    this.endpoints = options.endpoints;
    this.code = options.code;
  }
}

/**
 * etcd could not be reached, or did not answer in time, for as long as the retry policy tries (or the
 * `etcd3` client's circuit breakers refused every endpoint). Transient: the same call may succeed
 * later. The message names the endpoint(s) and the gRPC status, e.g.
 * `etcd at 127.0.0.1:2379 unavailable: 14 UNAVAILABLE: No connection established`.
 */
export class EtcdUnavailableError extends EtcdCallError {
  /** `'EtcdUnavailableError'`: the class name, which {@link isEtcdUnavailableError} checks. */
  override name = 'EtcdUnavailableError';
}

/**
 * etcd refused a request for a reason that retrying does not fix (a request too large, an invalid
 * argument, a closed client, …). The `etcd3` error is the `cause`; the message names the endpoint and
 * the gRPC status.
 */
export class EtcdRequestError extends EtcdCallError {
  /** `'EtcdRequestError'`; its kinds set their own class name, and {@link isEtcdRequestError} accepts each. */
  override name = 'EtcdRequestError';
}

/** Options of {@link PermissionDeniedError}. */
export interface PermissionDeniedErrorOptions extends EtcdErrorOptions {
  /** The key (relative to the namespace) of the request that was denied, when there is one. */
  key: string | undefined;
}

/**
 * etcd's role-based access control refused the request: the user lacks a permission on the key
 * (read, write, or both; see docs/security.md for what each primitive needs). Never retried.
 */
export class PermissionDeniedError extends EtcdRequestError {
  /** `'PermissionDeniedError'`: the class name, which {@link isPermissionDeniedError} checks. */
  override name = 'PermissionDeniedError';
  /** The key of the request that was denied (relative to the namespace), when there is one. */
  readonly key: string | undefined;

  constructor(message: string, options: PermissionDeniedErrorOptions) {
    super(message, options);
    this.key = options.key;
  }
}

/** etcd refused the user name or password (or the auth token could not be renewed). Never retried. */
export class AuthenticationError extends EtcdRequestError {
  /** `'AuthenticationError'`: the class name, which {@link isAuthenticationError} checks. */
  override name = 'AuthenticationError';
}

/**
 * The TLS handshake with etcd failed: a certificate was refused (by the server: no client certificate,
 * or one its CA did not sign; or by us: the server's certificate does not verify against the CA we
 * trust). A configuration problem, told apart from an unreachable host, and never retried.
 */
export class TlsError extends EtcdRequestError {
  /** `'TlsError'`: the class name, which {@link isTlsError} checks. */
  override name = 'TlsError';
}

/**
 * A key under a primitive's prefix that no compatible participant wrote: a record that does not
 * parse or is out of range (a semaphore weight of -100), or a key without a lease (it would never
 * expire, so it would block the primitive for ever). leasehold never counts such a key as free
 * capacity or skips it: it refuses to go on, naming the key, so that someone deletes it.
 */
export class ForeignKeyError extends LeaseholdError {
  /** `'ForeignKeyError'`: the class name, which {@link isForeignKeyError} checks. */
  override name = 'ForeignKeyError';
  /** The offending key (relative to the namespace). */
  readonly key: string;

  constructor(message: string, options: KeyErrorOptions) {
    super(message, options);
    this.key = options.key;
  }
}

function hasBrand(value: unknown): value is LeaseholdError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

function isNamed(value: unknown, ...names: string[]): boolean {
  return hasBrand(value) && names.includes(value.name);
}

/** True for any error leasehold throws on purpose, from any installed copy of the package. */
export function isLeaseholdError(value: unknown): value is LeaseholdError {
  return hasBrand(value);
}
/** True for a {@link LeaseLostError} from any installed copy of the package. */
export function isLeaseLostError(value: unknown): value is LeaseLostError {
  return isNamed(value, 'LeaseLostError');
}
/** True for a {@link NotHeldError} from any installed copy of the package. */
export function isNotHeldError(value: unknown): value is NotHeldError {
  return isNamed(value, 'NotHeldError');
}
/** True for a {@link NotLeaderError} from any installed copy of the package. */
export function isNotLeaderError(value: unknown): value is NotLeaderError {
  return isNamed(value, 'NotLeaderError');
}
/** True for a {@link NoLeaderError} from any installed copy of the package. */
export function isNoLeaderError(value: unknown): value is NoLeaderError {
  return isNamed(value, 'NoLeaderError');
}
/** True for a {@link PermitsMismatchError} from any installed copy of the package. */
export function isPermitsMismatchError(value: unknown): value is PermitsMismatchError {
  return isNamed(value, 'PermitsMismatchError');
}
/** True for a {@link SessionClosedError} from any installed copy of the package. */
export function isSessionClosedError(value: unknown): value is SessionClosedError {
  return isNamed(value, 'SessionClosedError');
}
/** True for an {@link EtcdUnavailableError} from any installed copy of the package. */
export function isEtcdUnavailableError(value: unknown): value is EtcdUnavailableError {
  return isNamed(value, 'EtcdUnavailableError');
}
/**
 * True for an {@link EtcdRequestError} — including its kinds {@link PermissionDeniedError},
 * {@link AuthenticationError} and {@link TlsError} — from any installed copy of the package.
 */
export function isEtcdRequestError(value: unknown): value is EtcdRequestError {
  return isNamed(value, 'EtcdRequestError', 'PermissionDeniedError', 'AuthenticationError', 'TlsError');
}
/** True for a {@link PermissionDeniedError} from any installed copy of the package. */
export function isPermissionDeniedError(value: unknown): value is PermissionDeniedError {
  return isNamed(value, 'PermissionDeniedError');
}
/** True for an {@link AuthenticationError} from any installed copy of the package. */
export function isAuthenticationError(value: unknown): value is AuthenticationError {
  return isNamed(value, 'AuthenticationError');
}
/** True for a {@link TlsError} from any installed copy of the package. */
export function isTlsError(value: unknown): value is TlsError {
  return isNamed(value, 'TlsError');
}
/** True for a {@link ForeignKeyError} from any installed copy of the package. */
export function isForeignKeyError(value: unknown): value is ForeignKeyError {
  return isNamed(value, 'ForeignKeyError');
}
