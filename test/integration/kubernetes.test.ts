// examples/kubernetes/ without a cluster: every manifest validates against the Kubernetes schemas and
// agrees with the service about ports, paths and environment; the dashboard uses exactly the metrics
// leasehold/prometheus exports; a local rolling update of three service processes against a 3-member
// etcd never has two leaders, moves leadership well under the TTL, fails liveness while the leader's
// event loop is blocked past its lease, and leaves no key behind; and the same service outlives a
// freeze of every etcd member past its leases, and a member's kill and restart, with no restart of its
// own.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { CronJob } from 'kubernetes-models/batch/v1/CronJob';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Service } from 'kubernetes-models/v1/Service';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, test } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { registerLeaseholdMetrics } from '../../src/prometheus.js';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { freePorts } from '../../src/testing/http.js';
import { HistoryRecorder } from '../fault/history.js';
import { allTerms, checkLeaders, maxBusy, ServiceProc } from '../service-proc.js';
import { defaultPort, env, names, paths, workerPermits } from '../../examples/kubernetes/config.js';

const dir = fileURLToPath(new URL('../../examples/kubernetes/', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

interface Manifest {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
}

function manifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => {
    expect(doc.errors, `${file}: ${doc.errors.join('; ')}`).toEqual([]);
    return doc.toJS() as Manifest;
  });
}

const models: Record<string, new (data: never) => { validate(): void }> = {
  Deployment: Deployment as never,
  StatefulSet: StatefulSet as never,
  Service: Service as never,
  PodDisruptionBudget: PodDisruptionBudget as never,
  CronJob: CronJob as never,
};

describe('examples/kubernetes manifests', () => {
  const all = ['etcd.yaml', 'service.yaml', 'cronjob.yaml'].flatMap((f) => manifests(f).map((m) => ({ file: f, m })));

  test('every manifest validates against the Kubernetes schemas; kustomization lists them', () => {
    expect(all.map(({ m }) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      'CronJob/nightly-report',
      'Deployment/leasehold-example',
      'PodDisruptionBudget/etcd',
      'PodDisruptionBudget/leasehold-example',
      'Service/etcd',
      'StatefulSet/etcd',
    ]);
    for (const { file, m } of all) {
      const Model = models[m.kind];
      expect(Model, `${file}: no model for ${m.kind}`).toBeDefined();
      expect(() => new Model!(m as never).validate(), `${file}: ${m.kind}/${m.metadata.name}`).not.toThrow();
    }
    const kustomization = manifests('kustomization.yaml')[0] as unknown as { resources: string[] };
    expect(kustomization.resources.sort()).toEqual(['cronjob.yaml', 'etcd.yaml', 'service.yaml']);
    for (const r of kustomization.resources) expect(existsSync(join(dir, r))).toBe(true);
  });

  test('the Deployment agrees with the service: port, probe paths, environment; grace period above stop timeout', () => {
    const deployment = all.find(({ m }) => m.kind === 'Deployment')!.m as unknown as {
      spec: { template: { metadata: { annotations: Record<string, string> }; spec: { terminationGracePeriodSeconds: number; containers: Record<string, any>[] } } };
    };
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0]!;
    expect(container['ports'][0].containerPort).toBe(defaultPort);
    expect(container['livenessProbe'].httpGet.path).toBe(paths.liveness);
    expect(container['readinessProbe'].httpGet.path).toBe(paths.readiness);
    expect(pod.metadata.annotations['prometheus.io/path']).toBe(paths.metrics);
    expect(Number(pod.metadata.annotations['prometheus.io/port'])).toBe(defaultPort);
    const vars = new Map((container['env'] as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    for (const name of [env.endpoints, env.podName, env.port, env.ttl, env.stopTimeout]) expect(vars.has(name), name).toBe(true);
    expect(Number(vars.get(env.port))).toBe(defaultPort);
    expect(vars.has(env.debug)).toBe(false); // never in production
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(Number(vars.get(env.stopTimeout)));
    // The endpoints are the StatefulSet's members behind the headless Service.
    const statefulSet = all.find(({ m }) => m.kind === 'StatefulSet')!.m as unknown as { spec: { replicas: number; serviceName: string } };
    const endpoints = vars.get(env.endpoints)!.split(',');
    expect(endpoints).toEqual(Array.from({ length: statefulSet.spec.replicas }, (_, i) => `http://etcd-${i}.${statefulSet.spec.serviceName}:2379`));
  });

  test('the Grafana dashboard queries exactly metrics that leasehold/prometheus registers', async () => {
    const dashboard = JSON.parse(readFileSync(join(dir, 'grafana-dashboard.json'), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const used = new Set(
      dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b(leasehold_[a-z_]+|leader_election_master_status)\b/g)].map((m) => m[1]!.replace(/_(bucket|count|sum)$/, '')))),
    );
    const registry = new Registry();
    const metrics = registerLeaseholdMetrics(registry);
    const registered = new Set((await registry.getMetricsAsJSON()).map((m) => m.name));
    metrics.unregister();
    expect([...used].filter((name) => !registered.has(name))).toEqual([]);
    expect(used.size).toBe(registered.size); // every metric has a panel
  });
});

