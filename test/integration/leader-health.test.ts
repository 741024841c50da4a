// LeaderElector health and readiness against a real etcd, through the node:http handlers a Kubernetes
// probe would call: ready means "connected and campaigning" (never "is leader"), unhealthy means a
// process still acting as leader when it should have stopped.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { LeaderElector } from '../../src/index.js';
import { etcdForFile } from '../fixture.js';
import { uniqueName } from '../helpers.js';

const fx = etcdForFile(5);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Serves `handler` on a free port; returns a GET function giving status and JSON body. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<() => Promise<{ status: number; body: Record<string, unknown> }>> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  return async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
}

describe('LeaderElector readiness and liveness', () => {
  test('ready = connected and campaigning: a follower is ready while another leads; stopped is not ready', async () => {
    const name = uniqueName('ready');
    const leader = new LeaderElector(fx.etcd.client(), name, { ttl: 5 });
    const follower = new LeaderElector(fx.etcd.client(), name, { ttl: 5 });
    cleanups.push(async () => leader.stop(), async () => follower.stop());
    const leaderReady = await serve(leader.readinessHandler());
    const followerReady = await serve(follower.readinessHandler());
    expect((await followerReady()).status).toBe(503); // not running yet
    const leading = new Promise<void>((resolve) => leader.once('elected', () => resolve()));
    const runs = [leader.run(async ({ signal }) => new Promise<void>((r) => signal.addEventListener('abort', () => r()))), follower.run(() => undefined)];
    await leading;
    await expect.poll(async () => (await followerReady()).status, { timeout: 5000 }).toBe(200);
    const f = await followerReady();
    expect(f.body).toMatchObject({ ready: true, leading: false, healthy: true });
    expect((await leaderReady()).body).toMatchObject({ ready: true, leading: true });
    await follower.stop();
    expect((await followerReady()).status).toBe(503);
    await leader.stop();
    await Promise.all(runs);
  });

  test('unhealthy when a term ended but its callback ignores its signal and keeps acting as leader', async () => {
    const name = uniqueName('stuck');
    const elector = new LeaderElector(fx.etcd.client(), name, { ttl: 2 });
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    cleanups.push(async () => {
      release();
      await elector.stop();
    });
    const liveness = await serve(elector.livenessHandler({ tolerance: 2000 }));
    const elected = new Promise<{ leaseId: string }>((resolve) => elector.once('elected', resolve));
    const running = elector.run(async () => stuck); // never looks at its signal
    const { leaseId } = await elected;
    expect((await liveness()).status).toBe(200);
    await fx.admin.leaseClient.leaseRevoke({ ID: leaseId }); // the term ends underneath it
    await delay(100);
    expect((await liveness()).status).toBe(200); // within the tolerance (2 s: room for a slow machine)
    await expect.poll(async () => (await liveness()).status, { timeout: 8000 }).toBe(503);
    const { body } = await liveness();
    expect(body['healthy']).toBe(false);
    expect(String(body['reason'])).toMatch(/term \d+ ended \d+ ms ago .* but its callback has not returned: it ignores its signal/);
    release(); // the callback returns at last: healthy again, campaigning anew
    await expect.poll(async () => (await liveness()).status, { timeout: 8000 }).toBe(200);
    await elector.stop();
    await running;
  });

  test('a callback that honours its signal stays healthy through a lost term', async () => {
    const name = uniqueName('honest');
    const elector = new LeaderElector(fx.etcd.client(), name, { ttl: 2 });
    cleanups.push(async () => elector.stop());
    const elected = new Promise<{ leaseId: string }>((resolve) => elector.once('elected', resolve));
    const running = elector.run(async ({ signal }) => new Promise<void>((r) => signal.addEventListener('abort', () => r())));
    const { leaseId } = await elected;
    await fx.admin.leaseClient.leaseRevoke({ ID: leaseId });
    const seen: boolean[] = [];
    for (let i = 0; i < 10; i++) {
      seen.push(elector.health({ tolerance: 300 }).healthy);
      await delay(100);
    }
    expect(seen.every(Boolean)).toBe(true);
    expect(() => elector.health({ tolerance: -1 })).toThrow(RangeError);
    await elector.stop();
    await running;
  });
});
