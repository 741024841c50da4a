// The example service of examples/kubernetes/: every replica runs a worker pool capped across the
// fleet by a Semaphore, and one replica at a time — the leader — schedules work with fenced writes.
// Both run on one SessionSource: one lease per replica, replaced by itself after an etcd stall longer
// than the TTL, so the pool and the elector work again without a restart. It serves liveness,
// readiness, Prometheus metrics and who leads, and stops cleanly on SIGTERM.
// Run: ETCD_ENDPOINTS=127.0.0.1:2379 POD_NAME=pod-a node --conditions=leasehold-source --import tsx examples/kubernetes/service.ts
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';
import { Registry } from 'prom-client';
import { LeaderElector, Semaphore, SessionSource, isLeaseLostError } from 'leasehold';
import { registerLeaseholdMetrics } from 'leasehold/prometheus';
import { defaultPort, env, names, paths, workerPermits } from './config.js';

const endpoints = (process.env[env.endpoints] ?? '127.0.0.1:2379').split(',');
const pod = process.env[env.podName] ?? `pod-${process.pid}`;
const port = Number(process.env[env.port] ?? defaultPort);
const ttl = Number(process.env[env.ttl] ?? 10);
const stopTimeout = Number(process.env[env.stopTimeout] ?? 5000);

/** One JSON line per event, stamped with the monotonic clock shared by every process on the host. */
function log(ev: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ t: process.hrtime.bigint().toString(), pod, ev, ...extra })}\n`);
}

// etcd3's per-host circuit breaker would lock a host out for 5 s after three failures: longer than a
// short lease can wait (docs/session.md, "Configuring the etcd3 client"). leasehold retries by itself.
const etcd = new Etcd3({ hosts: endpoints, faultHandling: { host: () => noop } });
const registry = new Registry();
registerLeaseholdMetrics(registry);
// One lease for the replica, kept for its whole life: a lost one is replaced at once (with backoff while
// etcd is unreachable). Calls are bounded by a third of the TTL, so one stuck on a frozen member is
// retried on another well within the lease.
const sessions = new SessionSource(etcd, { ttl, requestTimeout: Math.max(1000, (ttl * 1000) / 3) });
sessions.on('session', (s, { withoutSessionMs }) => log('session', { lease: s.leaseHex, withoutMs: Math.round(withoutSessionMs) }));
sessions.on('lost', (s, reason) => log('lost', { lease: s.leaseHex, reason: (reason as Error).name }));
const elector = new LeaderElector(etcd, names.election, { identity: pod, stopTimeout, source: sessions });
const stopping = new AbortController();

// The worker pool: two loops per replica, at most `workerPermits` busy across the whole fleet. A lease
// lost while waiting queues again on the next one (requeue); a job cut short by a loss is not re-run.
const pool = new Semaphore(sessions, names.workers, { permits: workerPermits });
async function worker(): Promise<void> {
  while (!stopping.signal.aborted) {
    try {
      const token = await pool.withPermit(
        async (permit) => {
          const signal = AbortSignal.any([permit.signal, stopping.signal]);
          await delay(100, undefined, { signal }).catch(() => signal.throwIfAborted()); // the job stops with its permit
          return permit.token;
        },
        { signal: stopping.signal, requeue: true },
      );
      log('work', { token: token.toString() });
    } catch (error) {
      if (stopping.signal.aborted) break;
      if (!isLeaseLostError(error)) log('work-failed', { error: (error as Error).name });
      await delay(200).catch(() => undefined);
    }
  }
}
const workers = [worker(), worker()];

// The leader's work: fenced writes only (a write refused after losing leadership never lands).
const leading = elector.run(async ({ signal, term, leadership }) => {
  log('elected', { term: term.toString() });
  try {
    for (let seq = 0; !signal.aborted; seq++) {
      await leadership.commit(etcd.put('example-data/last-job').value(JSON.stringify({ term: term.toString(), seq, by: pod })));
      await delay(250, undefined, { signal }).catch(() => undefined);
    }
  } catch (error) {
    if (!signal.aborted) throw error;
  } finally {
    log('term-end', { term: term.toString() });
  }
});

const liveness = elector.livenessHandler();
const readiness = elector.readinessHandler();
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (url.pathname === paths.liveness) return liveness(req, res);
  if (url.pathname === paths.readiness) return readiness(req, res);
  if (url.pathname === paths.metrics) {
    void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
    return;
  }
  if (url.pathname === paths.leader) {
    const leader = elector.leader;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(leader && { identity: leader.value, term: leader.term.toString() }));
    return;
  }
  if (url.pathname === '/debug/block' && req.method === 'POST' && process.env[env.debug] === '1') {
    const ms = Number(url.searchParams.get('ms') ?? 1000);
    res.writeHead(202).end();
    setImmediate(() => {
      const until = performance.now() + ms;
      while (performance.now() < until); // a blocked event loop, as a runaway computation would
    });
    return;
  }
  res.writeHead(404).end();
});
server.listen(port, () => log('listening', { port }));

process.once('SIGTERM', () => {
  void (async () => {
    log('stopping');
    stopping.abort();
    await elector.stop(); // resigns once the leader's work has returned: the next leader starts now
    await Promise.allSettled([leading, ...workers]);
    await sessions.close(); // revokes the lease: anything still held is released at once
    server.close();
    etcd.close();
    log('stopped');
    process.exit(0);
  })();
});
