// LeaderElector against a real etcd: the run loop, stop() handover without the TTL, re-campaign after a
// lost lease, a throwing or returning callback, a deleted key, events and getters, the SIGTERM example.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ConstantBackoff } from 'cockatiel';
import type { Etcd3 } from 'etcd3';
import { describe, expect, test } from 'vitest';
import { Election } from '../../src/election.js';
import { NotLeaderError, LeaseLostError, Session } from '../../src/index.js';
import { LeaderElector, leaderElectorDefaults, type LeaderContext, type LeaderElectorOptions } from '../../src/index.js';
import { startEtcd } from '../../src/testing/index.js';
import { eventually, keysUnder, uniqueName } from '../helpers.js';
import { etcdForFile } from '../fixture.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const fx = etcdForFile(5);

/** An elector on its own client, recording its events. */
function candidate(name: string, identity: string, options: LeaderElectorOptions = {}) {
  const elector = new LeaderElector(fx.etcd.client(), name, { identity, ttl: 10, ...options });
  const events: { type: string; at: number; term?: bigint; reason?: unknown; error?: unknown; leader?: string | null }[] = [];
  elector.on('elected', ({ term }) => events.push({ type: 'elected', at: performance.now(), term }));
  elector.on('demoted', ({ term, reason }) => events.push({ type: 'demoted', at: performance.now(), term, reason }));
  elector.on('retry', ({ error }) => events.push({ type: 'retry', at: performance.now(), error }));
  elector.on('leaderChanged', (state) => events.push({ type: 'leaderChanged', at: performance.now(), leader: state?.value ?? null }));
  const of = (type: string) => events.filter((e) => e.type === type);
  return { elector, events, of };
}

/** A callback that records its terms and runs until its signal aborts. */
function untilAborted(record: LeaderContext[] = []) {
  const fn = async (context: LeaderContext): Promise<void> => {
    record.push(context);
    await new Promise<void>((resolve) => context.signal.addEventListener('abort', () => resolve(), { once: true }));
  };
  return Object.assign(fn, { record });
}

