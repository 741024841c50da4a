// leasehold/prometheus and leasehold/opentelemetry against a real etcd: the registry is scraped after
// real acquisitions, releases, a lost session and a leader change; spans go to the SDK's in-memory
// exporter.
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, test } from 'vitest';
import { Barrier, Election, LeaseLostError, Mutex, Semaphore } from '../../src/index.js';
import { instrumentLeasehold } from '../../src/opentelemetry.js';
import { registerLeaseholdMetrics } from '../../src/prometheus.js';
import { etcdForFile } from '../fixture.js';
import { scraped, uniqueName } from '../helpers.js';

const fx = etcdForFile(5);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('leasehold/prometheus', () => {
  test('acquisitions, waits, holds, losses, keep-alives and leadership, as scraped', async () => {
    const registry = new Registry();
    const metrics = registerLeaseholdMetrics(registry);
    cleanups.push(() => metrics.unregister());
    const name = uniqueName('prom');
    const labels = (extra = '') => `{primitive="mutex",name="${name}"${extra}}`;
    const a = await fx.session(2);
    const holder = await new Mutex(a, name).lock();
    expect(await scraped(registry, `leasehold_held${labels()}`)).toBe(1);
    const waiting = new Mutex(await fx.session(), name).lock();
    await expect.poll(async () => scraped(registry, `leasehold_waiting${labels()}`)).toBe(1);
    await holder.release();
    const second = await waiting;
    expect(await scraped(registry, `leasehold_waiting${labels()}`)).toBe(0);
    await second.release();
    expect(await scraped(registry, `leasehold_acquisitions_total${labels(',outcome="granted"')}`)).toBe(2);
    expect(await scraped(registry, `leasehold_held${labels()}`)).toBe(0);
    expect(await scraped(registry, `leasehold_hold_seconds_count${labels(',outcome="released"')}`)).toBe(2);
    expect(await scraped(registry, `leasehold_acquire_wait_seconds_count${labels(',outcome="granted"')}`)).toBe(2);
    // A lost session: its holding ends as lost, the loss is counted, its validity series goes.
    await expect.poll(async () => scraped(registry, `leasehold_session_validity_seconds{lease="${a.leaseHex}"}`), { timeout: 3000 }).toBeGreaterThan(0.5);
    const doomed = await new Mutex(a, `${name}-lost`).lock();
    await fx.admin.leaseClient.leaseRevoke({ ID: a.leaseId });
    await expect.poll(() => doomed.signal.aborted, { timeout: 5000 }).toBe(true);
    expect(doomed.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(await scraped(registry, 'leasehold_sessions_lost_total')).toBe(1);
    expect(await scraped(registry, `leasehold_hold_seconds_count{primitive="mutex",name="${name}-lost",outcome="lost"}`)).toBe(1);
    expect(await scraped(registry, `leasehold_session_validity_seconds{lease="${a.leaseHex}"}`)).toBeUndefined();
    expect(await scraped(registry, 'leasehold_keepalive_round_trip_seconds_count')).toBeGreaterThan(0);
    // A closed session's validity series goes too (else every LeaderElector term would leave one).
    const closing = await fx.session(2);
    await expect.poll(async () => scraped(registry, `leasehold_session_validity_seconds{lease="${closing.leaseHex}"}`), { timeout: 3000 }).toBeGreaterThan(0.5);
    await closing.close();
    expect(await scraped(registry, `leasehold_session_validity_seconds{lease="${closing.leaseHex}"}`)).toBeUndefined();
    // A leader change: client-go's gauge.
    const election = uniqueName('prom-election');
    const leadership = await new Election(await fx.session(), election).campaign('me');
    expect(await scraped(registry, `leader_election_master_status{name="${election}"}`)).toBe(1);
    await leadership.resign();
    expect(await scraped(registry, `leader_election_master_status{name="${election}"}`)).toBe(0);
    // A raised barrier is held until it is lowered; raising one that is up is busy.
    const barrierName = uniqueName('prom-barrier');
    const barrier = (s: Awaited<ReturnType<typeof fx.session>>) => new Barrier(s, barrierName);
    const raised = await barrier(await fx.session()).hold();
    expect(await barrier(await fx.session()).hold()).toBeNull();
    const barrierLabels = (extra = '') => `{primitive="barrier",name="${barrierName}"${extra}}`;
    expect(await scraped(registry, `leasehold_held${barrierLabels()}`)).toBe(1);
    expect(await scraped(registry, `leasehold_acquisitions_total${barrierLabels(',outcome="busy"')}`)).toBe(1);
    await raised!.release();
    expect(await scraped(registry, `leasehold_held${barrierLabels()}`)).toBe(0);
    expect(await scraped(registry, `leasehold_hold_seconds_count${barrierLabels(',outcome="released"')}`)).toBe(1);
  });

  test('the name label can be mapped or turned off; unregister removes everything', async () => {
    const mapped = new Registry();
    const m1 = registerLeaseholdMetrics(mapped, { names: (n) => n.split('/')[0]! });
    const name = `${uniqueName('tenant')}/jobs/1`;
    const sem = new Semaphore(await fx.session(), name, { permits: 2 });
    await (await sem.acquire()).release();
    expect(await scraped(mapped, `leasehold_acquisitions_total{primitive="semaphore",name="${name.split('/')[0]}",outcome="granted"}`)).toBe(1);
    m1.unregister();
    expect((await mapped.metrics()).trim()).toBe('');
    const bare = new Registry();
    const m2 = registerLeaseholdMetrics(bare, { names: false });
    cleanups.push(() => m2.unregister());
    await (await sem.acquire()).release();
    expect(await scraped(bare, 'leasehold_acquisitions_total{primitive="semaphore",outcome="granted"}')).toBe(1);
    expect(() => registerLeaseholdMetrics(new Registry(), { names: 'yes' as never })).toThrow(TypeError);
  });
});

/** instrumentLeasehold() with spans going to an in-memory exporter; disabled after the test. */
function instrumented() {
  const exporter = new InMemorySpanExporter();
  const instrumentation = instrumentLeasehold({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) });
  cleanups.push(() => instrumentation.disable());
  return { exporter, instrumentation };
}

