// leasehold/prometheus's gauges against a real etcd, registered when the process is already busy:
// after holdings, waits and leaderships began, after an earlier registration was removed, beside a
// second registration and beside OpenTelemetry. A gauge must read what the process holds and waits
// for now, whoever else subscribed and whenever it did — never a count of the events it happened to see.
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, test } from 'vitest';
import { Election, Mutex, type Session } from '../../src/index.js';
import { instrumentLeasehold } from '../../src/opentelemetry.js';
import { registerLeaseholdMetrics } from '../../src/prometheus.js';
import { etcdForFile } from '../fixture.js';
import { scraped, uniqueName } from '../helpers.js';

const fx = etcdForFile(5);
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Who else listened before the gauges were registered. */
const earlier = {
  nobody: () => undefined,
  'OpenTelemetry': () => {
    const exporter = new InMemorySpanExporter();
    const instrumentation = instrumentLeasehold({ tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }) });
    cleanups.push(() => instrumentation.disable());
  },
  'a registration, since removed': () => {
    const metrics = registerLeaseholdMetrics(new Registry());
    return () => metrics.unregister();
  },
} satisfies Record<string, () => (() => void) | undefined>;

async function queued(session: Session, name: string, waiters: number): Promise<void> {
  await expect.poll(async () => (await new Mutex(session, name).waiters()).length, { timeout: 5000 }).toBe(waiters);
}

describe('leasehold/prometheus gauges read the state, not the events', () => {
  test.each(Object.keys(earlier) as (keyof typeof earlier)[])('registered late (earlier: %s), twice at once: held, waiting and leader status are true, and never below 0', async (who) => {
    const removeEarlier = earlier[who]();
    const name = uniqueName('late');
    const election = uniqueName('late-election');
    const a = await fx.session();
    const holder = await new Mutex(a, name).lock();
    const leadership = await new Election(a, election).campaign('me');
    const waiting = new Mutex(await fx.session(), name).lock();
    await queued(a, name, 1);
    removeEarlier?.();
    // Two registrations at once, in two registries: each reads the same state.
    const registries = [new Registry(), new Registry()];
    for (const registry of registries) {
      const metrics = registerLeaseholdMetrics(registry);
      cleanups.push(() => metrics.unregister());
    }
    const read = async (series: string) => Promise.all(registries.map(async (registry) => scraped(registry, series)));
    const held = `leasehold_held{primitive="mutex",name="${name}"}`;
    const waits = `leasehold_waiting{primitive="mutex",name="${name}"}`;
    const master = `leader_election_master_status{name="${election}"}`;
    expect(await read(held)).toEqual([1, 1]);
    expect(await read(waits)).toEqual([1, 1]);
    expect(await read(master)).toEqual([1, 1]);
    expect(await read(`leasehold_held{primitive="election",name="${election}"}`)).toEqual([1, 1]);
    await holder.release();
    const second = await waiting;
    expect(await read(held)).toEqual([1, 1]);
    expect(await read(waits)).toEqual([0, 0]);
    await second.release();
    await leadership.resign();
    // What was seen stays as a series, at 0.
    expect(await read(held)).toEqual([0, 0]);
    expect(await read(waits)).toEqual([0, 0]);
    expect(await read(master)).toEqual([0, 0]);
  });

  test('leader status: 0 while this process campaigns behind another leader, 1 while it leads, 0 after', async () => {
    const registry = new Registry();
    const metrics = registerLeaseholdMetrics(registry);
    cleanups.push(() => metrics.unregister());
    const election = uniqueName('status');
    const series = `leader_election_master_status{name="${election}"}`;
    // Another process's leadership (as `etcdctl elect` writes it: a key on a lease of its own).
    const { ID: otherLease } = await fx.admin.leaseClient.leaseGrant({ TTL: 30 });
    await fx.admin.put(`${election}/${BigInt(otherLease).toString(16)}`).value('another process').lease(otherLease);
    const campaigning = new Election(await fx.session(), election).campaign('me');
    // The campaign registers its wait when it starts; on a loaded machine the first scrape may come first.
    await expect.poll(async () => scraped(registry, `leasehold_waiting{primitive="election",name="${election}"}`)).toBe(1);
    expect(await scraped(registry, series)).toBe(0);
    await fx.admin.leaseClient.leaseRevoke({ ID: otherLease });
    const leadership = await campaigning;
    expect(await scraped(registry, series)).toBe(1);
    await leadership.resign();
    expect(await scraped(registry, series)).toBe(0);
  });

  test('a session registered late has its validity at once, and it is the validity left at the scrape', async () => {
    const s = await fx.session(30); // a keep-alive every 10 s: none is due during the test
    const registry = new Registry();
    const metrics = registerLeaseholdMetrics(registry);
    cleanups.push(() => metrics.unregister());
    const series = `leasehold_session_validity_seconds{lease="${s.leaseHex}"}`;
    for (const pause of [0, 300]) {
      await new Promise((r) => setTimeout(r, pause));
      const [deadlineBefore, before] = [s.deadline, performance.now()];
      const validity = await scraped(registry, series);
      const [deadlineAfter, after] = [s.deadline, performance.now()];
      // Between the validity left when the scrape began and when it ended (a keep-alive in between
      // could only have moved the deadline later).
      expect(validity).toBeGreaterThanOrEqual((deadlineBefore - after) / 1000 - 1e-6);
      expect(validity).toBeLessThanOrEqual((deadlineAfter - before) / 1000 + 1e-6);
    }
    await s.close();
    expect(await scraped(registry, series)).toBeUndefined();
  });
});
