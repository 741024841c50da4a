// Network fault scenario N6: a slow and lossy link to the member that serves the clients' watch streams
// — 200 ms ± 50 ms each way and 10 % of chunks lost, emulated by the TCP proxy (this kernel has no
// netem) — while contended hand-offs go on. No namespaces: it runs without root.
import { setTimeout as delay } from 'node:timers/promises';
import { expect, test, describe } from 'vitest';
import { startProxy, type TcpProxy } from '../../src/testing/proxy.js';
import { describe as describeCheck } from './checker.js';
import { at, faultSeed, isOk, prng, scenarioPerTest, startAll } from './harness.js';
import { between, handoffs, healthyLost, rate, spread, watchStreams } from './network-harness.js';
import type { ClientConfig } from './protocol.js';

const TTL = 2;
const SLOW = { ms: 200, jitterMs: 50, loss: 0.1 };
/** How long the link stays slow (`NETWORK_SLOW_S` for a long run). */
const SLOW_S = Number(process.env['NETWORK_SLOW_S'] ?? 8);

describe('a slow and lossy link', { timeout: 180_000 }, () => {
  const start = scenarioPerTest();

  test('N6. G3, G4, L4: 200 ± 50 ms each way and 10 % loss on the member serving the watch streams, under contention: safe, no session lost, hand-offs go on (their p50/p99 logged)', async () => {
    const s = await start('n6-slow-lossy', { ttl: TTL });
    const seed = faultSeed();
    const [slowMember, ...others] = s.etcd.members;
    const proxies: TcpProxy[] = await Promise.all(s.etcd.members.map(async (m) => startProxy(m.clientUrl)));
    try {
      const slow = proxies[0]!;
      const loop: Partial<ClientConfig> = { requestTimeout: 1000, etcd3Faults: 'none', mode: 'loop', holdMs: 20, renew: true, waitStart: true };
      // `s*` reach etcd only through the slow link, and write a fenced effect under each hold (two
      // round trips of the application's own); `m*` contend for a lock of their own with hand-offs
      // only, listing every member: the slow one serves some of their streams.
      const only = ['s0', 's1'].map((id) => s.spawn(id, { ...loop, effects: 1, endpoints: [slow.url] }));
      const second = { lock: `${s.prefix}mixed`, counter: `${s.prefix}mixed-counter` };
      const mixed = ['m0', 'm1', 'm2'].map((id) => s.spawn(id, { ...loop, ...second, effects: 0, endpoints: proxies.map((p) => p.url) }));
      const all = [...only, ...mixed];
      await startAll(all);
      await delay(2000);
      const streams = await watchStreams(s);
      const ids = all.map((c) => c.id);
      const before = s.fault('baseline');

      // Every answer to an `s*` client now comes at least 2 × (200 − 50) ms after its request.
      const slowed = s.fault('slow', { member: slowMember!.name, ...SLOW, seed });
      for (const c of only) s.fault('delay', { target: c.id, rtt: 2 * (SLOW.ms - SLOW.jitterMs) });
      slow.delay(SLOW.ms, 'both', { jitterMs: SLOW.jitterMs, loss: SLOW.loss, random: prng(seed) });
      await delay(SLOW_S * 1000);
      slow.delay(0);
      for (const c of only) s.fault('undelay', { target: c.id });
      const fastAgain = s.fault('fast');
      await delay(1500);
      for (const c of all) c.send({ cmd: 'stop' });
      const onlySlow = await s.finish({ only: (c) => c.startsWith('s') });
      const contended = await s.finish({ only: (c) => c.startsWith('m'), lockPrefix: `${second.lock}/`, counterKey: second.counter });

      const m = mixed.map((c) => c.id);
      const o = only.map((c) => c.id);
      const figures = (group: string[]): string =>
        `hand-offs while slow ${spread(handoffs(s, group, at(slowed), at(fastAgain)))}, ${rate(s, group, at(slowed), at(fastAgain)).toFixed(1)} acquisitions/s; before ${spread(handoffs(s, group, at(before) - 2_000_000_000n, at(slowed)))}, ${rate(s, group, at(before) - 2_000_000_000n, at(slowed)).toFixed(1)}/s`;
      console.log(
        `[network N6] seed ${seed}; slow member ${slowMember!.name} (watch streams: ${[...streams].map(([mm, n]) => `${mm.name} ${n}`).join(', ')}; others ${others.map((mm) => mm.name).join(', ')}); ` +
          `m* (every member): ${figures(m)}; s* (only the slow one, with effects): ${figures(o)}\n` +
          `m*: ${describeCheck(contended)}\ns*: ${describeCheck(onlySlow)}`,
      );
      for (const result of [contended, onlySlow]) {
        const dir = s.save(result);
        expect(result.violations, `${describeCheck(result)}\nlogs: ${dir} (replay with FAULT_SEED=${seed})`).toEqual([]);
        expect(result.maxConcurrent).toBeLessThanOrEqual(1);
      }
      expect(healthyLost(s, ids, at(slowed), at(fastAgain)), 'sessions lost on the slow link').toEqual([]);
      expect(handoffs(s, m, at(slowed), at(fastAgain)).length, 'hand-offs among m* while slow').toBeGreaterThanOrEqual(10);
      // Each hold of an `s*` client takes round trips of ≥ 300 ms (acquire, effect, release): a few.
      expect(between(s, o, isOk('acquire'), at(slowed), at(fastAgain)).length, 'acquisitions by the clients behind the slow link').toBeGreaterThanOrEqual(2);
    } finally {
      await Promise.all(proxies.map(async (p) => p.close()));
    }
  });
});
