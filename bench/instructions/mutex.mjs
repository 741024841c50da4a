/**
 * A contended Mutex end to end (engine, watch hub, keep-alive, codec, transport) for
 * bench/instructions/run.sh: `node bench/instructions/mutex.mjs <etcd3|h2> <workers> <acquisitions>`
 * against the etcd at $ETCD (host:port), on the built dist/. Every worker is its own etcd3 client and
 * Session (as in `npm run bench`), looping lock → release on one name. It warms up ($WARM
 * acquisitions, default 400), prints READY, waits for the file $GATE (callgrind's instrumentation
 * goes on meanwhile), runs the acquisitions and exits.
 *
 * $ALLOC=1 instead samples the heap allocations of the measured acquisitions (V8's sampling heap
 * profiler, objects collected by either GC included) and prints bytes per acquisition and the top
 * allocating frames. `--cpu-prof` works as usual (it covers the warm-up too).
 */
import { Etcd3 } from 'etcd3';
import { Mutex, Session } from '../../dist/index.js';

const [transport, workersArg, nArg] = process.argv.slice(2);
const workers = Number(workersArg);
const n = Number(nArg);
const hosts = [process.env.ETCD];
const name = `cg/mutex-${process.pid}`;
const clients = [];
const mutexes = [];
const sessions = [];
for (let i = 0; i < workers; i++) {
  const client = new Etcd3({ hosts, grpcOptions: { 'grpc.use_local_subchannel_pool': 1 } });
  const session = await Session.create(client, { ttl: 30, transport });
  clients.push(client);
  sessions.push(session);
  mutexes.push(new Mutex(session, name));
}

async function run(count) {
  let done = 0;
  await Promise.all(
    mutexes.map(async (mutex) => {
      while (done < count) {
        const handle = await mutex.lock();
        done++;
        await handle.release();
      }
    }),
  );
  return done;
}

/** etcd's count of unary requests handled (every method and code), from its /metrics. */
async function unaryRequests() {
  const text = await (await fetch(`http://${process.env.ETCD}/metrics`)).text();
  return [...text.matchAll(/^grpc_server_handled_total\{[^}]*grpc_type="unary"[^}]*\} (\S+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
}

await run(Number(process.env.WARM ?? 400));
const requestsBefore = await unaryRequests();
if (process.env.GATE) {
  const { existsSync } = await import('node:fs');
  console.log('READY');
  while (!existsSync(process.env.GATE)) await new Promise((r) => setTimeout(r, 50));
}
let profiler;
if (process.env.ALLOC) {
  const { Session: Inspector } = await import('node:inspector/promises');
  profiler = new Inspector();
  profiler.connect();
  await profiler.post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
const before = process.cpuUsage();
const t0 = performance.now();
const done = await run(n);
const used = process.cpuUsage(before);
const requests = (await unaryRequests()) - requestsBefore;
console.error(`requests, ${(requests / done).toFixed(2)} unary requests per acquisition`);
console.error(`cpu ${transport} mutex x${workers} ${((used.user + used.system) / done).toFixed(0)} µs/acquisition (${done}) [user ${(used.user / done).toFixed(0)}, system ${(used.system / done).toFixed(0)}], ${(done / ((performance.now() - t0) / 1000)).toFixed(0)} acquisitions/s`);
if (profiler) {
  const { profile } = await profiler.post('HeapProfiler.stopSampling');
  const bySite = new Map();
  let total = 0;
  const walk = (node, stack) => {
    const frame = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.replace(/^.*\/(node_modules\/|dist\/)/, '$1')}:${node.callFrame.lineNumber + 1}`;
    const self = node.selfSize;
    total += self;
    if (self > 0) bySite.set(frame, (bySite.get(frame) ?? 0) + self);
    for (const child of node.children) walk(child, stack);
  };
  walk(profile.head, []);
  console.error(`alloc ${transport} mutex x${workers} ${(total / done / 1024).toFixed(1)} KiB/acquisition (sampled)`);
  for (const [frame, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 25))) {
    console.error(`  ${(bytes / done).toFixed(0).padStart(7)} B/acq  ${frame}`);
  }
}
if (process.env.GATE) process.exit(0); // callgrind counts until exit: not the cleanup
await Promise.all(sessions.map((s) => s.close()));
for (const c of clients) c.close();
process.exit(0);
