// Fault scenario 21: the proxy delays every answer to three of four Mutex clients by 400 ms for a while.
// Each keep-alive's round trip is then at least 400 ms, so the checker holds every validity deadline
// the clients report meanwhile to `t − 400 ms + TTL − margin` (t: when it was observed): a session
// must count its validity from when its keep-alive was sent, not from when the answer came.
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { startProxy } from '../../src/testing/proxy.js';
import { describe as describeCheck } from './checker.js';
import { at, faultRounds, scenarioPerTest, startAll } from './harness.js';
import type { ClientConfig } from './protocol.js';

const TTL = 5;
/** The round trip the proxy adds: every answer is held this long. */
const RTT_MS = 400;

describe('keep-alive answers delayed', { timeout: 120_000 }, () => {
  const start = scenarioPerTest();

  test('21. G4: every answer to three clients delayed 400 ms: each validity deadline counts from its keep-alive\'s send, never from the answer', async () => {
    const s = await start('21-slow-answers', { ttl: TTL });
    const proxy = await startProxy(s.etcd.members[1]!.clientUrl);
    try {
      const config: Partial<ClientConfig> = { mode: 'loop', holdMs: 50, waitStart: true, requestTimeout: 3000 };
      const slow = Array.from({ length: 3 }, (_, i) => s.spawn(`s${i}`, { ...config, endpoints: [proxy.url] }));
      const direct = s.spawn('d', config);
      await startAll([...slow, direct]);
      await delay(1000);
      // Logged before the delay starts and before it ends: the window the checker sees lies inside it.
      const began = slow.map((c) => s.fault('delay', { target: c.id, rtt: RTT_MS, direction: 'toClient' }));
      proxy.delay(RTT_MS, 'toClient');
      await delay(faultRounds(6, 30) * 1000);
      const ended = slow.map((c) => s.fault('undelay', { target: c.id }));
      proxy.delay(0);
      await delay(1000);
      const result = await s.finish();
      // The keep-alives whose deadlines were judged against the delay: moves logged inside the window.
      const judged = s.find(
        (l) => l.op === 'deadline' && slow.some((c, i) => c.id === l.c && at(l) >= at(began[i]!) + BigInt(RTT_MS * 1e6) && at(l) <= at(ended[i]!)),
      );
      console.log(`[fault 21] ${judged.length} deadline moves judged against the ${RTT_MS} ms round trip; ${describeCheck(result)}`);
      const dir = s.save(result);
      expect(result.violations, `${describeCheck(result)}\nlogs: ${dir}`).toEqual([]);
      expect(judged.length, 'keep-alives answered through the delay').toBeGreaterThanOrEqual(slow.length);
      expect(result.losses).toEqual([]);
      for (const c of slow) expect(result.acquisitions.some((a) => a.client === c.id), `${c.id} acquired`).toBe(true);
    } finally {
      await proxy.close();
    }
  });
});
