// A model-based property test of DoubleBarrier rounds (fast-check), with a real etcd as the system
// under test and a model of the keys as the oracle. Four participants, each on a client of its own
// behind a TCP proxy, go through generated interleavings of join (enter), abort, crash (its lease
// revoked, as an expiry would), leave — and hold/heal, which keep a participant's answers in its proxy,
// so that the others act between its reads and its writes (where the faults of issue 19 lived).
// After each step: the history of the keys obeys I1–I3 of docs/barrier.md (test/fault/rounds.ts);
// every participant inside has its key in place and named by the open round; every waiter key belongs
// to a participant the model says may have one; and, once nobody is held, a round is open whenever
// `count` participants wait (L1). At the end everyone leaves or gives up: no key is left, and I4–I6
// hold for every report. Planted bugs it finds in some executions, not all (the line-ups are narrow):
// an open without its member compares (2 of 4 runs of 15 cases), a participant beyond `count` that
// drops its key and waits for another to open (1 of 3); double-barrier.test.ts and fault scenario 16b
// catch those every time.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HistoryRecorder } from '../fault/history.js';
import { checkRounds } from '../fault/rounds.js';
import { etcdForFile } from '../fixture.js';
import { System, type Phase } from './double-barrier-system.js';

const fx = etcdForFile(10);
const root = `model-${process.pid}/`;
const SLOTS = 4;
let recorder: HistoryRecorder;
let run = 0;
const stats = { commands: 0, rounds: 0 };

beforeAll(async () => {
  const res = await fx.admin.get(root).exec();
  recorder = await HistoryRecorder.start(fx.etcd.endpoints, root, BigInt(res.header.revision));
});
afterAll(() => recorder.close());

/** The model: the participants' phases and holds (what may have a key), kept in step with the system. */
interface Model {
  phases: Phase[];
  held: boolean[];
}

const sync = (m: Model, r: System): void => {
  m.phases = r.slots.map((s) => s.phase);
  m.held = r.slots.map((s) => s.held);
};

/** The keys and the history, against the model; see the file comment. */
async function checkKeys(r: System, eventually: boolean): Promise<void> {
  const res = await fx.admin.kv.range({ key: Buffer.from(`${r.name}/`), range_end: Buffer.from(`${r.name}0`) });
  await recorder.until(BigInt(res.header.revision));
  expect(checkRounds({ history: recorder.events, name: r.name, count: r.count }).violations).toEqual([]);
  expect(r.errors).toEqual([]);
  const kvs = res.kvs.map((kv) => ({ key: kv.key.toString(), lease: BigInt(kv.lease).toString(16), created: BigInt(kv.create_revision), value: kv.value.toString() }));
  const record = kvs.find((kv) => kv.key === `${r.name}/ready`);
  const members = record ? (JSON.parse(record.value) as { members: string[] }).members : [];
  for (const slot of r.slots.filter((s) => s.phase === 'inside')) {
    const own = kvs.find((kv) => kv.lease === slot.session.leaseHex);
    expect(own, `an inside participant's key`).toBeDefined();
    expect(members, 'named by the open round').toContain(own!.created.toString());
  }
  if (!eventually) return;
  await expect
    .poll(
      async () => {
        const keys = await fx.admin.getAll().prefix(`${r.name}/waiters/`).exec();
        const owners = keys.kvs.map((kv) => r.slots.find((s) => s.session.leaseHex === BigInt(kv.lease).toString(16)));
        const stray = owners.filter((s) => !s || (!s.held && (s.phase === 'idle' || s.phase === 'dead'))).length;
        const open = (await fx.admin.get(`${r.name}/ready`).string()) !== null;
        const waiting = r.slots.filter((s) => s.phase === 'entering' && !s.abort?.signal.aborted).length;
        const stranded = !open && !r.slots.some((s) => s.held) && waiting >= r.count;
        return { stray, stranded };
      },
      { timeout: 5000, interval: 100 },
    )
    .toEqual({ stray: 0, stranded: false });
}

type Cmd = fc.AsyncCommand<Model, System>;

/** What a step may do, how often (weight), to which participants (`when`), and how. */
interface Action {
  label: string;
  weight: number;
  when: (m: Model, i: number) => boolean;
  act: (r: System, i: number) => Promise<void> | void;
}

const hold = (r: System, i: number, held: boolean): void => {
  if (held) r.slots[i]!.proxy.blackhole('toClient');
  else r.slots[i]!.proxy.heal();
  r.slots[i]!.held = held;
};