describe('LeaderElector', () => {
  test('runs the callback while leading; getters and events; stop() resigns, closes the session and ends run()', async () => {
    const name = uniqueName('basic');
    const a = candidate(name, 'pod-a');
    const fn = untilAborted();
    const running = a.elector.run(fn);
    await eventually(() => fn.record.length === 1, 10_000, 'elected');
    const context = fn.record[0]!;
    expect(a.elector.isLeader).toBe(true);
    expect(a.elector.leadership).toBe(context.leadership);
    expect(context.term).toBe(context.leadership.term);
    expect(context.session.leaseId).toBe(context.leadership.leaseId);
    await eventually(() => a.elector.leader?.value === 'pod-a', 5000, 'leader getter');
    expect(a.elector.leader).toMatchObject({ key: context.leadership.key, term: context.term });
    expect(a.of('elected')).toEqual([expect.objectContaining({ term: context.term })]);
    expect(a.of('leaderChanged').at(-1)?.leader).toBe('pod-a');
    // Another reader agrees.
    await using reader = await Session.create(fx.admin, { ttl: 10 });
    expect(await new Election(reader, name).leader()).toMatchObject({ value: 'pod-a', term: context.term });

    await a.elector.stop();
    await running;
    expect(context.signal.aborted).toBe(true);
    expect(context.signal.reason).toBeInstanceOf(NotLeaderError);
    expect((context.signal.reason as Error).message).toMatch(/LeaderElector stopped/);
    expect(a.elector.isLeader).toBe(false);
    expect(a.of('demoted')).toEqual([expect.objectContaining({ term: context.term })]);
    expect((a.of('demoted')[0]!.reason as Error).name).toBe('NotLeaderError');
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
    expect(Number((await fx.admin.leaseClient.leaseTimeToLive({ ID: context.session.leaseId })).TTL)).toBe(-1);
    await expect(a.elector.run(fn)).rejects.toThrow(/stopped/);
    await a.elector.stop(); // idempotent
  });

  test('stop() hands over in one round trip, not one TTL (TTL 10 s): the next leader within ~1 s', async () => {
    const name = uniqueName('handover');
    const a = candidate(name, 'a');
    const b = candidate(name, 'b');
    let aReturned = 0;
    const aRun = a.elector.run(async ({ signal }) => {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      aReturned = performance.now();
    });
    await eventually(() => a.elector.isLeader, 10_000, 'a leads');
    const bFn = untilAborted();
    const bRun = b.elector.run(bFn);
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 10_000, 'b queued');
    expect(b.elector.isLeader).toBe(false);
    await eventually(() => b.elector.leader?.value === 'a', 5000, 'b sees a');

    const t0 = performance.now();
    const stopped = a.elector.stop();
    await eventually(() => b.elector.isLeader, 10_000, 'b leads');
    const handover = performance.now() - t0;
    console.log(`handover after stop(): ${handover.toFixed(0)} ms (TTL 10 s)`);
    expect(handover).toBeLessThan(2000);
    // The old leader's callback had returned before the new leader was elected.
    expect(aReturned).toBeGreaterThan(0);
    expect(aReturned).toBeLessThan(b.of('elected')[0]!.at);
    await stopped;
    await aRun;
    expect(bFn.record[0]!.term).toBeGreaterThan(a.of('elected')[0]!.term!);
    await eventually(() => b.elector.leader?.value === 'b', 5000, 'b sees itself');
    await b.elector.stop();
    await bRun;
  });

  test('re-campaigns after a lost lease, with a new session and a newer term', async () => {
    const name = uniqueName('lost');
    const a = candidate(name, 'a', { ttl: 5 });
    const fn = untilAborted();
    const running = a.elector.run(fn);
    await eventually(() => fn.record.length === 1, 10_000, 'first term');
    const first = fn.record[0]!;
    await fx.admin.leaseClient.leaseRevoke({ ID: first.session.leaseId }); // as if the lease had expired
    await eventually(() => fn.record.length === 2, 10_000, 'second term');
    const second = fn.record[1]!;
    expect(first.signal.reason).toBeInstanceOf(LeaseLostError);
    expect((a.of('demoted')[0]!.reason as Error).name).toBe('LeaseLostError');
    expect((a.of('retry')[0]!.error as Error).name).toBe('LeaseLostError');
    expect(second.session).not.toBe(first.session);
    expect(second.session.leaseId).not.toBe(first.session.leaseId);
    expect(second.term).toBeGreaterThan(first.term);
    expect(a.elector.isLeader).toBe(true);
    await a.elector.stop();
    await running;
  });

  test('a failed campaign (etcd down) is retried with backoff until etcd is back', async () => {
    await using own = await startEtcd();
    const member = own.members[0]!;
    await member.kill();
    const elector = new LeaderElector(own.client(), uniqueName('etcd-down'), {
      identity: 'a',
      ttl: 10,
      backoff: new ConstantBackoff(200),
      session: { requestTimeout: 500 },
    });
    const retries: unknown[] = [];
    elector.on('retry', ({ error }) => retries.push(error));
    const fn = untilAborted();
    const running = elector.run(fn);
    await eventually(() => retries.length >= 2, 20_000, 'campaign failures reported');
    expect(fn.record).toEqual([]);
    await member.restart();
    await eventually(() => fn.record.length === 1, 30_000, 'elected once etcd is back');
    expect(elector.isLeader).toBe(true);
    await elector.stop();
    await running;
  });

  test('a callback that throws: resign, back off, campaign again (behind the waiting candidate)', async () => {
    const name = uniqueName('throws');
    const a = candidate(name, 'a', { backoff: new ConstantBackoff(50) });
    const b = candidate(name, 'b');
    let calls = 0;
    const boom = new Error('boom');
    const aFn = untilAborted();
    const aRun = a.elector.run(async (context) => {
      if (++calls === 1) {
        // Let b queue up behind us, then fail.
        await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 10_000, 'b queued');
        throw boom;
      }
      await aFn(context);
    });
    await eventually(() => a.elector.isLeader, 10_000, 'a leads');
    const bRun = b.elector.run(async ({ signal }) => {
      await delay(200, undefined, { signal }).catch(() => undefined);
    }); // b leads briefly, returns, and campaigns again behind a
    await eventually(() => aFn.record.length === 1, 10_000, 'a leads again');
    expect(a.of('retry')[0]!.error).toBe(boom);
    expect(b.of('elected').length).toBeGreaterThanOrEqual(1);
    const [aFirst, bFirst] = [a.of('elected')[0]!.term!, b.of('elected')[0]!.term!];
    expect(bFirst).toBeGreaterThan(aFirst);
    expect(aFn.record[0]!.term).toBeGreaterThan(bFirst);
    await Promise.all([a.elector.stop(), b.elector.stop()]);
    await Promise.all([aRun, bRun]);
  });

  test('a callback that returns: resign and campaign again at once', async () => {
    const name = uniqueName('returns');
    const a = candidate(name, 'a');
    const terms: bigint[] = [];
    const running = a.elector.run(({ term }) => {
      terms.push(term);
    });
    await eventually(() => terms.length >= 3, 10_000, 'three terms');
    await a.elector.stop();
    await running;
    for (let i = 1; i < terms.length; i++) expect(terms[i]).toBeGreaterThan(terms[i - 1]!);
    expect(a.of('retry')).toEqual([]);
  });

  test('a campaign key deleted by an operator: the term ends (NotLeaderError), a new one starts', async () => {
    const name = uniqueName('deleted');
    const a = candidate(name, 'a');
    const fn = untilAborted();
    const running = a.elector.run(fn);
    await eventually(() => fn.record.length === 1, 10_000, 'first term');
    await fx.admin.delete().key(fn.record[0]!.leadership.key);
    await eventually(() => fn.record.length === 2, 10_000, 'second term');
    expect(fn.record[0]!.signal.reason).toBeInstanceOf(NotLeaderError);
    expect(fn.record[1]!.session).toBe(fn.record[0]!.session); // the lease was fine
    await a.elector.stop();
    await running;
  });

  test('stop() with a callback that ignores its signal: resigns after stopTimeout, resolves when it returns', async () => {
    const name = uniqueName('stubborn');
    const a = candidate(name, 'a', { stopTimeout: 300 });
    const b = candidate(name, 'b');
    let release!: () => void;
    const returned = new Promise<void>((resolve) => (release = resolve));
    const aRun = a.elector.run(() => returned);
    await eventually(() => a.elector.isLeader, 10_000, 'a leads');
    const bRun = b.elector.run(untilAborted());
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 10_000, 'b queued');
    let stopResolved = false;
    const stopping = a.elector.stop().then(() => (stopResolved = true));
    await eventually(() => b.elector.isLeader, 10_000, 'b leads after the stop timeout');
    expect(stopResolved).toBe(false);
    release();
    await stopping;
    await aRun;
    await b.elector.stop();
    await bRun;
  });

  test('run({signal}): aborting stops the elector and rejects with the reason', async () => {
    const a = candidate(uniqueName('signal'), 'a');
    const controller = new AbortController();
    const fn = untilAborted();
    const running = a.elector.run(fn, { signal: controller.signal });
    await eventually(() => fn.record.length === 1, 10_000, 'leads');
    await expect(a.elector.run(fn)).rejects.toThrow(/already running/);
    const reason = new Error('shutting down');
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    expect(a.elector.isLeader).toBe(false);
  });

  test('stop() during a campaign: the queued key is removed and run() resolves', async () => {
    const name = uniqueName('stop-queued');
    const a = candidate(name, 'a');
    const b = candidate(name, 'b');
    const aRun = a.elector.run(untilAborted());
    await eventually(() => a.elector.isLeader, 10_000, 'a leads');
    const bRun = b.elector.run(untilAborted());
    await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 10_000, 'b queued');
    await b.elector.stop();
    await bRun;
    expect((await keysUnder(fx.admin, `${name}/`)).length).toBe(1);
    expect(b.of('elected')).toEqual([]);
    await a.elector.stop();
    await aRun;
  });

  test('without options: leaderElectorDefaults — a lease of 10 s from etcd — and the host-pid identity', async () => {
    const name = uniqueName('defaults');
    const elector = new LeaderElector(fx.etcd.client(), name);
    expect(elector.ttl).toBe(leaderElectorDefaults.ttl);
    const fn = untilAborted();
    const running = elector.run(fn);
    await eventually(() => fn.record.length === 1, 10_000, 'elected');
    const { session, leadership } = fn.record[0]!;
    expect(Number((await fx.admin.leaseClient.leaseTimeToLive({ ID: session.leaseId })).grantedTTL)).toBe(leaderElectorDefaults.ttl);
    expect(await fx.admin.get(leadership.key).string()).toBe(elector.identity);
    await elector.stop();
    await running;
  });

  test('`await using` an elector stops it at the end of the scope: the callback ends, the key and the lease are gone', async () => {
    const name = uniqueName('dispose');
    const fn = untilAborted();
    let running: Promise<void> | undefined;
    let elector: LeaderElector | undefined;
    {
      await using scoped = new LeaderElector(fx.etcd.client(), name, { identity: 'scoped', ttl: 10 });
      elector = scoped;
      running = scoped.run(fn);
      await eventually(() => fn.record.length === 1, 10_000, 'elected');
      expect(await keysUnder(fx.admin, `${name}/`)).toEqual([fn.record[0]!.leadership.key]);
    }
    // Disposal awaited the stop: all of this is already true when the scope is left.
    const context = fn.record[0]!;
    expect(context.signal.aborted).toBe(true);
    expect(context.signal.reason).toBeInstanceOf(NotLeaderError);
    expect(elector.isLeader).toBe(false);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
    expect(Number((await fx.admin.leaseClient.leaseTimeToLive({ ID: context.session.leaseId })).TTL)).toBe(-1);
    await running;
    await expect(elector.run(fn)).rejects.toThrow(/stopped/);
  });

  test('inputs are validated with TypeErrors that name the value', async () => {
    const client = fx.etcd.client();
    expect(() => new LeaderElector({} as Etcd3, 'x')).toThrow(/Expected `client`/);
    expect(() => new LeaderElector(client, '')).toThrow(/Expected `name` of LeaderElector/);
    expect(() => new LeaderElector(client, 'x', { ttl: 0.5 })).toThrow(/Expected `ttl` to be an integer, got `0.5`/);
    expect(() => new LeaderElector(client, 'x', { identity: 7 as unknown as string })).toThrow(/`identity`.*got `7`/);
    expect(() => new LeaderElector(client, 'x', { stopTimeout: -1 })).toThrow(/`stopTimeout`.*got `-1`/);
    expect(() => new LeaderElector(client, 'x', { backoff: {} as ConstantBackoff })).toThrow(/`backoff`/);
    const elector = new LeaderElector(client, 'x');
    expect(elector.identity).toMatch(/-\d+$/);
    // `identity: process.env['HOSTNAME']` outside Kubernetes is undefined: the default applies.
    expect(new LeaderElector(client, 'x', { identity: undefined }).identity).toBe(elector.identity);
    await expect(elector.run('nope' as unknown as () => void)).rejects.toThrow(/Expected `fn` of LeaderElector.run/);
  });
});

