// Fault scenario 16: a DoubleBarrier of 3 participant processes doing rounds, one of them SIGKILLed while
// inside; a replacement takes its place. From the participants' logs on the shared monotonic clock and
// the round each saw (`ready`'s create revision): nobody got in before all of a round had arrived,
// nobody got out before all of it had left or died, the survivors got out within TTL + 2 s of the kill,
// and no key is left.
import { describe, expect, test } from 'vitest';
import { at, type ClientProc, isOk, scenarioPerTest, secs } from './harness.js';
import type { ClientConfig, LogEvent } from './protocol.js';

const TTL = 2;
const COUNT = 3;

describe('DoubleBarrier under faults', { timeout: 120_000 }, () => {
  const start = scenarioPerTest();

  test('16. a participant killed inside a DoubleBarrier: no early enter or leave in any round, the others get out within TTL + 2 s, no key left', async () => {
    const s = await start('16-double-barrier', { ttl: TTL });
    const config: Partial<ClientConfig> = { mode: 'barrier', count: COUNT, thinkMs: 30, requestTimeout: 1000, etcd3Faults: 'none' };
    let next = 0;
    // Each participant spends another time inside, so that leaving early would be seen.
    const spawn = (): ClientProc => s.spawn(`p${next}`, { ...config, holdMs: 100 + 250 * (next++ % COUNT) });
    const alive = Array.from({ length: COUNT }, spawn);
    // A few rounds, then kill a participant right after it got in.
    await s.waitFor((l) => isOk('enter')(l) && l.seq === 2, 30_000, 0n, 'a third round');
    const inside = await s.waitFor((l) => isOk('enter')(l) && l.seq === 3, 30_000, 0n, 'a participant inside its fourth round');
    const victim = s.clients.get(inside.c)!;
    victim.kill();
    const kill = s.find((l) => l.op === 'kill').at(-1)!;
    alive.splice(alive.indexOf(victim), 1);
    // The survivors of that round get out once the victim's key expires.
    const survivorsOut = await Promise.all(
      alive.map(async (c) => c.waitFor((l) => isOk('leave')(l) && l.seq === 3, (TTL + 10) * 1000, 0, 'the survivors leaving the round of the kill')),
    );
    const outAfter = Math.max(...survivorsOut.map((l) => secs(kill, l)));
    alive.push(spawn()); // the replacement: rounds go on with three
    const resumed = await s.waitFor((l) => isOk('enter')(l) && at(l) > at(kill) && l.c === alive.at(-1)!.id, 30_000, at(kill), 'a round with the replacement');
    // Stop while everyone is inside one round, so that all of it leaves and exits together.
    const round = resumed['round'];
    await Promise.all(alive.map(async (c) => c.waitFor((l) => isOk('enter')(l) && l['round'] === round, 10_000, 0, 'the same round')));
    for (const c of alive) c.send({ cmd: 'stop' });
    const result = await s.finish({ checkLeaks: true });
    const byRound = rounds(s.find(() => true));
    console.log(`[fault 16] ${byRound.size} rounds; survivors out ${outAfter.toFixed(2)} s after the kill; violations: ${result.violations.map((v) => v.message).join('; ') || 'none'}`);
    const problems: string[] = [];
    for (const [r, { entered, leaves, enterInvokes, leaveInvokes, kills }] of byRound) {
      if (entered.length > COUNT) problems.push(`round ${r}: ${entered.length} participants`);
      const clients = entered.map((l) => l.c);
      const lastArrival = Math.max(...clients.map((c) => Number(enterInvokes.get(c) ?? 0n)));
      for (const e of entered) if (Number(at(e)) < lastArrival) problems.push(`round ${r}: ${e.c} got in before every participant had arrived`);
      for (const l of leaves) {
        for (const c of clients) {
          const gone = leaveInvokes.get(c) ?? kills.get(c);
          if (gone === undefined || at(l) < gone) problems.push(`round ${r}: ${l.c} got out before ${c} had left`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(byRound.size).toBeGreaterThanOrEqual(5);
    expect(outAfter).toBeLessThanOrEqual(TTL + 2);
    expect(result.leaked).toEqual([]);
    expect(result.violations.filter((v) => v.rule === 'history' || v.rule === 'leak' || v.rule === 'exit')).toEqual([]);
    expect(s.find((l) => l.ev === 'fail' && (l.op === 'enter' || l.op === 'leave'))).toEqual([]);
  });
});

interface Round {
  entered: LogEvent[];
  leaves: LogEvent[];
  enterInvokes: Map<string, bigint>;
  leaveInvokes: Map<string, bigint>;
  kills: Map<string, bigint>;
}

/**
 * The rounds, by `ready`'s create revision: who got in (their `enter` ok lines), when each participant
 * arrived (its last `enter` invoke before getting in), when it left or was killed, and who got out.
 */
function rounds(lines: readonly LogEvent[]): Map<string, Round> {
  const out = new Map<string, Round>();
  const get = (r: string): Round => {
    let round = out.get(r);
    if (!round) out.set(r, (round = { entered: [], leaves: [], enterInvokes: new Map(), leaveInvokes: new Map(), kills: new Map() }));
    return round;
  };
  const current = new Map<string, string>(); // client → the round it is in
  const lastInvoke = new Map<string, bigint>();
  for (const l of lines) {
    if (l.op === 'enter' && l.ev === 'invoke') lastInvoke.set(l.c, at(l));
    if (l.op === 'enter' && l.ev === 'ok' && typeof l['round'] === 'string') {
      const round = get(l['round']);
      round.entered.push(l);
      round.enterInvokes.set(l.c, lastInvoke.get(l.c) ?? at(l));
      current.set(l.c, l['round']);
    }
    const r = current.get(l.c);
    if (l.op === 'leave' && l.ev === 'invoke' && r !== undefined) get(r).leaveInvokes.set(l.c, at(l));
    if (l.op === 'leave' && l.ev === 'ok' && r !== undefined) {
      get(r).leaves.push(l);
      current.delete(l.c);
    }
    if (l.c === 'parent' && l.op === 'kill') {
      const target = String(l['target']);
      const tr = current.get(target);
      if (tr !== undefined) get(tr).kills.set(target, at(l));
    }
  }
  return out;
}
