/**
 * Judging a MultiLock scenario with the one-lock checker. Every key of a MultiLock is a Mutex key, so
 * every name is judged as a lock of its own: the logs are projected onto the name (an acquisition
 * that does not include it is left out, one that does names its key there), and `check()` runs with
 * the name's prefix and counter. It applies every rule: one holder at a time (R3), acquisitions and
 * fenced effects backed by etcd's history (R1, R2), no lost update, no key left.
 *
 * Two things are judged across names, because no single name can judge them:
 *   - liveness: a MultiLock holds only when the last of its keys is first, so its wake-up is due
 *     within the bound of the *latest* delete that put one of its keys first (or of the end of the
 *     fault windows overlapping the wait). A deadlock, or a waiter that misses a delete, breaks it;
 *   - completion: every acquisition a client started either finished (ok or failed) or was cut short
 *     by the kill of its client, and each failure is explained by a fault: a `LeaseLostError` of a
 *     client that was paused before it.
 */
import { type CheckResult } from './checker.js';
import type { Scenario } from './harness.js';
import { describeLate, faultWindows, wakes, type Wake } from './liveness.js';
import { counterOf } from './multi-client.js';
import type { LogEvent } from './protocol.js';

const MS = 1_000_000n;

/** A judgement across names. */
export interface MultiViolation {
  rule: 'L' | 'complete';
  client: string;
  message: string;
}

export interface MultiCheck {
  /** The one-lock verdict of each name. */
  names: Map<string, CheckResult>;
  violations: MultiViolation[];
  /** Every MultiLock wake-up: the latest of its names'. */
  wakes: Wake[];
  /** Acquisitions reported, and how many of them held more than one name. */
  acquisitions: number;
  multiName: number;
}

/** `${client}@${token}` → the keys of that acquisition, from the `ok acquire` lines. */
function keysByToken(logs: readonly LogEvent[]): Map<string, readonly string[]> {
  const keys = new Map<string, readonly string[]>();
  for (const l of logs) {
    if (l.ev === 'ok' && l.op === 'acquire' && l.token !== undefined && Array.isArray(l['keys'])) keys.set(`${l.c}@${l.token}`, l['keys'] as string[]);
  }
  return keys;
}

/** The token a line is about: its own, or an effect's (whose id is `client:lease:token:n`). */
function tokenOf(line: LogEvent): string | undefined {
  if (line.token !== undefined) return line.token;
  return line.op === 'effect' && typeof line.id === 'string' ? line.id.split(':')[2] : undefined;
}

/**
 * The logs as seen by the lock `name` alone: lines about a MultiLock acquisition without `name` are
 * dropped; those about one with `name` carry the key of `name`.
 */
export function projectLogs(logs: readonly LogEvent[], name: string): LogEvent[] {
  const held = keysByToken(logs);
  const prefix = `${name}/`;
  const projected: LogEvent[] = [];
  for (const line of logs) {
    const token = tokenOf(line);
    const keys = token === undefined ? undefined : held.get(`${line.c}@${token}`);
    if (!keys) {
      projected.push(line);
      continue;
    }
    const key = keys.find((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/'));
    if (key !== undefined) projected.push({ ...line, key });
  }
  return projected;
}

/** Every started acquisition finished or was cut short by a kill; every failure explained by a pause. */
function completion(logs: readonly LogEvent[]): MultiViolation[] {
  const found: MultiViolation[] = [];
  const faults = logs.filter((l) => l.ev === 'fault');
  const byClient = new Map<string, LogEvent[]>();
  for (const l of logs) if (l.c !== 'parent') byClient.set(l.c, [...(byClient.get(l.c) ?? []), l]);
  for (const [client, lines] of byClient) {
    const killedAt = faults.find((f) => f.op === 'kill' && f['target'] === client)?.t;
    lines.forEach((line, i) => {
      if (line.op !== 'acquire' || line.ev !== 'invoke') return;
      const end = lines.slice(i + 1).find((l) => l.op === 'acquire');
      if (!end || end.ev === 'invoke') {
        if (killedAt === undefined || BigInt(killedAt) < BigInt(line.t)) found.push({ rule: 'complete', client, message: `${client}'s acquisition started at ${line.t} never finished, and no kill cut it short` });
      } else if (end.ev === 'fail') {
        const paused = faults.some((f) => f.op === 'pause' && f['target'] === client && BigInt(f.t) < BigInt(end.t));
        if (!paused || !/LeaseLostError/.test(end.err ?? '')) found.push({ rule: 'complete', client, message: `${client}'s acquisition failed with no fault to explain it: ${end.err}` });
      }
    });
  }
  return found;
}

/**
 * Stops the scenario and judges every name of `names` with `check()`, then liveness and completion
 * across names; see the file comment.
 */
export async function checkMulti(s: Scenario, names: readonly string[], boundNs = 2000n * MS): Promise<MultiCheck> {
  await s.stop();
  const results = new Map<string, CheckResult>();
  const latest = new Map<string, Wake>();
  const logEnd = s.logs.reduce((m, l) => (BigInt(l.t) > m ? BigInt(l.t) : m), 0n) + 1n;
  const windows = faultWindows(s.find((l) => l.ev === 'fault'), logEnd);
  for (const name of names) {
    const logs = projectLogs(s.logs, name);
    // The one-lock liveness rule cannot know that a MultiLock waits for its other names: judged below.
    const result = await s.finish({ logs, lockPrefix: `${name}/`, counterKey: counterOf(name), wakeBoundNs: 10n ** 15n });
    results.set(name, result);
    for (const w of wakes({ acquisitions: result.acquisitions, history: s.recorder.events, logs, windows, boundNs, recoveryNs: 0n }).wakes) {
      const id = `${w.client}@${w.token}`;
      if (!latest.has(id) || w.deletedAt > latest.get(id)!.deletedAt) latest.set(id, w);
    }
  }
  const all = [...latest.values()];
  const late = all.filter((w) => w.t > w.due).map((w): MultiViolation => ({ rule: 'L', client: w.client, message: describeLate(w, boundNs) }));
  const reported = s.logs.filter((l) => l.ev === 'ok' && l.op === 'acquire');
  return {
    names: results,
    violations: [...late, ...completion(s.find(() => true))],
    wakes: all,
    acquisitions: reported.length,
    multiName: reported.filter((l) => ((l['keys'] as string[] | undefined) ?? []).length > 1).length,
  };
}
