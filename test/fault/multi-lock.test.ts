// Fault scenario 20: MultiLock. Six processes take random sets of one to three of four names, in random
// orders, under random kills and pauses. Every name is judged as a lock of its own (no two holders,
// acquisitions and fenced effects backed by etcd's history, no lost update, nothing left), and across
// names: no deadlock (every wake-up within 2 s of the last delete that let it in, or of the faults
// overlapping the wait), and every acquisition finished or was explained by a fault.
import { describe, expect, test } from 'vitest';
import { describe as describeCheck } from './checker.js';
import { type ClientProc, faultSeed, prng, randomFaults, scenarioPerTest, startAll } from './harness.js';
import { checkMulti } from './multi-check.js';
import type { ClientConfig } from './protocol.js';

const TTL = 2;

describe('MultiLock under faults', { timeout: 180_000 }, () => {
  const start = scenarioPerTest();

  test('20. G1–G3, L: random name sets in random orders under kills and pauses: one holder per name, no deadlock, every acquisition explained', async () => {
    const s = await start('20-multi-lock', { ttl: TTL });
    const seed = faultSeed();
    const random = prng(seed);
    const names = Array.from({ length: 4 }, (_, i) => `${s.prefix}m${i}`);
    let next = 0;
    const spawn = (): ClientProc => {
      const id = next++;
      const config: Partial<ClientConfig> = {
        kind: 'multi',
        locks: names,
        maxNames: 3,
        seed: seed * 100 + id,
        mode: 'loop',
        renew: true,
        holdMs: 20,
        thinkMs: 10,
        requestTimeout: 1000,
        etcd3Faults: 'none',
        waitStart: true,
      };
      return s.spawn(`c${id}`, config);
    };
    const running = Array.from({ length: 6 }, spawn);
    await startAll(running);
    const faults = await randomFaults(s, running, random, 12_000, spawn);
    const result = await checkMulti(s, names);
    const faultList = faults.map((f) => `${f.op} ${String(f['target'])}`).join(', ');
    const verdicts = [...result.names].map(([name, r]) => `${name.slice(s.prefix.length)}: ${describeCheck(r)}`).join('\n');
    const slowest = result.wakes.reduce((m, w) => Math.max(m, w.waitedMs), 0);
    console.log(`[fault 20] seed ${seed}; ${faultList}; ${result.acquisitions} acquisitions (${result.multiName} of several names), ${result.wakes.length} wake-ups (slowest ${slowest.toFixed(0)} ms)\n${verdicts}`);
    const replay = `(replay with FAULT_SEED=${seed})`;
    for (const [name, r] of result.names) {
      expect(r.violations, `${name}: ${describeCheck(r)} ${replay}`).toEqual([]);
      expect(r.maxConcurrent, name).toBeLessThanOrEqual(1);
      expect(r.counter, name).toBe(r.applied);
      expect(r.applied, `${name} saw effects`).toBeGreaterThan(5);
    }
    expect(result.violations, `${result.violations.map((v) => `${v.rule} ${v.message}`).join('\n')} ${replay}`).toEqual([]);
    expect(result.multiName, 'sets of several names were taken').toBeGreaterThan(10);
    expect(result.wakes.length, 'waiters were woken').toBeGreaterThan(10);
    expect(faults.length).toBeGreaterThan(0);
  });
});
