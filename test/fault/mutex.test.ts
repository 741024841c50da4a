// Fault scenarios 1–11 for the Mutex: child-process clients, a 3-member etcd, faults, and the checker.
import { afterEach, describe, expect, test } from 'vitest';
import { describe as describeCheck, type CheckResult } from './checker.js';
import { nsToMs, Scenario, type ClientProc } from './harness.js';

const TTL = 2;

function expectSafe(result: CheckResult, scenario: Scenario): void {
  const dir = scenario.save(result);
  expect(result.violations, `${describeCheck(result)}\nlogs: ${dir}`).toEqual([]);
  expect(result.maxConcurrent).toBeLessThanOrEqual(1);
  expect(result.counter).toBe(result.applied);
}

async function startAll(s: Scenario, clients: ClientProc[]): Promise<void> {
  await Promise.all(clients.map(async (c) => c.waitFor((l) => l.op === 'session' && l.ev === 'ok', 30_000)));
  for (const c of clients) c.send({ cmd: 'go' });
}

describe('Mutex under faults', { timeout: 120_000 }, () => {
  let scenario: Scenario | undefined;
  afterEach(async () => {
    await scenario?.[Symbol.asyncDispose]();
    scenario = undefined;
  });

  test('1. contention baseline: 8 processes × 100 cycles, no faults', async () => {
    const s = (scenario = await Scenario.start('01-baseline', { ttl: TTL }));
    const clients = Array.from({ length: 8 }, (_, i) =>
      s.spawn(`c${i}`, { mode: 'loop', cycles: 100, waitStart: true }),
    );
    await startAll(s, clients);
    const started = performance.now();
    await Promise.all(clients.map(async (c) => c.exited));
    const elapsed = performance.now() - started;
    const result = await s.finish();
    console.log(`[fault 1] 800 cycles in ${elapsed.toFixed(0)} ms; ${describeCheck(result)}`);
    expectSafe(result, s);
    expect(result.acquisitions).toHaveLength(800);
    expect(result.acknowledged).toBe(800);
    expect(result.counter).toBe(800);
  });
});
