/**
 * The run commands' lease timings. The promise: when the holding is lost because the lease could not
 * be kept alive, the command's process group is gone — SIGTERM, then SIGKILL after `--kill-grace` —
 * before etcd could give the name to anyone else. So leasehold gives the lease up `--kill-grace` (plus
 * the usual tenth of the TTL for clock drift and a late timer) before the TTL counted from the last
 * keep-alive that succeeded, and sends its keep-alives three times within what is left.
 */
import { showDuration } from './args.js';
import { UsageError } from './exit-codes.js';

/** The longest default `--kill-grace`, in ms. */
export const maxDefaultKillGrace = 10_000;

/** The default `--kill-grace` for a TTL of `ttl` seconds: a third of it, at most 10 s, in ms. */
export function defaultKillGrace(ttl: number): number {
  return Math.min(maxDefaultKillGrace, Math.floor((ttl * 1000) / 3));
}

/** The Session options and the kill-grace that keep the promise for `--ttl` and `--kill-grace`. */
export interface RunTimings {
  /** Between SIGTERM and SIGKILL of the process group, in ms. */
  killGrace: number;
  /** The Session's `safetyMargin`: how much before etcd the lease is given up, in ms. */
  safetyMargin: number;
  /** The Session's `keepAliveInterval`, in ms. */
  keepAliveInterval: number;
}

/**
 * The timings for a lease of `ttl` seconds and a `killGrace` in ms (`undefined`: the default).
 * @throws UsageError when `killGrace` is more than half the TTL: the validity left after it would be
 * too short to keep the lease alive through an ordinary slow answer.
 */
export function runTimings(ttl: number, killGrace: number | undefined): RunTimings {
  const ttlMs = ttl * 1000;
  const grace = killGrace ?? defaultKillGrace(ttl);
  if (grace > ttlMs / 2) {
    throw new UsageError(
      `--kill-grace ${showDuration(grace)} does not fit in --ttl ${ttl}: the command must be gone before its lease can expire, so --kill-grace may be at most half the TTL (${showDuration(ttlMs / 2)}); raise --ttl or shorten --kill-grace`,
    );
  }
  const safetyMargin = ttl * 100 + grace;
  return { killGrace: grace, safetyMargin, keepAliveInterval: Math.floor((ttlMs - safetyMargin) / 3) };
}
