/**
 * The `leasehold` command's exit codes (docs/cli.md lists them). A command run under a lock passes
 * its own code through (128 + N when a signal N killed it); leasehold's own outcomes use the
 * sysexits(3) range (64–78, and 79 just past it for a loss), so a script can tell "the job failed"
 * from "the job never ran".
 */
import {
  isAuthenticationError,
  isEtcdUnavailableError,
  isForeignKeyError,
  isLeaseLostError,
  isNotHeldError,
  isNotLeaderError,
  isPermissionDeniedError,
  isPermitsMismatchError,
  isTlsError,
} from '../errors.js';

export const exitCodes = {
  /** Bad arguments or options (the message names the one). */
  usage: 64,
  /** Keys under the name that are not what they should be (a lease-less contender, a semaphore with other permits). */
  data: 65,
  /** etcd could not be reached (every endpoint refused or timed out). */
  unavailable: 69,
  /** An unexpected error: a bug in leasehold, please report it. */
  internal: 70,
  /** `--timeout` passed before the lock, permit or leadership was ours. */
  timeout: 75,
  /** etcd refused: authentication failed or the user lacks a permission on the keys. */
  denied: 77,
  /** TLS could not be set up: unreadable certificate files or a failed handshake. */
  tls: 78,
  /**
   * The holding was lost: the lease ended, or someone deleted our key (while waiting, before the
   * command could start, or while it ran — the command was then stopped).
   */
  lost: 79,
  /** The command exists but could not be executed (permissions, not a program). */
  cannotExecute: 126,
  /** The command was not found on PATH. */
  notFound: 127,
} as const;

/** The exit code for an error that ended a command, by what kind of error it is. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return exitCodes.usage;
  if (isLeaseLostError(error) || isNotHeldError(error) || isNotLeaderError(error)) return exitCodes.lost;
  if (isTlsError(error) || error instanceof TlsFileError) return exitCodes.tls;
  if (isAuthenticationError(error) || isPermissionDeniedError(error)) return exitCodes.denied;
  if (isEtcdUnavailableError(error)) return exitCodes.unavailable;
  if (isForeignKeyError(error) || isPermitsMismatchError(error)) return exitCodes.data;
  if (error instanceof TypeError || error instanceof RangeError) return exitCodes.usage;
  return exitCodes.internal;
}

/** A bad argument or option, found by the CLI itself. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A file a TLS flag names could not be read. */
export class TlsFileError extends Error {
  override name = 'TlsFileError';
}
