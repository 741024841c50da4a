// DoubleBarrier participants for the real-etcd tests, each on a client of its own behind a TCP proxy
// (so that a test can hold its answers: its requests reach etcd, its answers wait in the proxy), and
// the system of such participants that the model-based test drives.
import { setTimeout as delay } from 'node:timers/promises';
import { Etcd3 } from 'etcd3';
import { DoubleBarrier, Session, type SessionOptions } from '../../src/index.js';
import { startProxy, type EtcdCluster, type TcpProxy } from '../../src/testing/index.js';
import type { RoundReport } from '../fault/rounds.js';

/** A participant behind a proxy of its own. `await using` (or `dispose()`) closes it all. */
export interface Participant extends AsyncDisposable {
  proxy: TcpProxy;
  client: Etcd3;
  session: Session;
  barrier: DoubleBarrier;
  dispose(): Promise<void>;
}

/** A DoubleBarrier participant for `name`, on a client of its own behind a proxy to `etcd`'s first member. */
export async function participant(etcd: EtcdCluster, name: string, count: number, options: SessionOptions = { ttl: 10 }): Promise<Participant> {
  const proxy = await startProxy(etcd.members[0]!.clientUrl);
  const client = new Etcd3({ hosts: [proxy.url] });
  const session = await Session.create(client, options);
  const dispose = async (): Promise<void> => {
    proxy.heal();
    await session.close();
    client.close();
    await proxy.close();
  };
  return { proxy, client, session, barrier: new DoubleBarrier(session, name, { count }), dispose, [Symbol.asyncDispose]: dispose };
}

export type Phase = 'idle' | 'entering' | 'inside' | 'leaving' | 'dead';

/** One participant of the system, and what it is doing. */
export interface Slot extends Participant {
  phase: Phase;
  held: boolean;
  abort?: AbortController;
  round?: bigint;
}

/**
 * The system under test of the model-based test: the participants, the barrier's name and what they
 * reported (for test/fault/rounds.ts).
 */
export class System {
  readonly slots: Slot[] = [];
  readonly reports: RoundReport[] = [];
  readonly excused = new Set<string>();
  readonly errors: string[] = [];
  #changes = 0;

  constructor(
    readonly etcd: EtcdCluster,
    readonly admin: Etcd3,
    readonly name: string,
    readonly count: number,
  ) {}

  /** A fresh participant (keep-alives every 3 s: a quiet wait is re-checked that often). */
  async slot(): Promise<Slot> {
    const p = await participant(this.etcd, this.name, this.count, { ttl: 10, keepAliveInterval: 3000 });
    return Object.assign(p, { phase: 'idle' as const, held: false });
  }

  /** A read right after a call resolved: the open round and the revision. */
  async #readAfter(): Promise<{ round: bigint | undefined; rev: bigint }> {
    const res = await this.admin.kv.range({ key: Buffer.from(`${this.name}/ready`) });
    return { round: res.kvs[0] ? BigInt(res.kvs[0].create_revision) : undefined, rev: BigInt(res.header.revision) };
  }

  enter(i: number): void {
    const slot = this.slots[i]!;
    const abort = new AbortController();
    Object.assign(slot, { phase: 'entering', abort });
    slot.barrier.enter({ signal: abort.signal }).then(
      async () => {
        const { round, rev } = await this.#readAfter();
        this.reports.push({ client: `s${i}`, lease: slot.session.leaseHex, op: 'enter', round, rev });
        if (slot.phase !== 'dead') Object.assign(slot, { phase: 'inside', round });
        this.#changes++;
      },
      (error: unknown) => {
        if (!abort.signal.aborted && slot.phase !== 'dead') this.errors.push(`s${i} enter: ${String(error)}`);
        if (slot.phase !== 'dead') slot.phase = 'idle';
        this.#changes++;
      },
    );
  }

  leave(i: number): void {
    const slot = this.slots[i]!;
    slot.phase = 'leaving';
    slot.barrier.leave().then(
      async () => {
        const { rev } = await this.#readAfter();
        this.reports.push({ client: `s${i}`, lease: slot.session.leaseHex, op: 'leave', round: slot.round, rev });
        if (slot.phase !== 'dead') slot.phase = 'idle';
        this.#changes++;
      },
      (error: unknown) => {
        if (slot.phase !== 'dead') this.errors.push(`s${i} leave: ${String(error)}`);
        this.#changes++;
      },
    );
  }

  abort(i: number): void {
    this.excused.add(this.slots[i]!.session.leaseHex);
    this.slots[i]!.abort?.abort(new Error('given up'));
  }

  /** A crash: the lease goes at once (as its expiry would), then the process's connections. */
  async crash(i: number): Promise<void> {
    const slot = this.slots[i]!;
    slot.phase = 'dead';
    this.excused.add(slot.session.leaseHex);
    await this.admin.leaseClient.leaseRevoke({ ID: slot.session.leaseId });
    await slot.dispose();
    this.slots[i] = Object.assign(await this.slot(), { phase: 'dead' as const }); // a fresh process, started by `revive`
  }

  /** Waits until nothing has changed (calls settled, etcd's revision) for 150 ms, at most 3 s. */
  async settle(): Promise<void> {
    let last = '';
    for (let quiet = 0, spent = 0; quiet < 3 && spent < 3000; spent += 50) {
      await delay(50);
      const res = await this.admin.get(`${this.name}/ready`).exec();
      const now = `${res.header.revision}:${this.#changes}`;
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map(async (slot) => slot.dispose()));
  }
}