describe('a local rolling update of examples/kubernetes/service.ts', () => {
  let etcd: EtcdCluster | undefined;
  const procs: ServiceProc[] = [];
  afterAll(async () => {
    for (const p of procs) p.signal('SIGKILL');
    await etcd?.stop();
  });

  test('never two leaders; each new replica ready while the old leader runs; handover well under the TTL; liveness fails on a blocked leader; no key left', async () => {
    const ttl = 3;
    etcd = await startEtcd({ members: 3 });
    const admin = etcd.client();
    const start = await admin.get('x').exec();
    // 'example' covers the coordination keys (example/…) and the leader's fenced writes (example-data/…).
    const recorder = await HistoryRecorder.start(etcd.endpoints, 'example', BigInt(start.header.revision));
    const ports = await freePorts(6); // three old replicas and three new ones
    const launch = (id: string): ServiceProc => {
      const p = new ServiceProc(id, ports.shift()!, etcd!.endpoints, ttl);
      procs.push(p);
      return p;
    };
    const leaderOf = async (): Promise<string | undefined> => {
      const res = await admin.getAll().prefix(`${names.election}/`).sort('Create', 'Ascend').limit(1).exec();
      return res.kvs[0]?.value.toString();
    };
    const olds = [launch('old-0'), launch('old-1'), launch('old-2')];
    await Promise.all(olds.map(async (p) => p.ready()));
    await expect.poll(leaderOf, { timeout: 10_000 }).toMatch(/^old-/);
    const handovers: number[] = [];
    const news: ServiceProc[] = [];
    for (let i = 0; i < 3; i++) {
      const leaderBefore = await leaderOf();
      const fresh = launch(`new-${i}`);
      await fresh.ready(); // ready while the old leader still runs and leads: readiness is not leadership
      expect(await leaderOf()).toBe(leaderBefore);
      news.push(fresh);
      // The leader goes first when it is still an old replica, so each SIGTERM to a leader is measured.
      const victim = olds.find((o) => o.id === leaderBefore) ?? olds[i]!;
      olds.splice(olds.indexOf(victim), 1);
      const wasLeader = victim.id === leaderBefore;
      const sent = performance.now();
      victim.signal('SIGTERM');
      // The handover is watched from the SIGTERM on, while the old process is still winding down.
      const handedOver = wasLeader
        ? expect.poll(leaderOf, { timeout: 10_000, interval: 20 }).not.toBe(leaderBefore).then(() => performance.now() - sent)
        : undefined;
      handedOver?.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
      expect(await victim.exited).toBe(0);
      if (handedOver) handovers.push(await handedOver);
    }
    console.log(`[rolling update] handovers after SIGTERM to the leader: ${handovers.map((h) => `${h.toFixed(0)} ms`).join(', ')} (TTL ${ttl} s)`);
    expect(handovers.length).toBeGreaterThanOrEqual(1);
    for (const h of handovers) expect(h).toBeLessThan(ttl * 1000 / 2);

    // Block the leader's event loop for longer than its lease: the liveness probe gets no answer.
    const leaderId = await leaderOf();
    const leader = news.find((p) => p.id === leaderId)!;
    expect(await leader.get(paths.liveness)).toBe(200);
    const blockedAt = process.hrtime.bigint();
    await fetch(`http://127.0.0.1:${leader.port}/debug/block?ms=${(ttl + 1) * 1000}`, { method: 'POST' });
    await delay(200);
    const probe = await leader.get(paths.liveness, 1000).catch((e: unknown) => (e as Error).name);
    expect(probe).toBe('TimeoutError'); // a kubelet with timeoutSeconds: 1 counts a failure
    await expect.poll(leaderOf, { timeout: (ttl + 5) * 1000 }).not.toBe(leaderId); // another replica took over
    await expect.poll(async () => leader.get(paths.liveness).catch(() => 0), { timeout: 10_000 }).toBe(200); // and it recovered

    for (const p of news) p.signal('SIGTERM');
    expect(await Promise.all(news.map(async (p) => p.exited))).toEqual([0, 0, 0]);
    await expect.poll(async () => admin.getAll().prefix('example/').keys(), { timeout: (ttl + 2) * 1000 }).toEqual([]);
    await recorder.seal(admin);
    recorder.close();

    // Never two leaders: the processes' own terms never overlap on the shared monotonic clock — except
    // the term whose process we froze past its lease: it cannot know it lost until it runs again, which
    // is why its writes are fenced (checked against etcd's history).
    const terms = allTerms(procs);
    const frozen = terms.find((t) => t.pod === leaderId && t.from < blockedAt && (t.to === undefined || t.to > blockedAt));
    expect(frozen, 'the frozen leader\'s term').toBeDefined();
    const writes = checkLeaders(recorder.events, terms, frozen);
    expect(writes).toBeGreaterThan(0);
    expect(maxBusy(recorder.events)).toBeLessThanOrEqual(workerPermits);
    expect(recorder.gaps()).toEqual([]);
  }, 180_000);
});

