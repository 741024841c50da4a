// Fault scenario 17: a starved CPU. Mutex and Semaphore workloads run while two busy-loop processes
// take both cores (the machine has 2). Leases may honestly be lost and everything slows down, but the
// checker must find no violation, and every error a client saw must be a leasehold error or its own
// abort reason: no etcd3 breaker error, no raw gRPC error, no crash.
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startEtcd } from '../../src/testing/index.js';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, test } from 'vitest';
import { describe as describeCheck } from './checker.js';
import { isOk, scenarioPerTest, startAll } from './harness.js';
import type { ClientConfig } from './protocol.js';

const TTL = 5;

describe('a starved CPU', { timeout: 120_000 }, () => {
  const start = scenarioPerTest();
  const burners: ReturnType<typeof spawn>[] = [];
  // Registered after the scenario's: runs first, so the scenario ends on an idle CPU.
  afterEach(() => {
    for (const b of burners.splice(0)) b.kill('SIGKILL');
  });

  test('17. Mutex and Semaphore under two busy loops: no violation; every error a leasehold error or the caller\'s abort', async () => {
    const s = await start('17-starvation', { ttl: TTL });
    const sem = { lock: `${s.prefix}sem`, counter: `${s.prefix}sem-counter` };
    const base: Partial<ClientConfig> = { mode: 'loop', renew: true, waitStart: true, holdMs: 20, acquireTimeoutMs: 4000 };
    const clients = [
      ...Array.from({ length: 5 }, (_, i) => s.spawn(`m${i}`, { ...base, kind: 'mutex' })),
      ...Array.from({ length: 5 }, (_, i) => s.spawn(`s${i}`, { ...base, ...sem, kind: 'semaphore', permits: 2, effectRetries: 20 })),
    ];
    await startAll(clients);
    await delay(1000);
    const starving = s.fault('starve', { burners: 2 });
    for (let i = 0; i < 2; i++) burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    await delay(12_000);
    for (const b of burners.splice(0)) b.kill('SIGKILL');
    s.fault('fed');
    await delay(2000);
    // Timers and logging run late on a starved CPU, as in a pause: a loss may be logged up to 3 s late.
    const lossSlackNs = 3_000_000_000n;
    const mutex = await s.finish({ only: (c) => c === 'parent' || c.startsWith('m'), lossSlackNs });
    const semaphore = await s.finish({
      only: (c) => c === 'parent' || c.startsWith('s'),
      lockPrefix: `${sem.lock}/`,
      counterKey: sem.counter,
      holderPrefix: `${sem.lock}/holders/`,
      permits: 2,
      lossSlackNs,
    });
    const during = s.find((l) => isOk('acquire')(l) && BigInt(l.t) > BigInt(starving.t));
    const failures = s.find((l) => l.ev === 'fail' && (l.op === 'acquire' || l.op === 'release'));
    const foreign = failures.filter((l) => l['leasehold'] !== true);
    const crashes = s.find((l) => l.ev === 'info' && l.op === 'error');
    console.log(
      `[fault 17] acquisitions while starved ${during.length}; failures ${failures.length} (${[...new Set(failures.map((l) => String(l.err).split(':')[0]))].join(', ') || 'none'}); ` +
        `lost ${s.find((l) => l.ev === 'lost').length}\nmutex: ${describeCheck(mutex)}\nsemaphore: ${describeCheck(semaphore)}`,
    );
    expect(mutex.violations, describeCheck(mutex)).toEqual([]);
    expect(semaphore.violations, describeCheck(semaphore)).toEqual([]);
    expect(foreign.map((l) => `${l.c} ${l.op}: ${String(l.err)}`)).toEqual([]);
    expect(crashes.map((l) => `${l.c}: ${String(l.err)}`)).toEqual([]);
    expect(during.length, 'work went on while starved').toBeGreaterThan(0);
    expect(mutex.maxConcurrent).toBeLessThanOrEqual(1);
    expect(semaphore.maxConcurrent).toBeLessThanOrEqual(2);
  });

  test('17b. 50 Sessions in one process on one etcd3 client (the etcd3 transport, breakers on) under two busy loops: only leasehold errors, no crash', async () => {
    await using etcd = await startEtcd();
    for (let i = 0; i < 2; i++) burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    const script = fileURLToPath(new URL('../processes/many-sessions.ts', import.meta.url));
    const run = await promisify(execFile)(process.execPath, ['--conditions=leasehold-source', '--import', 'tsx', script, etcd.endpoints.join(','), '10000'], {
      timeout: 60_000,
      env: { ...process.env, LEASEHOLD_TRANSPORT: 'etcd3' }, // etcd3's breakers are what once escaped
    }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
    for (const b of burners.splice(0)) b.kill('SIGKILL');
    console.log(`[fault 17b] exit ${run.code}; ${run.stdout.trim()}${run.stderr ? `\n${run.stderr.slice(0, 2000)}` : ''}`);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { cycles: number; errors: Record<string, { count: number; leasehold: boolean }> };
    expect(report.cycles).toBeGreaterThan(0);
    expect(Object.entries(report.errors).filter(([, e]) => !e.leasehold).map(([name]) => name)).toEqual([]);
  });
});
