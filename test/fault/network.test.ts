// Network fault scenarios N1, N2 and N5: etcd members in network namespaces, links cut in the kernel
// (tc), client processes on either side of the cut. See docs/guarantees.md, "Network partitions".
import { setTimeout as delay } from 'node:timers/promises';
import { expect, test } from 'vitest';
import { describe as describeCheck } from './checker.js';
import { at, hrnow, isOk, scenarioPerTest, secs, startAll } from './harness.js';
import { base, between, describeNetwork, durations, expectSafe, busiest, handoffs, healthyLost, lead, lostAfter, netOf, networked, quantile, rate, REQUEST_TIMEOUT, rejoined, SPLIT_S, showStreams, spread, TTL, watchStreams } from './network-harness.js';
import type { ClientConfig } from './protocol.js';

/** How long each phase of an asymmetric cut lasts. */
const PHASE_S = Math.max(4, SPLIT_S / 2);

describeNetwork('network partitions', () => {
  const start = scenarioPerTest();

  test('N1. G3, G4, L3, L4: a 2 | 1 split with Mutex and Semaphore clients on the 1 side: every minority holder and waiter lost ≤ TTL + 1 s; the majority hands off; after heal the minority acquires again, on a fresh lease from its SessionSource', async () => {
    const s = await start('n1-minority', networked(TTL, ['maj', 'min']));
    const net = netOf(s);
    const leader = await s.etcd.leader();
    const lone = s.etcd.members.find((m) => m !== leader)!; // a follower: the majority keeps its leader
    const rest = s.etcd.members.filter((m) => m !== lone);
    const sem = { lock: `${s.prefix}sem`, counter: `${s.prefix}sem-counter`, kind: 'semaphore' as const, permits: 2, effectRetries: 20 };
    // Lock cycles only: an effect is the application's own etcd3 calls, and etcd3 sends each to a member
    // at random — a third of them would wait out their deadline at the member cut off, whatever the lock does.
    const loop: Partial<ClientConfig> = { ...base, mode: 'loop', holdMs: 20, effects: 0, renew: true, waitStart: true };
    // The minority clients take every acquisition on a SessionSource: after the loss it grants a fresh
    // lease by itself once etcd answers again, and no acquisition starts on the lost one.
    const minority: Partial<ClientConfig> = { ...base, endpoints: [net.url(lone)], source: true };
    const majMutex = ['a0', 'a1', 'a2'].map((id) => s.spawn(id, loop, 'maj'));
    const majSem = ['b0', 'b1'].map((id) => s.spawn(id, { ...loop, ...sem }, 'maj'));
    const hm = s.spawn('hm', minority, 'min');
    const hs = s.spawn('hs', { ...minority, ...sem }, 'min');
    const wm = s.spawn('wm', { ...loop, ...minority }, 'min');
    await hm.call({ cmd: 'acquire' }, 'acquire');
    await hs.call({ cmd: 'acquire' }, 'acquire');
    await startAll([...majMutex, ...majSem, wm]);
    await delay(1500);
    await lead(s, leader);
    const warm = hrnow();

    const split = s.fault('partition', { groups: [[...rest.map((m) => m.name), 'maj'], [lone.name, 'min']] });
    await net.partition([...rest, 'maj'], [lone, 'min']);
    await delay(SPLIT_S * 1000);
    const heal = s.fault('heal');
    await net.heal();
    const back = await rejoined(s, lone);

    // Once the member is back, the minority clients acquire again, on the fresh lease their source
    // granted (wm's loop goes on by itself): no new Session of ours, no restart.
    for (const c of [hm, hs]) {
      await c.call({ cmd: 'acquire', timeoutMs: 15_000 }, 'acquire', 20_000);
      await c.call({ cmd: 'release' }, 'release');
    }
    const wmAgain = await wm.waitFor((l) => isOk('acquire')(l) && at(l) > at(heal), 15_000, 0, 'wm acquiring after the heal');
    for (const c of [...majMutex, ...majSem, wm]) c.send({ cmd: 'stop' });
    const mutexIds = ['a0', 'a1', 'a2', 'hm', 'wm'];
    const mutex = await s.finish({ only: (c) => mutexIds.includes(c) });
    const semaphore = await s.finish({
      only: (c) => !mutexIds.includes(c),
      lockPrefix: `${sem.lock}/`,
      counterKey: sem.counter,
      holderPrefix: `${sem.lock}/holders/`,
      permits: 2,
    });

    // Figures: loss detection on the minority side, majority hand-offs during the split, recovery.
    const losses = [hm, hs, wm].map((c) => ({ c, lost: lostAfter(c, split) }));
    const a = majMutex.map((c) => c.id);
    const b = majSem.map((c) => c.id);
    const takeover = between(s, a, isOk('acquire'), at(split), at(heal))[0];
    const releases = durations(s, [...a, ...b], 'release', at(split), at(heal));
    const recovered = [hm, hs].map((c) => c.lines.find((l) => isOk('acquire')(l) && at(l) > at(heal))!);
    console.log(
      `[network N1] lone member ${lone.name} (leader ${leader.name}); lost after the split: ${losses.map(({ c, lost }) => `${c.id} ${lost ? secs(split, lost).toFixed(2) : '—'} s`).join(', ')}; ` +
        `majority Mutex takeover ${takeover ? secs(split, takeover).toFixed(2) : '—'} s, then ${takeover ? rate(s, a, at(takeover), at(heal)).toFixed(1) : 0} acquisitions/s (after the heal ${rate(s, a, at(back), hrnow()).toFixed(1)}/s); ` +
        `Semaphore ${rate(s, b, at(split), at(heal)).toFixed(1)}/s (before ${rate(s, b, warm - 1_500_000_000n, at(split)).toFixed(1)}/s); ` +
        `majority releases during the split ${spread(releases)}; Mutex hand-offs ${spread(handoffs(s, a, at(split), at(heal)))}; ` +
        `${lone.name} back in the quorum ${secs(heal, back).toFixed(2)} s after the heal; minority acquisitions after that: ${[...recovered, wmAgain].map((l) => `${l.c} ${secs(back, l).toFixed(2)} s`).join(', ')}\n` +
        `Mutex: ${describeCheck(mutex)}\nSemaphore: ${describeCheck(semaphore)}`,
    );
    expectSafe(mutex, s);
    expectSafe(semaphore, s, 2);
    // G4 on the minority side: each holder and the waiter learn of the loss within TTL + 1 s.
    for (const { c, lost } of losses) {
      expect(lost, `${c.id} reports its loss; its last lines:\n${c.tail(12)}`).toBeDefined();
      expect(secs(split, lost!), `${c.id} lost`).toBeLessThanOrEqual(TTL + 1);
    }
    // L3: the majority takes over once the minority holder's lease is gone, and keeps handing off.
    expect(takeover, 'a majority Mutex client acquired during the split').toBeDefined();
    expect(secs(split, takeover!)).toBeLessThanOrEqual(TTL + 2);
    expect(between(s, a, isOk('acquire'), at(takeover!), at(heal)).length).toBeGreaterThanOrEqual(10);
    expect(between(s, b, isOk('acquire'), at(split), at(heal)).length).toBeGreaterThanOrEqual(10);
    // No majority session is lost, and no call waits on the cut-off member more than once.
    expect(healthyLost(s, [...a, ...b], at(split), at(heal)), 'majority sessions lost').toEqual([]);
    expect(quantile(releases, 1), 'slowest majority release during the split (ms)').toBeLessThanOrEqual(REQUEST_TIMEOUT + 1000);
    // Once its member is back, every minority client holds again, on a new lease its source granted
    // after the heal; and none of them started an acquisition on its lost lease after the loss.
    for (const l of [...recovered, wmAgain]) {
      expect(secs(back, l)).toBeLessThanOrEqual(TTL + 3);
      const [first, ...later] = s.find((x) => x.c === l.c && isOk('session')(x));
      expect(l.lease, `${l.c} acquires on the lease it lost`).not.toBe(first!.lease);
      expect(later.map((x) => x.lease), `${l.c}: the source granted the lease it acquired on`).toContain(l.lease);
      const lost = losses.find(({ c }) => c.id === l.c)!.lost!;
      const onLost = s.find((x) => x.c === l.c && isOk('acquire')(x) && x.lease === first!.lease && at(x) > at(lost));
      expect(onLost, `${l.c} acquired on its lost lease`).toEqual([]);
    }
  });

  test('N2. G2, G4, L4: the leader cut off from its peers while the holder\'s client, attached to it alone, holds the lock; the other clients still reach it: the holder lost ≤ TTL + 1 s, its fenced write refused; the others take over and hand off at full speed', async () => {
    const s = await start('n2-leader-isolated', networked(TTL, ['old', 'maj']));
    const net = netOf(s);
    const loop: Partial<ClientConfig> = { ...base, mode: 'loop', holdMs: 20, effects: 0, renew: true, waitStart: true };
    const majority = ['a0', 'a1', 'a2', 'a3'].map((id) => s.spawn(id, loop, 'maj'));
    const idle = await watchStreams(s);
    await startAll(majority);
    await delay(1500);
    // The member that serves most of their watch streams is made the leader, and the one cut off.
    const streams = await watchStreams(s, idle);
    const leader = busiest(streams);
    const peers = s.etcd.members.filter((m) => m !== leader);
    await lead(s, leader);
    // h, attached to it alone, joins the queue and holds.
    const h = s.spawn('h', { ...base, endpoints: [net.url(leader)] }, 'old');
    await h.call({ cmd: 'acquire' }, 'acquire');
    await lead(s, leader);

    // h reads the counter, then the leader is cut off from its peers (only: every client still reaches it).
    h.send({ cmd: 'effect', wait: true, checkHeld: false });
    await h.waitFor((l) => l.op === 'effect' && l['phase'] === 'read');
    const cut = s.fault('isolate-leader', { target: leader.name });
    await net.cut(leader, peers);
    h.send({ cmd: 'go' });
    const fenced = await h.waitFor((l) => l.op === 'effect' && (l.ev === 'ok' || l.ev === 'fail'), 10_000);
    await delay(SPLIT_S * 1000);
    const heal = s.fault('heal');
    await net.heal();
    const back = await rejoined(s, leader);
    await h.call({ cmd: 'session' }, 'session', 15_000);
    const again = await h.call({ cmd: 'acquire', timeoutMs: 15_000 }, 'acquire', 20_000);
    await h.call({ cmd: 'release' }, 'release');
    for (const c of majority) c.send({ cmd: 'stop' });
    const result = await s.finish();

    const ids = majority.map((c) => c.id);
    const lost = lostAfter(h, cut);
    const takeover = between(s, ids, isOk('acquire'), at(cut), at(heal))[0];
    const handoff = handoffs(s, ids, takeover ? at(takeover) : at(cut), at(heal));
    const releases = durations(s, ids, 'release', at(cut), at(heal));
    console.log(
      `[network N2] leader ${leader.name} cut off (the majority's watch streams: ${showStreams(streams)}); h lost ${lost ? secs(cut, lost).toFixed(2) : '—'} s after the cut, its fenced write: ${fenced.ev} (${fenced.err ?? ''}); ` +
        `takeover ${takeover ? secs(cut, takeover).toFixed(2) : '—'} s, then ${takeover ? rate(s, ids, at(takeover), at(heal)).toFixed(1) : 0} acquisitions/s; hand-offs ${spread(handoff)}; releases ${spread(releases)}; ` +
        `${leader.name} back ${secs(heal, back).toFixed(2)} s after the heal, h holds again ${secs(back, again).toFixed(2)} s later\n${describeCheck(result)}`,
    );
    expectSafe(result, s);
    expect(lost, 'h reports its loss').toBeDefined();
    expect(secs(cut, lost!)).toBeLessThanOrEqual(TTL + 1);
    expect(fenced.ev, 'the write h sent to the cut-off leader').toBe('fail');
    expect(takeover, 'the majority took over').toBeDefined();
    expect(secs(cut, takeover!)).toBeLessThanOrEqual(TTL + 2);
    expect(healthyLost(s, ids, at(cut), at(heal)), 'majority sessions lost').toEqual([]);
    expect(handoff.length).toBeGreaterThanOrEqual(10);
    // A member without a leader refuses calls and watches at once (require-leader): no hand-off waits
    // for a quiet watch to be re-read (every second), no call for its deadline.
    expect(quantile(handoff, 0.99), 'p99 hand-off during the cut (ms)').toBeLessThanOrEqual(500);
    expect(quantile(releases, 1), 'slowest release during the cut (ms)').toBeLessThanOrEqual(REQUEST_TIMEOUT + 1000);
    expect(again.ev).toBe('ok');
    expect(secs(back, again)).toBeLessThanOrEqual(TTL + 3);
  });

  test('N5. G1, G3, L4: asymmetric links to the member serving most watch streams — first its answers to one group are dropped (requests arrive and are applied), then another group\'s requests: no session is lost, no acquisition is doubled, hand-offs go on', async () => {
    const s = await start('n5-asymmetric', networked(TTL, ['ca', 'cb']));
    const net = netOf(s);
    // Lock cycles only (see N1): the application's own etcd3 calls would wait out their deadline at `one`.
    const loop: Partial<ClientConfig> = { ...base, mode: 'loop', holdMs: 20, effects: 0, renew: true, waitStart: true };
    const groups = { a: ['a0', 'a1', 'a2'].map((id) => s.spawn(id, loop, 'ca')), b: ['b0', 'b1', 'b2'].map((id) => s.spawn(id, loop, 'cb')) };
    const idle = await watchStreams(s);
    await startAll([...groups.a, ...groups.b]);
    await delay(1500);
    // The member that serves most of their watch streams (connections made before: a one-way cut
    // lets no new one through) is the one cut.
    const streams = await watchStreams(s, idle);
    const one = busiest(streams);

    const answersLost = s.fault('one-way', { from: one.name, to: 'ca' });
    await net.cut(one, 'ca', { oneWay: true });
    await delay(PHASE_S * 1000);
    const healA = s.fault('heal');
    await net.heal();
    await delay(1000);
    const requestsLost = s.fault('one-way', { from: 'cb', to: one.name });
    await net.cut('cb', one, { oneWay: true });
    await delay(PHASE_S * 1000);
    const healB = s.fault('heal');
    await net.heal();
    await delay(1000);
    for (const c of [...groups.a, ...groups.b]) c.send({ cmd: 'stop' });
    const result = await s.finish();

    const ids = { a: groups.a.map((c) => c.id), b: groups.b.map((c) => c.id) };
    const phases = [
      { name: 'answers dropped', group: ids.a, from: answersLost, to: healA },
      { name: 'requests dropped', group: ids.b, from: requestsLost, to: healB },
    ];
    console.log(
      `[network N5] member ${one.name} (watch streams: ${showStreams(streams)}); ` +
        phases
          .map(({ name, group, from, to }) => `${name}: ${rate(s, group, at(from), at(to)).toFixed(1)} acquisitions/s by the group cut, ${rate(s, [...ids.a, ...ids.b], at(from), at(to)).toFixed(1)}/s in all; hand-offs ${spread(handoffs(s, [...ids.a, ...ids.b], at(from), at(to)))}; releases of the group ${spread(durations(s, group, 'release', at(from), at(to)))}`)
          .join('; ') +
        `\n${describeCheck(result)}`,
    );
    expectSafe(result, s);
    for (const { name, group, from, to } of phases) {
      expect(healthyLost(s, [...ids.a, ...ids.b], at(from), at(to)), `sessions lost while ${name}`).toEqual([]);
      expect(between(s, group, isOk('acquire'), at(from), at(to)).length, `acquisitions of the group while ${name}`).toBeGreaterThanOrEqual(10);
      expect(quantile(durations(s, group, 'release', at(from), at(to)), 1), `slowest release while ${name} (ms)`).toBeLessThanOrEqual(REQUEST_TIMEOUT + 1000);
    }
  });
});