// Weighted towards progress, and towards the line-ups that matter: an enter whose answers are held
// (its join applied, its answer not yet read) while the others abort, crash or arrive.
const actions: Action[] = [
  { label: 'enter', weight: 3, when: (m, i) => m.phases[i] === 'idle', act: (r, i) => r.enter(i) },
  {
    label: 'enter-held',
    weight: 3,
    when: (m, i) => m.phases[i] === 'idle',
    act: (r, i) => {
      hold(r, i, true);
      r.enter(i);
    },
  },
  { label: 'leave', weight: 3, when: (m, i) => m.phases[i] === 'inside', act: (r, i) => r.leave(i) },
  { label: 'abort', weight: 3, when: (m, i) => m.phases[i] === 'entering', act: (r, i) => r.abort(i) },
  { label: 'heal', weight: 2, when: (m, i) => m.held[i] === true, act: (r, i) => hold(r, i, false) },
  { label: 'hold', weight: 1, when: (m, i) => !m.held[i] && m.phases[i] !== 'dead', act: (r, i) => hold(r, i, true) },
  { label: 'crash', weight: 2, when: (m, i) => m.phases[i] !== 'dead', act: async (r, i) => r.crash(i) },
  { label: 'revive', weight: 2, when: (m, i) => m.phases[i] === 'dead', act: (r, i) => void (r.slots[i]!.phase = 'idle') },
];

/**
 * One step: among the actions that apply to some participant in the model, the one `choice` falls on
 * (by weight), on the `pick`-th participant it applies to. So every generated step runs, and
 * shrinking still works on the two numbers.
 */
function step(choice: number, pick: number): Cmd {
  let done = '';
  return {
    check: () => true,
    run: async (m, r) => {
      const applicable = actions.flatMap((a) => {
        const slots = m.phases.flatMap((_p, i) => (a.when(m, i) ? [i] : []));
        return slots.length > 0 ? [{ a, slots }] : [];
      });
      const total = applicable.reduce((n, { a }) => n + a.weight, 0);
      let at = choice % total;
      const { a, slots } = applicable.find(({ a: x }) => (at -= x.weight) < 0)!;
      const i = slots[pick % slots.length]!;
      done = `${a.label}(${i})`;
      stats.commands++;
      await a.act(r, i);
      await r.settle();
      sync(m, r);
      await checkKeys(r, true);
    },
    toString: () => done || `step(${choice}, ${pick})`,
  };
}

const commands = [fc.tuple(fc.nat(1000), fc.nat(SLOTS * 6)).map(([choice, pick]) => step(choice, pick))];

/** The end of a run: heal, let every round in progress go through and out, give the rest up. */
async function finale(r: System): Promise<void> {
  for (const slot of r.slots) slot.proxy.heal();
  for (const slot of r.slots) slot.held = false;
  for (let round = 0; round < SLOTS; round++) {
    await r.settle();
    await checkKeys(r, true);
    const inside = r.slots.flatMap((s, i) => (s.phase === 'inside' ? [i] : []));
    if (inside.length === 0) break;
    for (const i of inside) r.leave(i);
    await expect.poll(() => r.slots.some((s) => s.phase === 'leaving'), { timeout: 15_000 }).toBe(false);
  }
  r.slots.forEach((s, i) => s.phase === 'entering' && r.abort(i));
  await expect.poll(() => r.slots.some((s) => s.phase === 'entering'), { timeout: 10_000 }).toBe(false);
  await r.settle();
  expect(await fx.admin.getAll().prefix(`${r.name}/waiters/`).keys()).toEqual([]);
  const res = await fx.admin.get(root).exec();
  await recorder.until(BigInt(res.header.revision));
  const verdict = checkRounds({ history: recorder.events, name: r.name, count: r.count, reports: r.reports, excused: r.excused });
  expect(verdict.violations).toEqual([]);
  stats.rounds += verdict.rounds.length;
}

describe('DoubleBarrier against a model of its keys', () => {
  test('generated interleavings of join, abort, crash, leave, hold and heal keep every round exactly `count`, closed, and live', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(2, 2, 3), fc.commands(commands, { maxCommands: 24, size: 'max' }), async (count, cmds) => {
        const r = new System(fx.etcd, fx.admin, `${root}r${run++}`, count);
        for (let i = 0; i < SLOTS; i++) r.slots.push(await r.slot());
        try {
          const m: Model = { phases: [], held: [] };
          sync(m, r);
          await fc.asyncModelRun(() => ({ model: m, real: r }), cmds);
          await finale(r);
          console.log(`[model run] count ${count}: ${String(cmds)}`);
        } finally {
          await r.close();
        }
      }),
      { numRuns: 15 },
    );
    console.log(`[model] ${run} runs, ${stats.commands} commands, ${stats.rounds} rounds`);
  }, 600_000);
});
