/**
 * Errors thrown by leasehold. Every error is a {@link LeaseholdError} with a `name` and, where one
 * exists, a `cause`; each condition has its own subclass and a type guard that checks a brand
 * property, so the guards work even across two installed copies of the package.
 */

const brand = Symbol.for('leasehold.error');

/** Options accepted by every leasehold error. */
export interface LeaseholdErrorOptions {
  /** The underlying error, if any. */
  cause?: unknown;
}

/** The base class of every error leasehold throws on purpose (bad input throws `TypeError`/`RangeError`). */
export class LeaseholdError extends Error {
  /** Brand checked by the type guards; do not rely on it directly. */
  readonly [brand] = true;
  override name = 'LeaseholdError';

  constructor(message: string, options?: LeaseholdErrorOptions) {
    super(message, options);
  }
}

/**
 * The session's lease is gone (expired, revoked, or its validity deadline passed without a successful
 * keep-alive). Final: nothing held on that lease is held any more; create a new Session.
 */
export class LeaseLostError extends LeaseholdError {
  override name = 'LeaseLostError';
  /** The lease id, as a lower-case hex string. */
  readonly leaseId: string;

  constructor(leaseId: string, message?: string, options?: LeaseholdErrorOptions) {
    super(message ?? `lease ${leaseId} is lost`, options);
    this.leaseId = leaseId;
  }
}

/** An operation needed a lock (or permit) that is no longer held: released, or taken over. */
export class NotHeldError extends LeaseholdError {
  override name = 'NotHeldError';
  /** The key of the lock that is not held. */
  readonly key: string;

  constructor(key: string, message?: string, options?: LeaseholdErrorOptions) {
    super(message ?? `lock ${key} is not held`, options);
    this.key = key;
  }
}

/** An operation needed leadership that is gone: resigned, lost with the lease, or taken over. */
export class NotLeaderError extends LeaseholdError {
  override name = 'NotLeaderError';
  /** The campaign key whose leadership is gone. */
  readonly key: string;

  constructor(key: string, message?: string, options?: LeaseholdErrorOptions) {
    super(message ?? `${key} is not the leader`, options);
    this.key = key;
  }
}

/** There is no leader for an election right now. */
export class NoLeaderError extends LeaseholdError {
  override name = 'NoLeaderError';
  /** The election name. */
  readonly election: string;

  constructor(election: string, options?: LeaseholdErrorOptions) {
    super(`election ${election} has no leader`, options);
    this.election = election;
  }
}

/** Participants of one semaphore disagree about its number of permits. */
export class PermitsMismatchError extends LeaseholdError {
  override name = 'PermitsMismatchError';
  /** The permits this participant was configured with. */
  readonly expected: number;
  /** The permits another participant recorded. */
  readonly actual: number;

  constructor(name: string, expected: number, actual: number, options?: LeaseholdErrorOptions) {
    super(
      `semaphore ${name}: this participant has permits ${expected} but another recorded permits ${actual}`,
      options,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** The session was closed by its owner; nothing more can be acquired with it. */
export class SessionClosedError extends LeaseholdError {
  override name = 'SessionClosedError';
  constructor(leaseId: string, options?: LeaseholdErrorOptions) {
    super(`session with lease ${leaseId} is closed`, options);
  }
}

function hasBrand(value: unknown): value is LeaseholdError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}

function isNamed(value: unknown, name: string): boolean {
  return hasBrand(value) && value.name === name;
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
