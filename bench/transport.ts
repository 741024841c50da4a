/**
 * `npm run bench:transport`: client CPU per request of leasehold's two ways to talk to etcd — the
 * `etcd3` path it uses today (the raw gRPC clients of etcd3's pool, `transport/pool.ts`) and the lean
 * HTTP/2 transport (`transport/h2/`) — on the same etcd, in the same process, rounds interleaved.
 * CPU time (`process.cpuUsage()`, user + system) rather than wall time: the machine is shared.
 *
 *   sequential serializable Range     one key, one call at a time
 *   sequential Txn (a lock's join)    put-if-absent of a fresh key on a lease + a limit-1 range
 *   20 Range in flight                batches of 20 concurrent reads, per read
 *   watch create → event → cancel     on one open stream: create, a put (a Txn), its event, cancel
 *
 * Options: --rounds N (default 5), --ops N per workload and round (default 400). Prints µs per request,
 * the median of the rounds. On a loaded machine CPU time still moves with the load (contention costs
 * cycles too); `npm run bench:instructions` counts instructions instead (bench/instructions/).
 */
import { Etcd3, type IWatchResponse, type Namespace } from 'etcd3';
import { startEtcd } from '../src/testing/index.js';
import { openWatch, unary } from '../src/transport/etcd3/pool.js';
import { closeStream } from '../src/transport/etcd3/streams.js';
import { H2Transport } from '../src/transport/h2/transport.js';
import type { TxnRequest, WatchResponse } from '../src/transport/messages.js';

interface Impl {
  name: string;
  range(): Promise<unknown>;
  join(i: number): Promise<unknown>;
  watchCycle(i: number): Promise<void>;
  close(): void;
}

const timeoutMs = 5000;
const prefix = `bench-transport/${process.pid}/`;
const readKey = Buffer.from(`${prefix}read`);

function joinTxn(key: Buffer, lease: string): TxnRequest {
  const queue = Buffer.from(prefix);
  return {
    compare: [{ key, target: 'create', result: 'equal', createRevision: 0n }],
    success: [
      { range: { key: queue, rangeEnd: Buffer.from(`${prefix.slice(0, -1)}0`), sortTarget: 'create', sortOrder: 'descend', limit: 1, keysOnly: true } },
      { put: { key, value: Buffer.alloc(0), lease } },
    ],
    failure: [{ range: { key } }],
  };
}

/** One watcher at a time on one open stream: `next` resolves on that watcher's creation, or its next event. */
class WatchCycle {
  #wanted: { id: number; created: boolean; resolve: () => void } | undefined;
  answered(res: { id: number; created: boolean; canceled: boolean }): void {
    const w = this.#wanted;
    if (w && res.id === w.id && res.created === w.created && !res.canceled) {
      this.#wanted = undefined;
      w.resolve();
    }
  }
  next(id: number, created: boolean): Promise<void> {
    return new Promise((resolve) => (this.#wanted = { id, created, resolve }));
  }
}

async function etcd3Impl(ns: Namespace, lease: string): Promise<Impl> {
  const { stream } = await openWatch(ns);
  const cycle = new WatchCycle();
  stream.on('data', (res: IWatchResponse) => cycle.answered({ id: Number(res.watch_id), created: res.created, canceled: res.canceled }));
  const call = <T>(method: 'range' | 'txn', payload: object): Promise<T> =>
    unary<T>(ns, { service: 'KV', method }, payload, { deadline: Date.now() + timeoutMs });
  return {
    name: 'etcd3 (leasehold today)',
    range: () => call('range', { key: readKey, serializable: true }),
    join: (i) => {
      const key = Buffer.from(`${prefix}e/${i}`);
      return call('txn', {
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: '0' }],
        success: [
          { request_range: { key: Buffer.from(prefix), range_end: Buffer.from(`${prefix.slice(0, -1)}0`), sort_target: 'Create', sort_order: 'Descend', limit: 1, keys_only: true } },
          { request_put: { key, value: Buffer.alloc(0), lease } },
        ],
        failure: [{ request_range: { key } }],
      });
    },
    async watchCycle(i) {
      const key = Buffer.from(`${prefix}w/${i}`);
      const created = cycle.next(i + 1, true);
      stream.write({ create_request: { key, start_revision: 0, watch_id: String(i + 1) } } as never);
      await created;
      const event = cycle.next(i + 1, false);
      await call('txn', { compare: [], success: [{ request_put: { key, value: Buffer.from('x') } }] });
      await event;
      stream.write({ cancel_request: { watch_id: String(i + 1) } } as never);
    },
    close: () => closeStream(stream),
  };
}

