// Fault scenario 15: a ReadWriteLock shared by 3 writer and 5 reader processes under random kills and
// pauses, after a line-up that random timing almost never makes: a reader arrives while a writer holds,
// and another behind a waiting writer. The checker judges the writers as a mutex over every key of the
// lock (a writer holds only when its key is the oldest of all); the readers' windows come from a
// second pass; and no writer's validity window may overlap any other window, reader or writer —
// readers may overlap each other.
import { describe, expect, test } from 'vitest';
import { describe as describeCheck, type Acquisition } from './checker.js';
import { at, type ClientProc, faultRounds, faultSeed, isOk, prng, queued, randomFaults, type Scenario, scenarioPerTest, startAll } from './harness.js';
import type { ClientConfig, LogEvent } from './protocol.js';

const TTL = 2;

describe('ReadWriteLock under faults', { timeout: 180_000 }, () => {
  const start = scenarioPerTest();

  test('15. G3: read/write lock with random kills and pauses of 3 writers and 5 readers: no writer overlaps anyone; writes fenced; nothing left', async () => {
    const s = await start('15-rw-lock', { ttl: TTL });
    const seed = faultSeed();
    const random = prng(seed);
    const base: Partial<ClientConfig> = { mode: 'loop', renew: true, requestTimeout: 1000, etcd3Faults: 'none', waitStart: true };
    const writer: Partial<ClientConfig> = { ...base, kind: 'write', holdMs: 30 };
    const reader: Partial<ClientConfig> = { ...base, kind: 'read', holdMs: 80, effects: 0, thinkMs: 20 };
    const order = await lineUp(s);
    let next = 0;
    const spawn = (kind: 'w' | 'r'): ClientProc => s.spawn(`${kind}${next++}`, kind === 'w' ? writer : reader);
    const running = [...Array.from({ length: 3 }, () => spawn('w')), ...Array.from({ length: 5 }, () => spawn('r'))];
    await startAll(running);
    const faults = await randomFaults(s, running, random, faultRounds(12, 60) * 1000, (victim) => spawn(victim.id.startsWith('w') ? 'w' : 'r'));
    const contender = (key: string): boolean => {
      const rest = key.startsWith(`${s.lock}/read/`) ? key.slice(`${s.lock}/read/`.length) : key.startsWith(`${s.lock}/write/`) ? key.slice(`${s.lock}/write/`.length) : undefined;
      return rest !== undefined && rest.length > 0 && !rest.includes('/');
    };
    const isWriter = (c: string): boolean => c.startsWith('w');
    // Writers: a mutex over all keys of the lock; their effects are the guarded counter increments.
    const writers = await s.finish({ only: isWriter, isContender: contender, permits: 1 });
    // Readers: their windows (they may share, so no limit here); they write no effects (the counter is
    // the writers'), so only R1 and the session rules apply to them.
    const readers = await s.finish({ only: (c) => !isWriter(c), isContender: contender, permits: 1_000, counterKey: `${s.prefix}no-counter` });
    const overlaps = writerOverlaps(writers.acquisitions, readers.acquisitions);
    const faultList = faults.map((f) => `${f.op} ${String(f['target'])}`).join(', ');
    console.log(`[fault 15] seed ${seed}; ${faultList}; writers: ${describeCheck(writers)}\nreaders: ${describeCheck(readers)}; reader/writer overlaps ${overlaps.length}`);
    expect(writers.violations, `${describeCheck(writers)} (replay with FAULT_SEED=${seed})`).toEqual([]);
    expect(readers.violations.filter((v) => v.rule !== 'R3'), describeCheck(readers)).toEqual([]);
    expect(overlaps, overlaps.join('\n')).toEqual([]);
    expect(order, 'the line-up held in queue order').toEqual(['wa', 'ra', 'wb', 'rb']);
    expect(writers.acquisitions.length).toBeGreaterThan(10);
    expect(readers.maxConcurrent, 'readers really shared').toBeGreaterThanOrEqual(2);
    expect(writers.counter).toBe(writers.applied);
    expect(faults.length).toBeGreaterThan(0);
  });
});

/**
 * The line-up: writer `wa` holds; reader `ra` arrives (it must wait for `wa`), then writer `wb` (it waits
 * for `ra`) and reader `rb` (it must wait for `wb`, not join `ra`). Each lets go in turn; resolves with
 * the order in which they reported holding.
 */
async function lineUp(s: Scenario): Promise<string[]> {
  const [wa, ra, wb, rb] = (['wa', 'ra', 'wb', 'rb'] as const).map((id) => s.spawn(id, { kind: id.startsWith('w') ? 'write' : 'read', requestTimeout: 1000 }));
  await wa!.call({ cmd: 'acquire' }, 'acquire');
  for (const [i, c] of [ra!, wb!, rb!].entries()) {
    c.send({ cmd: 'acquire' });
    await queued(s, i + 2);
  }
  await new Promise((resolve) => setTimeout(resolve, 300)); // time for a reader to pass, were it to
  await wa!.call({ cmd: 'effect' }, 'effect');
  await wa!.call({ cmd: 'release' }, 'release');
  await ra!.waitFor(isOk('acquire'), 10_000);
  await ra!.call({ cmd: 'release' }, 'release');
  await wb!.waitFor(isOk('acquire'), 10_000);
  await wb!.call({ cmd: 'effect' }, 'effect');
  await wb!.call({ cmd: 'release' }, 'release');
  await rb!.waitFor(isOk('acquire'), 10_000);
  await rb!.call({ cmd: 'release' }, 'release');
  return s.find(isOk('acquire')).map((l) => l.c);
}

/** Every pair of a writer's window and another window (reader or writer) that overlap in time. */
function writerOverlaps(writers: readonly Acquisition[], readers: readonly Acquisition[]): string[] {
  const found: string[] = [];
  const all = [...writers, ...readers];
  for (const w of writers) {
    for (const o of all) {
      if (o === w || o.end <= w.start || w.end <= o.start) continue;
      found.push(`${w.client} token ${w.token} [${at({ t: w.start.toString() } as LogEvent)}…${w.end}] overlaps ${o.client} token ${o.token} [${o.start}…${o.end}]`);
    }
  }
  return found;
}
