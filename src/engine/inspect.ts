/**
 * Introspection: who holds a lock, semaphore or election and who waits, read from the keys alone, so
 * it works on names used by Go's `concurrency` package, `etcdctl lock`/`elect` and other programs as
 * well as ours. Every read is one range at one revision; the views are pure functions of the keys in
 * queue order (create revision, then key bytes), shared by the one-shot reads and the followers.
 *
 * Keys read back are input: a key without a lease, a semaphore record that is not ours, a name that
 * is not UTF-8 — each is reported as it is (`leaseId` `'0'`, `problem`), never dropped and never
 * counted as something it is not.
 */
import type { RangeResponse } from '../transport/messages.js';
import type { EtcdClient, TransportKind } from '../transport/select.js';
import { rangeOp, type EtcdOps, type Kv } from '../transport/etcd.js';
import { isDirectChild, leaseHex } from './keys.js';
import { decodeRecord } from './permits.js';
import { counts, type QueueSpec } from './queue.js';
import { checkClient, checkSessionOptions, opsFor } from './session-options.js';
import { checkOptions, checkSignal } from './validate.js';
import type { IPolicy } from 'cockatiel';

/** A key in a lock's, semaphore's or election's queue, as read from etcd. */
export interface Contender {
  /** The key, relative to the namespace (its bytes as UTF-8 text). */
  key: string;
  /**
   * The key's create revision: its place in the queue, and, once it holds, its fencing token (for an
   * Election, its term).
   */
  token: bigint;
  /** The lease the key is bound to, etcd's decimal string; `'0'` for a key without a lease (it never expires). */
  leaseId: string;
  /** The same lease in lower-case hex, as `etcdctl` prints it and as Mutex and Election keys end; `'0'` for none. */
  leaseHex: string;
  /** The key's value as UTF-8: empty for a Mutex, the campaign value for an Election. */
  value: string;
}

/** A contender of a {@link ReadWriteLock}. */
export interface RwContender extends Contender {
  /** Whether the key is a reader's (`name/read/…`) or a writer's (`name/write/…`). */
  mode: 'read' | 'write';
}

/** A contender of a {@link Semaphore}, with the record its key carries. */
export interface PermitContender extends Contender {
  /** How many permits the acquisition holds or waits for; `undefined` when its record is not valid. */
  weight: number | undefined;
  /** The total permits its participant recorded; `undefined` when its record is not valid. */
  permits: number | undefined;
  /** Why the key's value is not a valid permit record (another program's key), when it is not. */
  problem?: string;
}

/** Who holds and who waits, read at one revision. */
export interface QueueState<T extends Contender = Contender> {
  /** The etcd revision the keys were read at. */
  revision: bigint;
  /** Who holds now, in queue order: at most one for a Mutex (the leader for an Election). */
  holders: T[];
  /** Who waits, in the order they will be served. */
  waiters: T[];
}

