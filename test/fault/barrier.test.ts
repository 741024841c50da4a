// Fault scenarios 16 and 16b: DoubleBarrier rounds of participant processes, judged from etcd's history
// by test/fault/rounds.ts (every round has exactly `count` members, all present when it opened; it is
// never changed; nobody is in a round that does not name them, nor out before all of it has left) and
// from the participants' logs on the shared monotonic clock (nobody in before all of a round had
// arrived, nobody out before all of it had left or died).
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { startProxy } from '../../src/testing/index.js';
import { at, type ClientProc, hrnow, isOk, type Scenario, scenarioPerTest, secs } from './harness.js';
import type { ClientConfig, LogEvent } from './protocol.js';
import { checkRounds, reportsFromLogs, type RoundsResult } from './rounds.js';

const TTL = 2;
const COUNT = 3;

/** The round checker over the scenario's history and logs. */
function judge(s: Scenario): RoundsResult {
  const { reports, excused } = reportsFromLogs(s.logs);
  return checkRounds({ history: s.recorder.events, name: s.lock, count: COUNT, reports, excused });
}

describe('DoubleBarrier under faults', { timeout: 180_000 }, () => {
  const start = scenarioPerTest();

  test('16. rounds of 3 among 4 participant processes, one killed at every step (waiting, inside, leaving, between rounds) and one enter given up: every round has exactly 3 members, nobody in early or out early, survivors out within TTL + 2 s', async () => {
    const s = await start('16-double-barrier', { ttl: TTL });
    const config: Partial<ClientConfig> = { mode: 'barrier', count: COUNT, thinkMs: 30, requestTimeout: 1000, etcd3Faults: 'none' };
    let next = 0;
    // Each participant spends another time inside, so that leaving early would be seen.
    const spawn = (): ClientProc => s.spawn(`p${next}`, { ...config, holdMs: 100 + 200 * (next++ % COUNT) });
    const alive = Array.from({ length: COUNT + 1 }, spawn);
    await s.waitFor((l) => isOk('enter')(l) && l.seq === 1, 30_000, 0n, 'a second round');
    // Where a participant is, from its own last line: the fault lands right after it got there.
    const steps: [string, (l: LogEvent) => boolean][] = [
      ['waiting', (l) => l.op === 'enter' && l.ev === 'invoke'],
      ['inside', isOk('enter')],
      ['leaving', (l) => l.op === 'leave' && l.ev === 'invoke'],
      ['between', isOk('leave')],
      ['gave up', (l) => l.op === 'enter' && l.ev === 'invoke'],
    ];
    const outAfterKillInside: number[] = [];
    for (const [step, match] of steps) {
      // One fault at a time: the next comes once the replacement is up and a round has gone by.
      let reached = await s.waitFor((l) => match(l) && alive.some((c) => c.id === l.c), 30_000, hrnow(), `a participant ${step}`);
      if (step === 'gave up') {
        // The abort lands on an enter in progress; if that one got in just before, try the next.
        for (;;) {
          const victim = s.clients.get(reached.c)!;
          const from = victim.lines.length;
          victim.send({ cmd: 'abort' });
          const ended = await victim.waitFor((l) => l.op === 'enter' && l.ev !== 'invoke', 30_000, from, 'the enter ending');
          if (ended.ev === 'fail') break;
          reached = await s.waitFor((l) => match(l) && alive.some((c) => c.id === l.c), 30_000, hrnow(), 'a participant waiting');
        }
      } else {
        const victim = s.clients.get(reached.c)!;
        victim.kill();
        const kill = s.find((l) => l.op === 'kill').at(-1)!;
        alive.splice(alive.indexOf(victim), 1);
        if (step === 'inside') {
          // The others of that round (whose enter may be logged a moment after the victim's) get out
          // once the victim's key expires.
          const inRound = (l: LogEvent): boolean => isOk('enter')(l) && l['round'] === reached['round'];
          const found = await Promise.allSettled(alive.map(async (c) => c.waitFor(inRound, 2000, 0, 'the round of the kill')));
          const members = alive.filter((_c, i) => found[i]!.status === 'fulfilled');
          const outs = await Promise.all(members.map(async (c) => c.waitFor((l) => isOk('leave')(l) && at(l) > at(kill), (TTL + 10) * 1000, 0, 'leaving the round of the kill')));
          outAfterKillInside.push(Math.max(...outs.map((l) => secs(kill, l))));
        }
        const fresh = spawn();
        alive.push(fresh);
        await fresh.waitFor(isOk('session'), 30_000, 0, 'its session');
      }
      await s.waitFor(isOk('leave'), 30_000, hrnow(), 'a round after the fault');
    }
    // A few more rounds, then stop: whoever is inside leaves, whoever waits gives up.
    await s.waitFor(isOk('leave'), 30_000, hrnow(), 'a round after the last fault');
    for (const c of alive) c.send({ cmd: 'stop' });
    for (const c of alive) c.send({ cmd: 'abort' });
    const result = await s.finish({ checkLeaks: true });
    const verdict = judge(s);
    const timing = roundTimes(s.find(() => true));
    console.log(`[fault 16] ${verdict.rounds.length} rounds; survivors out ${outAfterKillInside.map((x) => x.toFixed(2)).join(', ')} s after each kill inside; violations: ${[...verdict.violations, ...timing, ...result.violations.map((v) => v.message)].join('; ') || 'none'}`);
    expect(verdict.violations).toEqual([]);
    expect(timing).toEqual([]);
    expect(verdict.rounds.length).toBeGreaterThanOrEqual(6);
    expect(outAfterKillInside).toHaveLength(1);
    for (const out of outAfterKillInside) expect(out).toBeLessThanOrEqual(TTL + 2);
    expect(result.leaked).toEqual([]);
    expect(result.violations.filter((v) => ['history', 'leak', 'exit', 'deadline', 'loss'].includes(v.rule))).toEqual([]);
    // Nothing failed but what the scenario gave up (killed clients log nothing more) — or, on a machine
    // so loaded that a 2 s lease ran out, what came after that session's `lost` (judged by the rules above).
    const lost = new Map(s.find((l) => l.ev === 'lost').map((l) => [l.c, at(l)]));
    const failed = s.find((l) => l.ev === 'fail' && (l.op === 'enter' || l.op === 'leave') && l['gaveUp'] !== true);
    expect(failed.filter((l) => !(at(l) >= (lost.get(l.c) ?? at(l) + 1n)))).toEqual([]);
  });

  test('16b. a round never opens one short: the last arrival’s answer is held while an earlier participant gives its enter up; nobody gets in until a third arrives, and that round has exactly 3', async () => {
    const s = await start('16b-double-barrier-short', { ttl: 10 });
    await using proxy = await startProxy(s.etcd.members[0]!.clientUrl);
    const config: Partial<ClientConfig> = { mode: 'barrier', count: COUNT, stepwise: true, requestTimeout: 8000, etcd3Faults: 'none' };
    const [a, b, c, d] = [
      s.spawn('a', config),
      s.spawn('b', config),
      s.spawn('c', { ...config, endpoints: [proxy.url] }),
      s.spawn('d', config),
    ] as [ClientProc, ClientProc, ClientProc, ClientProc];
    await Promise.all([a, b, c, d].map(async (p) => p.waitFor(isOk('session'), 30_000, 0, 'its session')));
    const waiters = async (n: number): Promise<void> => {
      await expect.poll(async () => (await s.admin.getAll().prefix(`${s.lock}/waiters/`).keys()).length, { timeout: 10_000 }).toBe(n);
    };
    a.send({ cmd: 'go' });
    await waiters(1);
    b.send({ cmd: 'go' });
    await waiters(2);
    // c joins and reads a, b and itself; the answer waits in the proxy until a has given up.
    proxy.blackhole('toClient');
    c.send({ cmd: 'go' });
    await waiters(3);
    a.send({ cmd: 'abort' });
    await a.waitFor((l) => l.op === 'enter' && l.ev === 'fail', 10_000, 0, 'a giving up');
    await waiters(2);
    proxy.heal();
    await delay(1500); // c acts on its stale answer now, if it would
    const early = s.find(isOk('enter'));
    if (early.length === 0) {
      d.send({ cmd: 'go' });
      await Promise.all([b, c, d].map(async (p) => p.waitFor(isOk('enter'), 10_000, 0, 'entering with the third')));
      for (const p of [b, c, d]) p.send({ cmd: 'go' }); // leave
      await Promise.all([b, c, d].map(async (p) => p.waitFor(isOk('leave'), 10_000, 0, 'leaving')));
    }
    // Whatever happened, end it: inside leaves (one more go), waiting gives up.
    for (const p of [a, b, c, d]) p.send({ cmd: 'stop' });
    for (const p of [a, b, c, d]) p.send({ cmd: 'go' });
    for (const p of [a, b, c, d]) p.send({ cmd: 'abort' });
    const result = await s.finish({ checkLeaks: true });
    const verdict = judge(s);
    console.log(`[fault 16b] rounds: ${verdict.rounds.map((r) => `${r.id} (${r.members.length} members)`).join(', ')}; violations: ${verdict.violations.join('; ') || 'none'}`);
    expect(verdict.violations).toEqual([]);
    expect(early, 'nobody got in with two of three').toEqual([]);
    expect(verdict.rounds).toHaveLength(1);
    expect(result.leaked).toEqual([]);
    expect(result.violations.filter((v) => v.rule === 'history' || v.rule === 'leak' || v.rule === 'exit')).toEqual([]);
  });
});

