/**
 * The health rule of `LeaderElector.health()` (see its doc comment), as a function of what the
 * elector knows, apart from the run loop.
 */
import type { SessionSourceHealth } from './health.js';
import type { LeaderHealth } from './leader-elector-options.js';
import type { Leadership } from './leadership.js';

/** What the elector knows when a probe asks. */
export interface ElectorFacts {
  leadership: Leadership | undefined;
  leading: boolean;
  /** When the current term ended (lease lost, key deleted, `stop()`) while its callback still runs. */
  termEnded: { at: number; reason: unknown } | undefined;
  /** The SessionSource's health while the elector runs. */
  source: SessionSourceHealth | undefined;
  /** ms. */
  tolerance: number;
}

export function electorHealth(f: ElectorFacts): LeaderHealth {
  const now = performance.now();
  const { leadership, termEnded: ended, source, tolerance } = f;
  const base = { ready: source?.ready === true, leading: f.leading, ...(leadership ? { term: leadership.term } : {}) };
  if (leadership && ended && now - ended.at > tolerance) {
    const why = ended.reason instanceof Error ? ended.reason.message : String(ended.reason);
    return { ...base, healthy: false, reason: `term ${leadership.term} ended ${Math.round(now - ended.at)} ms ago (${why}) but its callback has not returned: it ignores its signal` };
  }
  const deadline = leadership?.session.deadline ?? now;
  if (leadership && !leadership.signal.aborted && now - deadline > tolerance) {
    return { ...base, healthy: false, reason: `leading term ${leadership.term} although the session's validity ran out ${Math.round(now - deadline)} ms ago` };
  }
  if (source && !source.live) return { ...base, healthy: false, reason: source.reason ?? 'its SessionSource is not live' };
  return { ...base, healthy: true };
}