describe('examples/leader-elector.ts', () => {
  test('SIGTERM to the leader process: it stops its work, resigns, exits 0, and the next replica leads within ~1 s', async () => {
    const name = uniqueName('k8s');
    const child = spawn(process.execPath, ['--conditions=leasehold-source', '--import', 'tsx', join(root, 'examples', 'leader-elector.ts')], {
      cwd: root,
      env: { ...process.env, ETCD_ENDPOINTS: fx.etcd.endpoints.join(','), ELECTION: name, IDENTITY: 'replica-1', LIFETIME_MS: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const b = candidate(name, 'replica-2');
    let bRun: Promise<void> | undefined;
    try {
      await eventually(() => out.includes('"event":"elected"') && out.includes('"event":"listening"'), 30_000, 'child leads');
      const port = (
        out
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { event: string; port?: number })
          .find((e) => e.event === 'listening')!
      ).port;
      const ready = await fetch(`http://127.0.0.1:${port}/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ leader: 'replica-1' });
      bRun = b.elector.run(untilAborted());
      await eventually(async () => (await keysUnder(fx.admin, `${name}/`)).length === 2, 10_000, 'replica-2 queued');
      const t0 = performance.now();
      child.kill('SIGTERM');
      await eventually(() => b.elector.isLeader, 10_000, 'replica-2 leads');
      const handover = performance.now() - t0;
      console.log(`handover after SIGTERM: ${handover.toFixed(0)} ms (TTL 10 s)`);
      expect(handover).toBeLessThan(3000);
      expect(await exited).toBe(0);
      expect(out).toContain('"event":"stopping"');
      expect(out).toContain('"event":"stopped"');
      expect(out).toMatch(/"event":"demoted".*"reason":"NotLeaderError"/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await b.elector.stop();
      await bRun;
    }
  }, 60_000);
});