/**
 * From the logs alone, by the round each participant read after `enter`: nobody got in before every
 * member of its round had arrived (its last `enter` invoke), nobody out before every member had left
 * (invoked `leave`) or was killed.
 */
function roundTimes(lines: readonly LogEvent[]): string[] {
  const rounds = new Map<string, { entered: LogEvent[]; leaves: LogEvent[]; arrived: Map<string, bigint>; gone: Map<string, bigint> }>();
  const get = (r: string) => {
    let round = rounds.get(r);
    if (!round) rounds.set(r, (round = { entered: [], leaves: [], arrived: new Map(), gone: new Map() }));
    return round;
  };
  const current = new Map<string, string>(); // client → the round it is in
  const lastInvoke = new Map<string, bigint>();
  for (const l of lines) {
    if (l.op === 'enter' && l.ev === 'invoke') lastInvoke.set(l.c, at(l));
    if (isOk('enter')(l) && typeof l['round'] === 'string') {
      const round = get(l['round']);
      round.entered.push(l);
      round.arrived.set(l.c, lastInvoke.get(l.c) ?? at(l));
      current.set(l.c, l['round']);
    }
    const r = current.get(l.c);
    if (l.op === 'leave' && l.ev === 'invoke' && r !== undefined) get(r).gone.set(l.c, at(l));
    if (isOk('leave')(l) && r !== undefined) {
      get(r).leaves.push(l);
      current.delete(l.c);
    }
    if (l.c === 'parent' && l.op === 'kill') {
      const target = String(l['target']);
      const tr = current.get(target);
      if (tr !== undefined) get(tr).gone.set(target, at(l));
    }
  }
  const problems: string[] = [];
  for (const [r, { entered, leaves, arrived, gone }] of rounds) {
    const lastArrival = Math.max(...[...arrived.values()].map(Number));
    for (const e of entered) if (Number(at(e)) < lastArrival) problems.push(`round ${r}: ${e.c} got in before every participant had arrived`);
    for (const l of leaves) {
      for (const e of entered) {
        const left = gone.get(e.c);
        if (left === undefined || at(l) < left) problems.push(`round ${r}: ${l.c} got out before ${e.c} had left`);
      }
    }
  }
  return problems;
}