describe('examples/kubernetes/service.ts outlives etcd stalls', () => {
  let etcd: EtcdCluster | undefined;
  const procs: ServiceProc[] = [];
  afterAll(async () => {
    for (const p of procs) p.signal('SIGKILL');
    await etcd?.stop();
  });

  test('every member frozen 2 × TTL, then one killed and restarted: within TTL + 2 s of each, every replica works and a leader exists, with no restart; never two leaders, never more than `permits` busy', async () => {
    const ttl = 3;
    const bound = (ttl + 2) * 1000;
    etcd = await startEtcd({ members: 3 });
    const admin = etcd.client();
    const start = await admin.get('x').exec();
    const recorder = await HistoryRecorder.start(etcd.endpoints, 'example', BigInt(start.header.revision));
    const ports = await freePorts(3);
    const replicas = ports.map((port, i) => new ServiceProc(`r-${i}`, port, etcd!.endpoints, ttl));
    procs.push(...replicas);
    await Promise.all(replicas.map(async (p) => p.ready()));
    const leaderOf = async (): Promise<string | undefined> => {
      const res = await admin.getAll().prefix(`${names.election}/`).sort('Create', 'Ascend').limit(1).exec();
      return res.kvs[0]?.value.toString();
    };
    await expect.poll(leaderOf, { timeout: 10_000 }).toMatch(/^r-/);
    await expect.poll(() => replicas.every((p) => p.events('work').length > 0), { timeout: 10_000 }).toBe(true);

    /** Within TTL + 2 s of `since`: every replica finished a job, and a replica leads (`elected` after `since` when `newTerm`). */
    const recovered = async (since: bigint, newTerm: boolean): Promise<{ work: number[]; leader: number }> => {
      await expect.poll(() => replicas.every((p) => p.events('work', since).length > 0), { timeout: bound, interval: 20 }).toBe(true);
      const elected = (): bigint[] => replicas.flatMap((p) => p.events('elected', since));
      if (newTerm) await expect.poll(() => elected().length, { timeout: bound, interval: 20 }).toBeGreaterThan(0);
      expect(await leaderOf()).toMatch(/^r-/);
      const ms = (t: bigint): number => Number(t - since) / 1e6;
      return { work: replicas.map((p) => ms(p.events('work', since)[0]!)), leader: newTerm ? ms(elected().sort((a, b) => (a < b ? -1 : 1))[0]!) : 0 };
    };

    // Freeze every member past the replicas' leases: every replica loses its lease (and the leader its term).
    const members = etcd.members;
    await Promise.all(members.map(async (m) => m.pause()));
    const frozeAt = process.hrtime.bigint();
    await delay(2 * ttl * 1000);
    await Promise.all(members.map(async (m) => m.resume()));
    const thawedAt = process.hrtime.bigint();
    for (const p of replicas) expect(p.events('lost', frozeAt).length, `${p.id} lost its lease in the freeze`).toBeGreaterThan(0);
    const afterThaw = await recovered(thawedAt, true);
    for (const p of replicas) expect(p.events('session', thawedAt).length, `${p.id} has a new lease`).toBeGreaterThan(0);

    // Kill one member and restart it: work and leadership go on (or come back within TTL + 2 s).
    const victim = members[1]!;
    await victim.kill();
    await delay(1000);
    await victim.restart();
    const restartedAt = process.hrtime.bigint();
    const afterRestart = await recovered(restartedAt, false);
    console.log(
      `[stalls] after the thaw: first job per replica ${afterThaw.work.map((w) => `${w.toFixed(0)} ms`).join(', ')}, new leader ${afterThaw.leader.toFixed(0)} ms; ` +
        `after the member restart: first job ${afterRestart.work.map((w) => `${w.toFixed(0)} ms`).join(', ')} (TTL ${ttl} s)`,
    );
    expect(await Promise.all(replicas.map(async (p) => p.get(paths.liveness)))).toEqual([200, 200, 200]); // never restarted, never unhealthy

    for (const p of replicas) p.signal('SIGTERM');
    expect(await Promise.all(replicas.map(async (p) => p.exited))).toEqual([0, 0, 0]);
    await expect.poll(async () => admin.getAll().prefix('example/').keys(), { timeout: bound }).toEqual([]);
    await recorder.seal(admin);
    recorder.close();
    checkLeaders(recorder.events, allTerms(replicas));
    expect(maxBusy(recorder.events)).toBe(workerPermits); // the pool was full, and never over
    expect(recorder.gaps()).toEqual([]);
  }, 180_000);
});

