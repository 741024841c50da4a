// A singleton worker in Kubernetes: every replica runs this; one at a time does the work. SIGTERM (a
// rolling update, a scale-down) stops the elector: the work is told to stop, the leader resigns, and
// another replica takes over one round trip later instead of one TTL later. /ready answers 200 only on
// the leader, for a Service that must route to the active replica.
//
//   ETCD_ENDPOINTS=127.0.0.1:2379 node --conditions=leasehold-source --import tsx examples/leader-elector.ts
//
// LIFETIME_MS (default 3000) makes the demo send itself SIGTERM, as the kubelet would; 0 runs until a
// real SIGTERM or SIGINT.
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { LeaderElector } from 'leasehold';

const etcd = new Etcd3({ hosts: (process.env['ETCD_ENDPOINTS'] ?? '127.0.0.1:2379').split(',') });
const identity = process.env['IDENTITY'] ?? process.env['HOSTNAME'] ?? `replica-${process.pid}`;
const elector = new LeaderElector(etcd, process.env['ELECTION'] ?? 'examples/singleton-worker', { identity, ttl: 10 });
const log = (event: string, fields: Record<string, unknown> = {}): void =>
  console.log(JSON.stringify({ event, identity, ...fields }, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));

elector.on('elected', ({ term }) => log('elected', { term }));
elector.on('demoted', ({ term, reason }) => log('demoted', { term, reason: (reason as Error).name }));
elector.on('leaderChanged', (leader) => log('leaderChanged', { leader: leader?.value ?? null }));
elector.on('retry', ({ error, delay }) => log('retry', { error: String(error), delay }));

// Readiness: 200 on the leader, 503 elsewhere.
const server = createServer((_req, res) => {
  res.writeHead(elector.isLeader ? 200 : 503, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ leader: elector.leader?.value ?? null }));
});
server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  log('listening', { port: typeof address === 'object' && address ? address.port : null });
});

// SIGTERM: stop. The kubelet's grace period (30 s by default) must exceed `stopTimeout` (5 s).
const shutdown = (): void => {
  log('stopping');
  void elector.stop();
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
const lifetime = Number(process.env['LIFETIME_MS'] ?? 3000);
const timer = lifetime > 0 ? setTimeout(() => process.kill(process.pid, 'SIGTERM'), lifetime) : undefined;

try {
  await elector.run(async ({ signal, term, leadership }) => {
    // The singleton work: here, a heartbeat that only the current leader can write (fenced by term).
    while (!signal.aborted) {
      await leadership.commit(etcd.put(`${elector.name}-heartbeat`).value(`${identity} term ${term}`));
      await sleep(200, undefined, { signal }).catch(() => undefined);
    }
  });
  log('stopped');
} finally {
  clearTimeout(timer);
  server.close();
  etcd.close();
}
