// Network fault scenarios N3 and N4: Election and LeaderElector under a 2 | 1 split and under a bridge,
// etcd members in network namespaces, links cut in the kernel. See docs/guarantees.md, "Network partitions".
import { setTimeout as delay } from 'node:timers/promises';
import { expect, test } from 'vitest';
import { describe as describeCheck } from './checker.js';
import type { EtcdMember } from '../../src/testing/index.js';
import { at, type ClientProc, isOk, type Scenario, scenarioPerTest, secs, startAll } from './harness.js';
import { after, base, between, describeNetwork, durations, expectSafe, followed, healthyLost, lead, lostAfter, netOf, networked, REQUEST_TIMEOUT, rejoined, SPLIT_S, spread, TTL } from './network-harness.js';
import type { ClientConfig, LogEvent } from './protocol.js';

type Kind = 'election' | 'elector';
/** A client that reports an election's leader, and which election it follows. */
type Watcher = [ClientProc, Kind];

/**
 * The end of an election scenario: heal, wait for `member` to rejoin, stop `clients`, judge the
 * Election (clients `e*`, `o*`) and the LeaderElector (`l*`, on `elect`), and find the first leader
 * that `e1`/`e2` and `l1`/`l2` each made after `fault`.
 */
async function endElections(s: Scenario, member: EtcdMember, clients: ClientProc[], fault: LogEvent, elect: { lock: string; counter: string }) {
  const heal = s.fault('heal');
  await netOf(s).heal();
  const back = await rejoined(s, member);
  await delay(1000);
  for (const c of clients) c.send({ cmd: 'stop' });
  const isElection = (c: string): boolean => /^(e|o)/.test(c);
  const election = await s.finish({ only: isElection });
  const elector = await s.finish({ only: (c) => !isElection(c), lockPrefix: `${elect.lock}/`, counterKey: elect.counter });
  const next: Record<Kind, LogEvent | undefined> = {
    election: between(s, ['e1', 'e2'], isOk('acquire'), at(fault), at(heal))[0],
    elector: between(s, ['l1', 'l2'], isOk('acquire'), at(fault), at(heal))[0],
  };
  return { heal, back, election, elector, next };
}

/** How long after the new leader each watcher reported it (or a later one), for the log. */
const lateness = (watchers: Watcher[], next: Record<Kind, LogEvent | undefined>): string =>
  watchers
    .map(([c, kind]) => {
      const seen = followed(c, next[kind]);
      return `${c.id} ${seen && next[kind] ? secs(next[kind], seen).toFixed(2) : '—'} s`;
    })
    .join(', ');

/**
 * What N3 and N4 both assert: never two leaders; the leaders cut off lost ≤ TTL + 1 s after `fault`;
 * new leaders ≤ TTL + 3 s after it; each watcher reports the new leader (or a later one) ≤ 2 s after.
 */
function expectReplaced(s: Scenario, end: Awaited<ReturnType<typeof endElections>>, cutOff: ClientProc[], fault: LogEvent, watchers: Watcher[]): void {
  expectSafe(end.election, s);
  expectSafe(end.elector, s);
  for (const c of cutOff) {
    const lost = lostAfter(c, fault);
    expect(lost, `${c.id} reports its loss; its last lines:\n${c.tail(12)}`).toBeDefined();
    expect(secs(fault, lost!)).toBeLessThanOrEqual(TTL + 1);
  }
  // The old leader's key goes when etcd expires its lease: a TTL after its last keep-alive, extended by
  // an election timeout when the raft leader changes (N3 cuts the raft leader off); its successor may
  // wait on a watch that the cut stalled, until its re-check (1 s here).
  for (const kind of ['election', 'elector'] as const) {
    expect(end.next[kind], `a new ${kind} leader`).toBeDefined();
    expect(secs(fault, end.next[kind]!)).toBeLessThanOrEqual(TTL + 3);
  }
  for (const [c, kind] of watchers) {
    const seen = followed(c, end.next[kind]);
    expect(seen, `${c.id} reports the new ${kind} leader`).toBeDefined();
    expect(secs(end.next[kind]!, seen!)).toBeLessThanOrEqual(2);
  }
}

