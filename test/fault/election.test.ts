// Fault scenario 13: an Election with 5 candidates and 3 observers, its leader killed again and again.
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { describe as describeCheck } from './checker.js';
import { at, type ClientProc, isOk, type Scenario, scenarioPerTest, secs, startAll } from './harness.js';
import type { ClientConfig, LogEvent } from './protocol.js';

const TTL = 2;
/** startEtcd's default raft election timeout. */
const ELECTION_TIMEOUT_S = 0.25;

/** Whether `candidate`'s campaign key (its last session's) is the oldest of the election: it leads. */
async function leads(s: Scenario, candidate: ClientProc): Promise<boolean> {
  const lease = candidate.lines.filter(isOk('session')).at(-1)?.lease;
  const [first] = await s.admin.getAll().prefix(`${s.lock}/`).sort('Create', 'Ascend').limit(1).keys();
  return lease !== undefined && first === `${s.lock}/${lease}`;
}

describe('Election under faults', { timeout: 120_000 }, () => {
  const start = scenarioPerTest();

  test('13. G1, G3, L1: election, 5 candidates and 3 observers, the leader killed repeatedly: terms increase, observers never go back', async () => {
    const s = await start('13-election', { ttl: TTL });
    // A candidate leads for ~1 s (5 guarded writes, 200 ms apart), resigns, and campaigns again.
    const candidate: Partial<ClientConfig> = { kind: 'election', mode: 'loop', holdMs: 200, effects: 5, renew: true };
    let next = 0;
    const spawn = (): ClientProc => s.spawn(`k${next++}`, { ...candidate, waitStart: true });
    const candidates = Array.from({ length: 5 }, spawn);
    const observers = Array.from({ length: 3 }, (_, i) => s.spawn(`o${i}`, { kind: 'election', mode: 'observe' }));
    await Promise.all(observers.map(async (o) => o.waitFor((l) => l.op === 'session' && l.ev === 'ok')));
    await startAll(candidates);
    const kills: LogEvent[] = [];
    const recovery: number[] = [];
    let after = 0n;
    while (kills.length < 4) {
      // Kill whoever leads now, in the middle of its term (after its first guarded write).
      const write = await s.waitFor(
        (l) => isOk('effect')(l) && candidates.some((c) => c.id === l.c && c.running),
        15_000,
        after,
        'a leader at work',
      );
      after = at(write);
      const victim = candidates.find((c) => c.id === write.c)!;
      // On a loaded machine the write may be old news: freeze the writer, and kill it only if etcd
      // says it still leads (frozen, it cannot resign meanwhile); else let it go and look again.
      victim.pause();
      if (!(await leads(s, victim))) {
        victim.resume();
        continue;
      }
      victim.kill();
      const kill = s.find((l) => l.op === 'kill').at(-1)!;
      kills.push(kill);
      after = at(kill);
      candidates.splice(candidates.indexOf(victim), 1);
      const fresh = spawn();
      candidates.push(fresh);
      const nextLeader = await s.waitFor((l) => isOk('acquire')(l) && l.c !== victim.id, (TTL + 10) * 1000, at(kill), 'the next leader');
      recovery.push(secs(kill, nextLeader));
      await startAll([fresh]);
    }
    await delay(1500);
    const result = await s.finish();
    console.log(`[fault 13] new leader ${recovery.map((r) => r.toFixed(2)).join(', ')} s after each kill; ${describeCheck(result)}`);
    const dir = s.save(result);
    expect(result.violations, `${describeCheck(result)}\nlogs: ${dir}`).toEqual([]);
    expect(result.maxConcurrent).toBe(1);
    expect(result.counter).toBe(result.applied);
    expect(result.acquisitions.filter((a) => a.endReason === 'kill')).toHaveLength(kills.length);
    for (const r of recovery) expect(r).toBeLessThanOrEqual(TTL + ELECTION_TIMEOUT_S + 2);

    // Observers: terms never go back, and every leader they report really led (its key ranked first).
    const leaders = new Map(result.versions.filter((v) => v.heldFrom !== undefined).map((v) => [`${v.key}@${v.createRevision}`, v]));
    for (const o of observers) {
      const seen = o.lines.filter((l) => l.op === 'observe');
      expect(seen.length, `${o.id} observed leaders`).toBeGreaterThan(kills.length);
      let last = 0n;
      for (const l of seen) {
        const term = BigInt(l.token!);
        expect(term, `${o.id} went back from term ${last} to ${term}`).toBeGreaterThanOrEqual(last);
        last = term;
        expect(leaders.has(`${l.key}@${term}`), `${o.id} reported ${l.key}@${term}, which never led`).toBe(true);
      }
    }
  });
});