describe('leasehold/opentelemetry', () => {
  test('waits are spans with their attributes; a wait lost with its lease has an event and status ERROR', async () => {
    const { exporter, instrumentation } = instrumented();
    const name = uniqueName('otel');
    const s = await fx.session();
    const lock = await new Mutex(s, name).lock();
    const leadership = await new Election(s, `${name}-e`).campaign('v');
    const doomed = await fx.session(2);
    const lostWait = new Mutex(doomed, name).lock();
    await new Promise((r) => setTimeout(r, 100));
    await fx.admin.leaseClient.leaseRevoke({ ID: doomed.leaseId });
    await expect(lostWait).rejects.toBeInstanceOf(LeaseLostError);
    await Promise.all([lock.release(), leadership.resign()]);
    const spans = exporter.getFinishedSpans();
    const acquire = spans.find((sp) => sp.name === 'leasehold.acquire' && sp.attributes['leasehold.outcome'] === 'granted');
    expect(acquire?.attributes).toMatchObject({
      'leasehold.primitive': 'mutex',
      'leasehold.name': name,
      'leasehold.lease': s.leaseHex,
      'leasehold.blocking': true,
      'leasehold.token': lock.token.toString(),
    });
    const campaign = spans.find((sp) => sp.name === 'leasehold.campaign');
    expect(campaign?.attributes['leasehold.token']).toBe(leadership.term.toString());
    const lost = spans.find((sp) => sp.name === 'leasehold.acquire' && sp.attributes['leasehold.outcome'] === 'lost');
    expect(lost?.events.map((e) => e.name)).toContain('leasehold.lease_lost');
    expect(lost?.status.code).toBe(2); // ERROR
    expect(spans.find((sp) => sp.name === 'leasehold.session_lost')?.attributes['leasehold.lease']).toBe(doomed.leaseHex);
    instrumentation.disable();
    exporter.reset();
    await (await new Mutex(s, name).lock()).release();
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  test('disable() ends the spans of waits still in progress, saying so, and exports them', async () => {
    const { exporter, instrumentation } = instrumented();
    const name = uniqueName('otel-disable');
    const holder = await new Mutex(await fx.session(), name).lock();
    const waiter = await fx.session();
    const waiting = new Mutex(waiter, name).lock();
    await expect.poll(async () => (await new Mutex(holder.session, name).waiters()).length, { timeout: 5000 }).toBe(1);
    expect(exporter.getFinishedSpans()).toHaveLength(1); // the holder's
    instrumentation.disable();
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(2);
    expect(spans[1]).toMatchObject({
      name: 'leasehold.acquire',
      attributes: { 'leasehold.name': name, 'leasehold.lease': waiter.leaseHex, 'leasehold.instrumentation_disabled': true },
    });
    expect(spans[1]!.attributes['leasehold.outcome']).toBeUndefined(); // not known yet: the wait goes on
    await holder.release();
    await (await waiting).release();
    expect(exporter.getFinishedSpans()).toHaveLength(2);
  });
});
