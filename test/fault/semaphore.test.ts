// Fault scenario 12: a Semaphore of 4 permits under random kills and pauses of 10 client processes, each
// taking 1, 2 or 3 permits at a time: the checker counts the permits held, not the holders.
import { describe, expect, test } from 'vitest';
import { describe as describeCheck } from './checker.js';
import { at, type ClientProc, faultRounds, faultSeed, isOk, prng, randomFaults, scenarioPerTest, startAll } from './harness.js';
import type { ClientConfig } from './protocol.js';

const TTL = 2;
const PERMITS = 4;
/** Client `cN` takes `WEIGHTS[N % 3]` permits at a time (a replacement takes its victim's). */
const WEIGHTS = [1, 2, 3];

describe('Semaphore under faults', { timeout: 120_000 }, () => {
  const start = scenarioPerTest();

  test('12. G3: semaphore (permits 4, weights 1–3) with random kills and pauses of 10 clients: never more than 4 permits held; L1: every stall explained by a fault', async () => {
    const s = await start('12-semaphore', { ttl: TTL });
    const seed = faultSeed();
    const random = prng(seed);
    const config: Partial<ClientConfig> = {
      kind: 'semaphore',
      permits: PERMITS,
      mode: 'loop',
      holdMs: 100,
      renew: true,
      effectRetries: 20,
      requestTimeout: 1000,
      etcd3Faults: 'none',
    };
    let next = 0;
    const spawn = (weight: number): ClientProc => s.spawn(`c${next++}`, { ...config, weight, waitStart: true });
    const running = Array.from({ length: 10 }, (_, i) => spawn(WEIGHTS[i % WEIGHTS.length]!));
    await startAll(running);
    const faults = await randomFaults(s, running, random, faultRounds(15, 60) * 1000, (victim) => spawn(victim.config.weight ?? 1));
    const result = await s.finish({ holderPrefix: `${s.lock}/holders/`, permits: PERMITS });
    // Work goes on. A killed holder keeps its permits, and a frozen head of the queue keeps everyone
    // behind it waiting, until its lease expires; with a fault every 1–2 s two can follow each other, so
    // a stall of more than one TTL is no failure by itself. But every stall longer than 3 s must end
    // within TTL + 2 s (L1) of the last kill or pause before its end, and work goes on after the last.
    const oks = s.find(isOk('acquire')).map(at);
    const stalls: { from: bigint; to: bigint; afterFault: number }[] = [];
    for (let i = 1; i < oks.length; i++) {
      const [from, to] = [oks[i - 1]!, oks[i]!];
      if (to - from <= 3_000_000_000n) continue;
      const cause = faults.filter((f) => at(f) < to).at(-1);
      stalls.push({ from, to, afterFault: cause ? Number(to - at(cause)) / 1e9 : Number.POSITIVE_INFINITY });
    }
    console.log(
      `[fault 12] seed ${seed}; ${faults.map((f) => `${f.op} ${String(f['target'])}`).join(', ')}; ` +
        `${oks.length} acquisitions; stalls over 3 s: ${stalls.map((st) => `${(Number(st.to - st.from) / 1e9).toFixed(1)} s (ended ${st.afterFault.toFixed(2)} s after a fault)`).join(', ') || 'none'}\n${describeCheck(result)}`,
    );
    const dir = s.save(result);
    expect(result.violations, `${describeCheck(result)}\nlogs: ${dir} (replay with FAULT_SEED=${seed})`).toEqual([]);
    expect(result.maxConcurrent).toBeLessThanOrEqual(PERMITS);
    expect(result.maxConcurrent, 'the permits were actually shared').toBeGreaterThanOrEqual(3);
    expect(new Set(result.acquisitions.map((a) => a.weight)), 'every weight was granted').toEqual(new Set(WEIGHTS));
    expect(result.counter).toBe(result.applied);
    for (const st of stalls) expect(st.afterFault, `replay with FAULT_SEED=${seed}`).toBeLessThanOrEqual(TTL + 2);
    expect(faults.length).toBeGreaterThan(0);
    expect(oks.at(-1)!, 'an acquisition after the last fault').toBeGreaterThan(at(faults.at(-1)!));
  });
});