/** Options of the introspection reads (`queue()`, `holder()`, `holders()`, `waiters()`). */
export interface InspectOptions {
  /** Aborts the read: it rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options of the static introspection calls, which have no Session to take them from. */
/** A static call's options: its own, and the session options that shape its etcd calls. */
export interface StaticInspectOptions extends InspectOptions {
  /** The deadline of each etcd call, in milliseconds. @default 5000 */
  requestTimeout?: number;
  /** The cockatiel policy around each etcd call. @default retry of transient errors, as a Session's */
  retryPolicy?: IPolicy;
  /** How leasehold talks to etcd, as a Session's `transport`. @default `LEASEHOLD_TRANSPORT`, else `'h2'` */
  transport?: TransportKind;
}

/** Keys in queue order: by create revision, then (one txn created several) by key bytes. */
export function inQueueOrder(kvs: Kv[]): Kv[] {
  return kvs.sort((a, b) => (a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1 : Buffer.compare(a.bytes, b.bytes)));
}

/** The public form of a key. */
export function contender(kv: Kv): Contender {
  return { key: kv.key, token: kv.createRevision, leaseId: kv.lease, leaseHex: leaseHex(kv.lease), value: kv.value.toString() };
}

/** Mutex and Election: the first contender holds, the rest wait. */
export function firstHolds(kvs: readonly Kv[]): { holders: Contender[]; waiters: Contender[] } {
  const all = kvs.map(contender);
  return { holders: all.slice(0, 1), waiters: all.slice(1) };
}

/**
 * ReadWriteLock: a writer holds when it is first; otherwise every reader before the first writer
 * holds. Everyone else waits.
 */
export function rwHolders(kvs: readonly Kv[], writers: string): { holders: RwContender[]; waiters: RwContender[] } {
  const all = kvs.map((kv): RwContender => ({ ...contender(kv), mode: isDirectChild(kv.bytes, writers) ? 'write' : 'read' }));
  const firstWriter = all.findIndex((c) => c.mode === 'write');
  const held = firstWriter === 0 ? 1 : firstWriter === -1 ? all.length : firstWriter;
  return { holders: all.slice(0, held), waiters: all.slice(held) };
}

/** Semaphore: the keys under `holders/` hold, those under `waiters/` wait; each with its record. */
export function permitHolders(kvs: readonly Kv[], holders: string): { holders: PermitContender[]; waiters: PermitContender[] } {
  const view = { holders: [] as PermitContender[], waiters: [] as PermitContender[] };
  for (const kv of kvs) {
    const record = decodeRecord(kv.value);
    const entry: PermitContender =
      typeof record === 'string'
        ? { ...contender(kv), weight: undefined, permits: undefined, problem: record }
        : { ...contender(kv), weight: record.weight, permits: record.permits };
    (isDirectChild(kv.bytes, holders) ? view.holders : view.waiters).push(entry);
  }
  return view;
}

/** The contenders of `spec` in a range answer, in queue order. */
function contenders(ops: EtcdOps, spec: QueueSpec, res: RangeResponse): Kv[] {
  return inQueueOrder(res.kvs.map((kv) => ops.decode(kv)).filter((kv) => counts(spec, kv.bytes)));
}

/** Reads every contender of `spec` in one range and returns them in queue order, with the revision. */
export async function readQueue(ops: EtcdOps, spec: QueueSpec, signal: AbortSignal | undefined): Promise<{ kvs: Kv[]; revision: bigint }> {
  signal?.throwIfAborted();
  const res = await ops.range(ops.prefixRange(spec.prefix), signal);
  return { kvs: contenders(ops, spec, res), revision: res.header.revision };
}

/**
 * The etcd calls of a static introspection or observe call: `client` checked, `requestTimeout` and
 * `retryPolicy` taken from `options` (defaults as for a Session), and the remaining options returned.
 * @throws TypeError/RangeError naming the value when `client` or an option is invalid.
 */
export function staticOps<O extends object>(
  client: unknown,
  options: O | undefined,
  where: string,
  known: readonly string[],
  defaults: { ttl: number; requestTimeout: number },
): { ops: EtcdOps; rest: Omit<O, 'requestTimeout' | 'retryPolicy' | 'transport'> } {
  checkClient(client, where);
  const { requestTimeout, retryPolicy, transport, ...rest } = checkOptions(options as StaticInspectOptions | undefined, where, [...known, 'requestTimeout', 'retryPolicy', 'transport']);
  const checked = checkSessionOptions({ requestTimeout, retryPolicy, transport }, where, defaults);
  const ops = opsFor(client as EtcdClient, checked);
  return { ops, rest: rest as Omit<O, 'requestTimeout' | 'retryPolicy' | 'transport'> };
}

/**
 * {@link staticOps} for a static introspection or observe call whose only own option is `signal`:
 * checks everything once and returns the calls and the signal.
 */
export function staticInspect(
  client: unknown,
  options: StaticInspectOptions | undefined,
  where: string,
  defaults: { ttl: number; requestTimeout: number },
): { ops: EtcdOps; signal: AbortSignal | undefined } {
  const { ops, rest } = staticOps(client, options, where, ['signal'], defaults);
  checkSignal(rest.signal, where);
  return { ops, signal: rest.signal };
}

/** How a primitive's keys read as a queue: which keys count, and who of them holds. */
export interface QueueKind<T extends Contender> {
  spec: QueueSpec;
  view: (kvs: readonly Kv[]) => { holders: T[]; waiters: T[] };
}

/** Mutex and Election, named by their queue prefix `${name}/`: the first contender holds. */
export function firstInLine(prefix: string): QueueKind<Contender> {
  return { spec: { prefix }, view: firstHolds };
}

/**
 * One read of several queues (a MultiLock's names), in one txn, so all of them are seen at one
 * revision: holders and waiters of each kind, in the order of `kinds`.
 */
export async function queueStates<T extends Contender>(
  ops: EtcdOps,
  kinds: readonly QueueKind<T>[],
  signal: AbortSignal | undefined,
): Promise<{ revision: bigint; states: { holders: T[]; waiters: T[] }[] }> {
  signal?.throwIfAborted();
  const res = await ops.readTxn({ compare: [], success: kinds.map((k) => rangeOp(ops.prefixRange(k.spec.prefix))) }, signal);
  const states = kinds.map((kind, i) => kind.view(contenders(ops, kind.spec, res.responses[i]!.range!)));
  return { revision: res.header.revision, states };
}

/** One read of the queue `kind`: holders and waiters at one revision. */
export async function queueState<T extends Contender>(ops: EtcdOps, kind: QueueKind<T>, signal: AbortSignal | undefined): Promise<QueueState<T>> {
  const { kvs, revision } = await readQueue(ops, kind.spec, signal);
  return { revision, ...kind.view(kvs) };
}
