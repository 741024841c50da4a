// Fault scenario 22: a soak of clients on a SessionSource while etcd stalls again and again — every
// member frozen, the raft leader frozen, or a member killed and restarted, each for 0.5–3 × TTL. The
// checker holds as for every scenario; besides, after each stall acquisitions resume within TTL + 2 s,
// and no acquisition ever starts on a lease that was already lost (the source hands out live ones only).
// CI runs 20 s of stalls; `FAULT_LONG=1` runs the 60 s soak; `FAULT_SEED=<n>` replays a run.
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import type { EtcdMember } from '../../src/testing/index.js';
import { describe as describeCheck } from './checker.js';
import { at, faultRounds, faultSeed, isOk, nsToMs, prng, scenarioPerTest, startAll, type Scenario } from './harness.js';
import type { LogEvent } from './protocol.js';

const TTL = 2;
/** How long after a stall's end the next acquisition must come. */
const RESUME_S = TTL + 2;

type StallKind = 'every member frozen' | 'leader frozen' | 'member killed';

/** One stall of `ms`: its fault lines opened and closed on the scenario's log; resolves with the closing line. */
async function stall(s: Scenario, kind: StallKind, ms: number, random: () => number): Promise<LogEvent> {
  const members = s.etcd.members;
  const around = async (targets: readonly EtcdMember[], open: string, close: string, begin: (m: EtcdMember) => Promise<void>, end: (m: EtcdMember) => Promise<void>): Promise<LogEvent> => {
    await Promise.all(targets.map(begin));
    for (const m of targets) s.fault(open, { member: m.name, stall: kind, ms: Math.round(ms) });
    await delay(ms);
    await Promise.all(targets.map(end));
    return targets.map((m) => s.fault(close, { member: m.name, stall: kind })).at(-1)!;
  };
  if (kind === 'every member frozen') return around(members, 'member-pause', 'member-resume', async (m) => m.pause(), async (m) => m.resume());
  if (kind === 'leader frozen') return around([await s.etcd.leader()], 'member-pause', 'member-resume', async (m) => m.pause(), async (m) => m.resume());
  const victim = members[Math.floor(random() * members.length)]!;
  return around([victim], 'member-kill', 'member-restart', async (m) => m.kill(), async (m) => m.restart());
}

describe('SessionSource under etcd stalls', { timeout: 240_000 }, () => {
  const start = scenarioPerTest();

  test('22. clients on a SessionSource through random etcd stalls (0.5–3 × TTL): the checker holds; acquisitions resume within TTL + 2 s of each; none starts on a lost lease', async () => {
    const s = await start('21-session-source', { ttl: TTL });
    const seed = faultSeed();
    const random = prng(seed);
    const soakMs = faultRounds(20_000, 60_000);
    const clients = Array.from({ length: 4 }, (_, i) =>
      s.spawn(`c${i}`, { mode: 'loop', source: true, holdMs: 20, waitStart: true, requestTimeout: 700, etcd3Faults: 'none' }),
    );
    await startAll(clients);
    await delay(1000);
    const stalls: { kind: StallKind; ms: number; end: LogEvent }[] = [];
    // Each kind once (the first full freeze 1.5–3 × TTL, so leases are surely lost), then at random
    // (a full freeze twice as likely as the others).
    const first: StallKind[] = ['every member frozen', 'leader frozen', 'member killed'];
    const kinds: StallKind[] = ['every member frozen', 'every member frozen', 'leader frozen', 'member killed'];
    const until = performance.now() + soakMs;
    while (performance.now() < until) {
      const kind = first[stalls.length] ?? kinds[Math.floor(random() * kinds.length)]!;
      const ms = (stalls.length === 0 ? 1.5 + random() * 1.5 : 0.5 + random() * 2.5) * TTL * 1000;
      stalls.push({ kind, ms, end: await stall(s, kind, ms, random) });
      await delay(RESUME_S * 1000 + 500); // the recovery is seen before the next stall
    }
    const result = await s.finish({ faultRecoveryNs: BigInt(RESUME_S * 1e9) });

    const oks = s.find(isOk('acquire'));
    const resumed = stalls.map((st) => {
      const next = oks.find((l) => at(l) > at(st.end));
      return { ...st, after: next ? nsToMs(at(next) - at(st.end)) / 1000 : Number.POSITIVE_INFINITY };
    });
    // An acquisition that failed with LeaseLostError must have started before that lease was lost:
    // one that started on a lease already lost was handed a dead session.
    const lostAt = new Map(s.find((l) => l.ev === 'lost').map((l) => [`${l.c}/${l.lease}`, at(l)]));
    const deadStarts = clients.flatMap((c) =>
      c.lines.flatMap((l, i) => {
        if (l.op !== 'acquire' || l.ev !== 'fail' || !/^LeaseLostError: lease ([0-9a-f]+) /.test(l.err ?? '')) return [];
        const lease = /^LeaseLostError: lease ([0-9a-f]+) /.exec(l.err!)![1]!;
        const invoke = c.lines.slice(0, i).findLast((m) => m.op === 'acquire' && m.ev === 'invoke');
        const lost = lostAt.get(`${c.id}/${lease}`);
        return invoke && lost !== undefined && at(invoke) > lost ? [`${c.id} started an acquisition ${nsToMs(at(invoke) - lost).toFixed(0)} ms after lease ${lease} was lost`] : [];
      }),
    );
    const sessions = clients.map((c) => c.lines.filter(isOk('session')).length);
    console.log(
      `[fault 21] seed ${seed}; ${stalls.length} stalls: ${resumed.map((r) => `${r.kind} ${(r.ms / 1000).toFixed(1)} s → next acquisition ${r.after.toFixed(2)} s`).join('; ')}; ` +
        `${oks.length} acquisitions; leases per client ${sessions.join(', ')}\n${describeCheck(result)}`,
    );
    const dir = s.save(result);
    const replay = `logs: ${dir} (replay with FAULT_SEED=${seed})`;
    // Safety as in every scenario. etcd 3.4.23 (issues 15247/12528) may revoke a lease early when its
    // frozen raft leader thaws: those overlaps are the server's (see scenario 7).
    expect(result.violations.filter((v) => !v.server), `${describeCheck(result)}\n${replay}`).toEqual([]);
    expect(result.counter).toBe(result.applied);
    expect(deadStarts, replay).toEqual([]);
    for (const r of resumed) expect(r.after, `after ${r.kind} for ${(r.ms / 1000).toFixed(1)} s; ${replay}`).toBeLessThanOrEqual(RESUME_S);
    // The stalls did cost leases, and the sources replaced them: more than one lease per client.
    for (const [i, n] of sessions.entries()) expect(n, `c${i}'s leases`).toBeGreaterThan(1);
    // And every client works again after the last stall.
    for (const c of clients) expect(c.lines.some((l) => isOk('acquire')(l) && at(l) > at(stalls.at(-1)!.end)), `${c.id} after the last stall`).toBe(true);
  });
});
