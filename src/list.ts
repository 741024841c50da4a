/**
 * `listPrimitives`: every primitive under a prefix, recognised from its keys — the library call behind
 * `leasehold ls` and the live page. Read-only: range reads, nothing else.
 *
 * The read is bounded and consistent: pages of `pageSize` keys (sorted by key), every page at the
 * revision of the first, so the listing is one snapshot however many pages it takes; at most
 * `maxKeys` keys (then `truncated`). A page too large for gRPC (foreign keys with big values) is asked
 * again with as many keys as fit at their average size (at most half as many), down to one key. A snapshot compacted away between pages is read again from
 * the start, at most three times.
 */
import type { Namespace } from 'etcd3';
import { staticOps, type StaticInspectOptions } from './engine/inspect.js';
import { isCompacted } from './engine/observe.js';
import { checkInteger, checkSignal, checkText, maxNameBytes } from './engine/validate.js';
import { sessionDefaults } from './session.js';
import { prefixEnd, type EtcdOps, type Kv } from './transport/etcd.js';
import { causes } from './transport/retry.js';
import { assemble, type ForeignKey, type ListedPrimitive } from './inventory/assemble.js';

export type { ForeignKey, ListedContender, ListedKind, ListedPrimitive, OpenRound, PermitsUsed } from './inventory/assemble.js';

/** Options of {@link listPrimitives}. */
export interface ListOptions extends StaticInspectOptions {
  /**
   * List only keys that start with this (relative to the client's namespace); `''` lists every key.
   * @default ''
   */
  prefix?: string;
  /**
   * Keys per range request.
   * @default 500
   */
  pageSize?: number;
  /**
   * The most keys read; past it the listing stops and says `truncated`.
   * @default 10000
   */
  maxKeys?: number;
}

/** The defaults of {@link ListOptions}. */
export const listDefaults = {
  /** Every key. */
  prefix: '',
  /** Keys per range request. */
  pageSize: 500,
  /** The most keys read. */
  maxKeys: 10_000,
} as const;

/** Every primitive under a prefix, read at one revision. */
export interface Listing {
  /** The prefix listed. */
  prefix: string;
  /** The etcd revision every key was read at. */
  revision: bigint;
  /** How many keys were read. */
  keys: number;
  /** True when the prefix holds more than `maxKeys` keys: what is listed is only the first of them (by key). */
  truncated: boolean;
  /** Every primitive, by name then kind. */
  primitives: ListedPrimitive[];
  /** Keys that are no primitive's, or carry an invalid record, in create-revision order. */
  foreign: ForeignKey[];
}

/** For gRPC's "message larger than max (got vs max)": the two sizes (NaN when not given); else undefined. */
function tooLarge(error: unknown): { got: number; max: number } | undefined {
  for (const e of causes(error)) {
    if (!(e instanceof Error) || !/larger than max/i.test(e.message)) continue;
    const [, got, max] = /\((\d+) vs\.? (\d+)\)/.exec(e.message) ?? [];
    return { got: Number(got), max: Number(max) };
  }
  return undefined;
}

/** How {@link readSnapshot} reads. */
export interface SnapshotOptions {
  pageSize: number;
  maxKeys: number;
  /** Read at this revision (the revision a watch starts after); default: the first page's. */
  revision?: bigint;
  signal: AbortSignal | undefined;
}

/** The absolute range of every key under `prefix` (the whole keyspace for `''`). */
export function prefixRange(ops: EtcdOps, prefix: string): { key: Buffer; rangeEnd: Buffer } {
  const start = ops.abs(prefix);
  return { key: start.length === 0 ? Buffer.from([0]) : start, rangeEnd: prefixEnd(start) };
}

