/**
 * One client of bench/instructions/run.sh: `node bench/instructions/client.mjs <etcd3|h2>
 * <range|txn|inflight|watch> <n>` against the etcd at $ETCD (host:port), on the built dist/. It warms
 * up ($WARM requests, default 500: past V8's tier-up), prints READY, waits for the file $GATE (the
 * driver turns callgrind's instrumentation on meanwhile), runs the workload n times and exits.
 * The workloads are bench/transport.ts's.
 */
import { Etcd3 } from 'etcd3';
import { H2Transport } from '../../dist/transport/h2/transport.js';
import { openWatch, unary } from '../../dist/transport/etcd3/pool.js';
const [impl, workload, nArg] = process.argv.slice(2);
const n = Number(nArg);
const host = process.env.ETCD;
const key = Buffer.from('cg/read');
const timeoutMs = 60_000;
let range, txn, watchCycle;
const prefix = `cg/${process.pid}/`;
if (impl === 'h2') {
  const t = new H2Transport({ hosts: [host] });
  const lease = (await t.leaseGrant(600, { timeoutMs })).id;
  let wake;
  const stream = await t.watch({ message: (res) => wake?.(res), end: () => {} });
  const next = (id, created) => new Promise((r) => (wake = (res) => { if (res.watchId === id && res.created === created && !res.canceled) r(res); }));
  range = () => t.range({ key, serializable: true }, { timeoutMs });
  txn = (i) => { const k = Buffer.from(`${prefix}${i}`); return t.txn({ compare: [{ key: k, target: 'create', result: 'equal', createRevision: 0n }], success: [{ range: { key: Buffer.from(prefix), rangeEnd: Buffer.from(`${prefix.slice(0, -1)}0`), sortTarget: 'create', sortOrder: 'descend', limit: 1, keysOnly: true } }, { put: { key: k, value: Buffer.alloc(0), lease } }], failure: [{ range: { key: k } }] }, { timeoutMs }); };
  watchCycle = async (i) => { const k = Buffer.from(`${prefix}w${i}`); let p = next(i + 1, true); stream.send({ create: { key: k, watchId: i + 1 } }); await p; p = next(i + 1, false); await t.txn({ compare: [], success: [{ put: { key: k, value: Buffer.from('x') } }] }, { timeoutMs }); await p; stream.send({ cancel: { watchId: i + 1 } }); };
} else {
  const client = new Etcd3({ hosts: [host] });
  const ns = client.namespace('');
  const lease = (await unary(ns, { service: 'Lease', method: 'leaseGrant' }, { TTL: 600 }, { deadline: Date.now() + timeoutMs })).ID;
  const call = (method, payload) => unary(ns, { service: 'KV', method }, payload, { deadline: Date.now() + timeoutMs });
  const { stream } = await openWatch(ns);
  let wake;
  stream.on('data', (res) => wake?.(res));
  const next = (id, created) => new Promise((r) => (wake = (res) => { if (res.watch_id === String(id) && res.created === created && !res.canceled) r(res); }));
  range = () => call('range', { key, serializable: true });
  txn = (i) => { const k = Buffer.from(`${prefix}${i}`); return call('txn', { compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: '0' }], success: [{ request_range: { key: Buffer.from(prefix), range_end: Buffer.from(`${prefix.slice(0, -1)}0`), sort_target: 'Create', sort_order: 'Descend', limit: 1, keys_only: true } }, { request_put: { key: k, value: Buffer.alloc(0), lease } }], failure: [{ request_range: { key: k } }] }); };
  watchCycle = async (i) => { const k = Buffer.from(`${prefix}w${i}`); let p = next(i + 1, true); stream.write({ create_request: { key: k, start_revision: 0, watch_id: String(i + 1) } }); await p; p = next(i + 1, false); await call('txn', { compare: [], success: [{ request_put: { key: k, value: Buffer.from('x') } }] }); await p; stream.write({ cancel_request: { watch_id: String(i + 1) } }); };
}
const run = { range: async (i) => range(), txn: (i) => txn(i), inflight: async () => Promise.all(Array.from({ length: 20 }, () => range())), watch: (i) => watchCycle(i) }[workload];
for (let i = 0; i < Number(process.env.WARM ?? 500); i++) await run(100000 + i); // warm (past V8's tier-up)
// Collection starts when the driver says so (callgrind_control -i on), after warm-up.
if (process.env.GATE) {
  const { existsSync } = await import('node:fs');
  console.log('READY');
  while (!existsSync(process.env.GATE)) await new Promise((r) => setTimeout(r, 50));
}
const before = process.cpuUsage();
for (let i = 0; i < n; i++) await run(i);
const used = process.cpuUsage(before);
console.error(`cpu ${impl} ${workload} ${((used.user + used.system) / n).toFixed(0)} µs/op`);
process.exit(0);