describeNetwork('network partitions: elections', () => {
  const start = scenarioPerTest();

  test('N3. G3, G4, L3, L4: Election and LeaderElector under a 2 | 1 split, their leaders and an observer of each on the 1 side: never two leaders; the cut-off leaders\' signals abort ≤ TTL + 1 s; the majority elects within TTL + 3 s and its observers follow; the minority elector and observer stop reporting the replaced leader ≤ TTL + 1 s', async () => {
    const s = await start('n3-elections', networked(TTL, ['maj', 'min']));
    const net = netOf(s);
    const lone = await s.etcd.leader(); // the raft leader goes to the 1 side: the majority elects one too
    const rest = s.etcd.members.filter((m) => m !== lone);
    const minority: Partial<ClientConfig> = { ...base, endpoints: [net.url(lone)] };
    const elect = { lock: `${s.prefix}elect`, counter: `${s.prefix}elect-counter` };
    const electors: Partial<ClientConfig> = { ...base, ...elect, kind: 'election', mode: 'elector', holdMs: 100 };
    // The cut-off leaders start first and lead: e0 (Election, manual) and l0 (LeaderElector).
    const e0 = s.spawn('e0', { ...minority, kind: 'election' }, 'min');
    const l0 = s.spawn('l0', { ...electors, ...minority }, 'min');
    await e0.call({ cmd: 'acquire' }, 'acquire');
    await l0.waitFor(isOk('acquire'), 30_000, 0, 'l0 leading');
    const candidates = ['e1', 'e2'].map((id) => s.spawn(id, { ...base, kind: 'election', mode: 'loop', holdMs: 100, effects: 3, renew: true, waitStart: true }, 'maj'));
    const majElectors = ['l1', 'l2'].map((id) => s.spawn(id, electors, 'maj'));
    const observers = [s.spawn('oa', { ...base, kind: 'election', mode: 'observe' }, 'maj'), s.spawn('om', { ...minority, kind: 'election', mode: 'observe', vacancies: true }, 'min')];
    await startAll(candidates);
    await Promise.all([...majElectors, ...observers].map(async (c) => c.waitFor((l) => l.op === 'observe', 30_000, 0, 'a first observation')));
    await delay(1000);
    await lead(s, lone);

    const split = s.fault('partition', { groups: [[...rest.map((m) => m.name), 'maj'], [lone.name, 'min']] });
    await net.partition([...rest, 'maj'], [lone, 'min']);
    await delay(SPLIT_S * 1000);
    const end = await endElections(s, lone, [...candidates, ...majElectors, ...observers, l0], split, elect);

    // How long the minority went on reporting the replaced leaders.
    const old = { election: e0.lines.find(isOk('acquire'))!, elector: l0.lines.find(isOk('acquire'))! };
    /** When `c` stopped reporting `leader` as current, after `from` (its next observe line that names another). */
    const withdrawn = (c: ClientProc, leader: LogEvent, from: LogEvent): LogEvent | undefined =>
      c.lines.find((l) => l.op === 'observe' && at(l) > at(from) && l.token !== leader.token);
    const stale = withdrawn(l0, old.elector, split);
    const omStale = withdrawn(observers[1]!, old.election, split);
    const watchers: Watcher[] = [[observers[0]!, 'election'], [majElectors[0]!, 'elector'], [majElectors[1]!, 'elector']];
    const { next } = end;
    console.log(
      `[network N3] lone ${lone.name} (raft leader); cut-off leaders lost: ${after(split, [e0, l0].flatMap((c) => lostAfter(c, split) ?? []))}; ` +
        `new leaders ${next.election ? secs(split, next.election).toFixed(2) : '—'} s (Election), ${next.elector ? secs(split, next.elector).toFixed(2) : '—'} s (LeaderElector) after the split; ` +
        `majority observers follow: ${lateness(watchers, next)}; ` +
        `minority: l0 reports the replaced leader until ${stale && next.elector ? `${secs(next.elector, stale).toFixed(2)} s after the replacement` : 'the heal or later'}, om (Election.observe, vacancies) until ${omStale && next.election ? `${secs(next.election, omStale).toFixed(2)} s after the replacement (${secs(split, omStale).toFixed(2)} s after the split)` : 'the heal or later'}; ` +
        `${lone.name} back ${secs(end.heal, end.back).toFixed(2)} s after the heal\nElection: ${describeCheck(end.election)}\nLeaderElector: ${describeCheck(end.elector)}`,
    );
    expectReplaced(s, end, [e0, l0], split, watchers);
    // The minority elector stops reporting the replaced leader once it has no lease, and the minority
    // observer (with vacancies) once it cannot confirm it: each ≤ TTL + 1 s after the replacement.
    expect(stale, 'l0 withdraws the replaced leader').toBeDefined();
    expect(secs(next.elector!, stale!)).toBeLessThanOrEqual(TTL + 1);
    expect(omStale, 'om withdraws the replaced leader').toBeDefined();
    expect(secs(next.election!, omStale!)).toBeLessThanOrEqual(TTL + 1);
  });

  test('N4. G3, G4, L3, L4: Election and LeaderElector under a bridge — the raft leader and the far member cannot reach each other, the bridge member reaches both, and so do the clients on each side: never two leaders; the leaders attached to the far member lose ≤ TTL + 1 s; everyone else keeps its session, elects and follows', async () => {
    const s = await start('n4-bridge', networked(TTL, ['left', 'right']));
    const net = netOf(s);
    const [near, bridge, far] = s.etcd.members as [EtcdMember, EtcdMember, EtcdMember];
    const elect = { lock: `${s.prefix}elect`, counter: `${s.prefix}elect-counter` };
    const election: Partial<ClientConfig> = { ...base, kind: 'election', mode: 'loop', holdMs: 100, effects: 3, renew: true, waitStart: true };
    const elector: Partial<ClientConfig> = { ...base, ...elect, kind: 'election', mode: 'elector', holdMs: 100 };
    const observer: Partial<ClientConfig> = { ...base, kind: 'election', mode: 'observe' };
    const onFar: Partial<ClientConfig> = { endpoints: [net.url(far)] };
    const e0 = s.spawn('e0', { ...base, ...onFar, kind: 'election' }, 'right');
    const l0 = s.spawn('l0', { ...elector, ...onFar }, 'right');
    await e0.call({ cmd: 'acquire' }, 'acquire');
    await l0.waitFor(isOk('acquire'), 30_000, 0, 'l0 leading');
    const left = [s.spawn('e1', election, 'left'), s.spawn('l1', elector, 'left'), s.spawn('ol', observer, 'left')];
    const right = [s.spawn('e2', election, 'right'), s.spawn('l2', elector, 'right'), s.spawn('or', observer, 'right')];
    const everyone = [...left, ...right];
    await startAll([left[0]!, right[0]!]);
    await Promise.all(everyone.slice(1).filter((c) => c.id !== 'e2').map(async (c) => c.waitFor((l) => l.op === 'observe', 30_000, 0, 'a first observation')));
    await delay(1000);
    await lead(s, near); // so that the far member, cut from the leader, has none (pre-vote keeps it from disrupting)

    const cut = s.fault('bridge', { near: near.name, bridge: bridge.name, far: far.name });
    await net.cut(near, far);
    await net.cut('left', far);
    await net.cut('right', near);
    await delay(SPLIT_S * 1000);
    const end = await endElections(s, far, [...everyone, l0], cut, elect);

    const { next } = end;
    const watchers: Watcher[] = [[left[2]!, 'election'], [right[2]!, 'election'], [left[1]!, 'elector'], [right[1]!, 'elector']];
    const resigns = durations(s, ['e1', 'e2'], 'release', at(cut), at(end.heal));
    console.log(
      `[network N4] near ${near.name} (raft leader), bridge ${bridge.name}, far ${far.name}; leaders on the far member lost: ${after(cut, [e0, l0].flatMap((c) => lostAfter(c, cut) ?? []))}; ` +
        `new leaders ${next.election ? secs(cut, next.election).toFixed(2) : '—'} s (Election, ${next.election?.c}), ${next.elector ? secs(cut, next.elector).toFixed(2) : '—'} s (LeaderElector, ${next.elector?.c}); ` +
        `followed by ${lateness(watchers, next)}; ` +
        `Election terms during the bridge ${between(s, ['e1', 'e2'], isOk('acquire'), at(cut), at(end.heal)).length}, resigns ${spread(resigns)}; ${far.name} back ${secs(end.heal, end.back).toFixed(2)} s after the heal\n` +
        `Election: ${describeCheck(end.election)}\nLeaderElector: ${describeCheck(end.elector)}`,
    );
    expectReplaced(s, end, [e0, l0], cut, watchers);
    // Every client that lists all members reaches the quorum through the bridge: no session lost.
    expect(healthyLost(s, everyone.map((c) => c.id), at(cut), at(end.heal)), 'sessions lost on either side').toEqual([]);
    // Every resign during the bridge (a loaded machine may fit none into it) is quick.
    expect(Math.max(0, ...resigns), 'slowest resign during the bridge (ms)').toBeLessThanOrEqual(REQUEST_TIMEOUT + 1000);
  });
});