/** One snapshot of the keys under `prefix`, page by page at one revision, at most `maxKeys` of them. */
export async function readSnapshot(ops: EtcdOps, prefix: string, options: SnapshotOptions): Promise<{ kvs: Kv[]; revision: bigint; truncated: boolean }> {
  const { pageSize, maxKeys, signal } = options;
  const { key: start, rangeEnd: end } = prefixRange(ops, prefix);
  const kvs: Kv[] = [];
  let key = start;
  let revision = options.revision;
  let limit = pageSize;
  const page = (want: number, keysOnly: boolean) =>
    ops.range({ key, rangeEnd: end, limit: want, keysOnly, ...(revision === undefined ? {} : { revision }) }, signal);
  for (;;) {
    signal?.throwIfAborted();
    const want = Math.min(limit, maxKeys - kvs.length + 1); // one more than fits says whether there is more
    let res;
    try {
      res = await page(want, false);
    } catch (error) {
      const sizes = tooLarge(error);
      if (sizes === undefined || want === 1) throw error;
      // Ask once more with as many keys as fit at their average size (with a fifth to spare), counted
      // by a keys-only read of the same page: each refusal costs seconds (etcd3's circuit breaker).
      const counted = await page(want, true);
      const fit = Math.floor(((counted.kvs.length * sizes.max) / sizes.got) * 0.8);
      limit = Math.max(1, Math.min(Math.ceil(counted.kvs.length / 2), Number.isFinite(fit) ? fit : want));
      continue;
    }
    revision ??= res.header.revision;
    const read = res.kvs.map((kv) => ops.decode(kv));
    if (kvs.length + read.length > maxKeys) return { kvs: [...kvs, ...read.slice(0, maxKeys - kvs.length)], revision, truncated: true };
    kvs.push(...read);
    if (!res.more || read.length === 0) return { kvs, revision, truncated: false };
    key = Buffer.concat([res.kvs.at(-1)!.key, Buffer.from([0])]);
  }
}

/**
 * {@link ListOptions} checked, with the calls to make: `client`, and each option, refused with a
 * message naming the value.
 */
export function listOptions(client: unknown, options: ListOptions | undefined, where: string): { ops: EtcdOps; prefix: string; pageSize: number; maxKeys: number; signal: AbortSignal | undefined } {
  const { ops, rest } = staticOps(client, options, where, ['signal', 'prefix', 'pageSize', 'maxKeys'], sessionDefaults);
  checkSignal(rest.signal, where);
  const prefix = rest.prefix === undefined || rest.prefix === '' ? '' : checkText(rest.prefix, `\`prefix\` of ${where}`, maxNameBytes);
  const pageSize = checkInteger('pageSize', rest.pageSize ?? listDefaults.pageSize, 1, 10_000);
  const maxKeys = checkInteger('maxKeys', rest.maxKeys ?? listDefaults.maxKeys, 1);
  return { ops, prefix, pageSize, maxKeys, signal: rest.signal };
}

/**
 * Lists every lock, read/write lock, semaphore, election, barrier, double barrier and multi-lock
 * under `options.prefix` on `client`, recognised from the layout of their keys — leasehold's, and
 * those of Go's `concurrency` and `recipe` packages and of `etcdctl lock`/`elect`, which share them —
 * with holders and waiters in order, permits used of total, leaders and terms. Keys that fit no
 * layout, or carry records that are not valid, are listed as `foreign` with the reason: never as a
 * holder. Takes no lease and writes nothing. Aborting `options.signal` rejects with its reason.
 *
 * etcd keeps no clock, so a listing has no times: how long a key has been held or waited is what an
 * observer measures (the live page does).
 * @throws TypeError/RangeError naming the value when `client` or an option is invalid.
 * @example
 * ```ts
 * import { listPrimitives } from 'leasehold';
 *
 * const listing = await listPrimitives(etcd, { prefix: 'jobs/' });
 * for (const p of listing.primitives) console.log(p.kind, p.name, p.holders.length, 'holding', p.waiters.length, 'waiting');
 * ```
 */
export async function listPrimitives(client: Namespace, options?: ListOptions): Promise<Listing> {
  const { ops, prefix, pageSize, maxKeys, signal } = listOptions(client, options, 'listPrimitives');
  for (let attempt = 1; ; attempt++) {
    try {
      const { kvs, revision, truncated } = await readSnapshot(ops, prefix, { pageSize, maxKeys, signal });
      return { prefix, revision, keys: kvs.length, truncated, ...assemble(kvs) };
    } catch (error) {
      if (!isCompacted(error) || attempt >= 3) throw error;
    }
  }
}