async function h2Impl(t: H2Transport, lease: string): Promise<Impl> {
  const c = new WatchCycle();
  const stream = await t.watch({ message: (res: WatchResponse) => c.answered({ id: res.watchId, created: res.created, canceled: res.canceled }), end: () => undefined }, { requireLeader: true });
  return {
    name: 'h2 (lean transport)',
    range: () => t.range({ key: readKey, serializable: true }, { timeoutMs }),
    join: (i) => t.txn(joinTxn(Buffer.from(`${prefix}h/${i}`), lease), { timeoutMs }),
    async watchCycle(i) {
      const key = Buffer.from(`${prefix}w/${i}`);
      const created = c.next(i + 1, true);
      stream.send({ create: { key, watchId: i + 1 } });
      await created;
      const event = c.next(i + 1, false);
      await t.txn({ compare: [], success: [{ put: { key, value: Buffer.from('x') } }] }, { timeoutMs });
      await event;
      stream.send({ cancel: { watchId: i + 1 } });
    },
    close: () => stream.close(),
  };
}

const workloads: { name: string; run: (impl: Impl, ops: number, base: number) => Promise<number> }[] = [
  { name: 'sequential serializable Range', run: async (impl, ops) => { for (let i = 0; i < ops; i++) await impl.range(); return ops; } },
  { name: 'sequential Txn (a lock\'s join)', run: async (impl, ops, base) => { for (let i = 0; i < ops; i++) await impl.join(base + i); return ops; } },
  {
    name: '20 Range in flight',
    run: async (impl, ops) => {
      const batches = Math.ceil(ops / 20);
      for (let b = 0; b < batches; b++) await Promise.all(Array.from({ length: 20 }, async () => impl.range()));
      return batches * 20;
    },
  },
  { name: 'watch create → event → cancel', run: async (impl, ops, base) => { for (let i = 0; i < ops / 4; i++) await impl.watchCycle(base + i); return Math.ceil(ops / 4); } },
];

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const rounds = arg('--rounds', 5);
  const ops = arg('--ops', 400);
  await using etcd = await startEtcd();
  const client = new Etcd3({ hosts: [...etcd.endpoints] });
  const h2 = new H2Transport({ hosts: [...etcd.endpoints] });
  const lease = (await h2.leaseGrant(600, { timeoutMs })).id;
  await client.put(readKey).value('v');
  const impls = [await etcd3Impl(client.namespace(''), lease), await h2Impl(h2, lease)];
  const results = new Map<string, number[]>();
  let base = 0;
  for (const impl of impls) for (const w of workloads) await w.run(impl, 300, (base += 1000)); // warm-up, past V8's tier-up
  for (let r = 0; r < rounds; r++) {
    for (const w of workloads) {
      for (const impl of r % 2 === 0 ? impls : [...impls].reverse()) {
        const before = process.cpuUsage();
        const done = await w.run(impl, ops, (base += 1000));
        const used = process.cpuUsage(before);
        const key = `${w.name}\t${impl.name}`;
        results.set(key, [...(results.get(key) ?? []), (used.user + used.system) / done]);
      }
    }
    process.stderr.write(`round ${r + 1}/${rounds} done\n`);
  }
  for (const impl of impls) impl.close();
  console.log(`| workload | ${impls.map((i) => i.name).join(' | ')} | ratio |`);
  console.log(`|---|${impls.map(() => '---:').join('|')}|---:|`);
  for (const w of workloads) {
    const medians = impls.map((impl) => {
      const v = [...results.get(`${w.name}\t${impl.name}`)!].sort((a, b) => a - b);
      return v[Math.floor(v.length / 2)]!;
    });
    console.log(`| ${w.name} | ${medians.map((m) => `${m.toFixed(0)} µs`).join(' | ')} | ${(medians[1]! / medians[0]!).toFixed(2)} |`);
  }
  await h2.leaseRevoke(lease, { timeoutMs });
  h2.close();
  client.close();
}

await main();
