/**
 * Health for probes, shared by SessionSource and LeaderElector: the source's liveness rule, the JSON
 * answer of a probe handler, and events whose listeners must not break the loop that emits them.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** `live` while a SessionSource has a live session, `granting` while it has none, `closed` after `close()`. */
export type SessionSourceState = 'live' | 'granting' | 'closed';

/** What `SessionSource.health()` reports. */
export interface SessionSourceHealth {
  /** False when a restart may cure it: no session for longer than `livenessGrace` while etcd's latest answer to a grant refused this process's credentials, certificate or permissions. */
  live: boolean;
  /** True while the source has a live session. */
  ready: boolean;
  /** The source's state. */
  state: SessionSourceState;
  /** The live session's lease, in hex. */
  lease?: string;
  /** How long the source has been without a live session, in ms (0 while it has one). */
  withoutSessionMs: number;
  /** Why it is not live, or why it has no session (the last grant's error). */
  reason?: string;
}

function message(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The liveness rule of `SessionSource.health` from what the source knows. */
export function sourceHealth(s: {
  state: SessionSourceState;
  lease?: string;
  withoutSessionMs: number;
  refused: boolean;
  grace: number;
  lastError: unknown;
}): SessionSourceHealth {
  const base = { state: s.state, withoutSessionMs: s.withoutSessionMs, ready: s.state === 'live', ...(s.lease && { lease: s.lease }) };
  if (s.state === 'granting' && s.refused && s.withoutSessionMs > s.grace) {
    const reason = `no session for ${Math.round(s.withoutSessionMs)} ms although etcd answers: it refused the grant (${message(s.lastError)})`;
    return { ...base, live: false, reason };
  }
  return { ...base, live: true, ...(s.state === 'granting' && s.lastError !== undefined && { reason: `granting a lease: ${message(s.lastError)}` }) };
}

/** Answers a probe with `status` and `body` as JSON (bigints as decimal strings), never cached. */
function respond(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(text);
}

/** A `node:http` probe handler: 200 while `ok(health())`, else 503, with the health as JSON. */
export function probeHandler<H extends object>(health: () => H, ok: (h: H) => boolean): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    const h = health();
    respond(res, ok(h) ? 200 : 503, h);
  };
}

/** Emits `event`; a listener that throws is printed as a warning instead of breaking the emitter's loop. */
export function emitSafely(emitter: EventEmitter, event: string, ...args: unknown[]): void {
  try {
    emitter.emit(event, ...args);
  } catch (error) {
    process.emitWarning(error instanceof Error ? error : new Error(String(error)), `${emitter.constructor.name}ListenerError`);
  }
}