describe('examples/kubernetes/cronjob.yaml, run locally', () => {
  let etcd: EtcdCluster | undefined;
  afterAll(async () => {
    await etcd?.stop();
  });

  test('its script, started twice at once (an overlapping run): one does the work, the other skips and succeeds', async () => {
    etcd = await startEtcd();
    const [cron] = manifests('cronjob.yaml') as unknown as { spec: { jobTemplate: { spec: { template: { spec: { containers: { command: string[]; args: string[]; env: { name: string; value: string }[] }[]; terminationGracePeriodSeconds: number } } } } } }[];
    const container = cron!.spec.jobTemplate.spec.template.spec.containers[0]!;
    const script = container.args[0]!;
    expect(container.command).toEqual(['/bin/sh', '-c']);
    // The same endpoints as the service, and a grace period above --kill-grace.
    const deployment = manifests('service.yaml').find((m) => m.kind === 'Deployment') as unknown as { spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } } };
    const endpointsOf = (vars: { name: string; value?: string }[]): string | undefined => vars.find((v) => v.name === 'ETCD_ENDPOINTS')?.value;
    expect(endpointsOf(container.env)).toBe(endpointsOf(deployment.spec.template.spec.containers[0]!.env));
    const grace = /--kill-grace (\d+)s/.exec(script);
    expect(Number(grace?.[1]) * 1000).toBeLessThan(cron!.spec.jobTemplate.spec.template.spec.terminationGracePeriodSeconds * 1000);

    // `leasehold` on PATH, as the image's wrapper provides it.
    const bin = mkdtempSync(join(tmpdir(), 'leasehold-bin-'));
    writeFileSync(join(bin, 'leasehold'), `#!/bin/sh\nexec "${process.execPath}" --conditions=leasehold-source --import tsx "${join(root, 'src/cli/main.ts')}" "$@"\n`, { mode: 0o755 });
    // The work lasts 20 s, twice the script's --timeout 10s: the run that waits gives up while the other still works, even when its CLI starts seconds late.
    const runJob = (): Promise<{ code: number | null; output: string }> =>
      new Promise((resolve) => {
        const child = spawn('/bin/sh', ['-c', script], {
          cwd: root,
          env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, ETCD_ENDPOINTS: etcd!.endpoints.join(','), REPORT_SECONDS: '20' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.once('exit', (code) => resolve({ code, output }));
      });
    try {
      const runs = await Promise.all([runJob(), runJob()]);
      expect(runs.map((r) => r.code)).toEqual([0, 0]);
      const worked = runs.filter((r) => r.output.includes('nightly report: done'));
      const skipped = runs.filter((r) => r.output.includes('another run holds nightly-report; skipping'));
      expect({ worked: worked.length, skipped: skipped.length }, runs.map((r) => r.output).join('\n---\n')).toEqual({ worked: 1, skipped: 1 });
      expect(worked[0]!.output).toMatch(/running with fencing token \d+/);
      const client = etcd.client();
      expect(await client.getAll().prefix('nightly-report/').keys()).toEqual([]);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  }, 60_000);
});
