/**
 * What one key under a prefix is, read from its layout alone (the first step of `listPrimitives`):
 *
 * | key | value | lease | part of |
 * | --- | --- | --- | --- |
 * | `N/<leaseHex>` (the suffix is the key's own lease) | any | its own | a Mutex, Election or MultiLock `N` (and Go's `concurrency`, `etcdctl lock`/`elect`) |
 * | `N/read/<s>`, `N/write/<s>` | any | any | a ReadWriteLock `N` (Go's `recipe.RWMutex` too) |
 * | `N/holders/<s>` | a permit record | any | a Semaphore `N` |
 * | `N/waiters/<s>` | a permit record | any | a Semaphore `N` |
 * | `N/waiters/<s>` | empty | any | a DoubleBarrier `N` (Go's `recipe.DoubleBarrier` too) |
 * | `N/ready` | a round record, or empty | any | a DoubleBarrier `N` |
 * | `N` | empty | any | a raised Barrier `N` (Go's `recipe.Barrier` writes it without a lease), unless it looks like a lock key (`N/<hex>`) |
 *
 * The order of the rows is the order of the checks. A key that fits none (a value where the layout has
 * none, a suffix that is not its lease, text that is not UTF-8) is `foreign`, with the reason; so is a
 * key that fits a layout but carries an invalid record, unless its primitive turns out to exist, in
 * which case it is listed there with a `problem` (the primitive's own code would meet it too).
 */
import type { Kv } from '../transport/etcd.js';
import { decodeRecord } from '../engine/permit-record.js';
import { leaseHex } from '../engine/keys.js';

/** What a key is part of; `name` is the primitive's name (keys and names relative to the namespace). */
export type Part = (
  | { kind: 'queue'; name: string }
  | { kind: 'rwlock'; name: string; mode: 'read' | 'write' }
  | { kind: 'semaphore'; name: string; role: 'holder' | 'waiter'; weight?: number; permits?: number }
  | { kind: 'double-barrier'; name: string; role: 'waiter' }
  | { kind: 'double-barrier'; name: string; role: 'record'; count: number | undefined; members: bigint[] | undefined }
  | { kind: 'barrier'; name: string }
) & {
  /**
   * Why the key is not what its layout promises (an invalid record, no lease where every participant
   * has one): listed with its primitive when that exists for other reasons, else as foreign.
   */
  problem?: string;
};

/** A key that fits no layout, and why. */
export interface ForeignPart {
  kind: 'foreign';
  reason: string;
}

/** True when `bytes` are valid UTF-8 (decoding and encoding again gives them back). */
export function isUtf8(bytes: Buffer): boolean {
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

/** The key's bytes as text: valid UTF-8 as it is, every other byte as `\xNN`. */
export function displayKey(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    const size = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead >= 0xf0 && lead < 0xf5 ? 4 : 0;
    const chunk = bytes.subarray(i, i + size);
    const text = size > 0 && chunk.length === size ? chunk.toString('utf8') : '';
    if (text !== '' && Buffer.from(text).equals(chunk)) {
      out += text;
      i += size;
    } else {
      out += `\\x${lead.toString(16).padStart(2, '0')}`;
      i += 1;
    }
  }
  return out;
}

/** A round record (`{"count":C,"members":["r",…]}`), checked for shape only (no count to compare with). */
function decodeRoundShape(kv: Kv): { count: number | undefined; members: bigint[] | undefined; problem?: string } {
  if (kv.value.length === 0) return { count: undefined, members: undefined }; // Go's record: members are the keys created before it
  try {
    const { count, members } = JSON.parse(kv.value.toString()) as { count?: unknown; members?: unknown };
    const revisions = Array.isArray(members) && members.every((m) => typeof m === 'string' && /^[1-9]\d{0,18}$/.test(m)) ? (members as string[]).map(BigInt) : undefined;
    if (Number.isSafeInteger(count) && (count as number) >= 1 && revisions?.length === count) return { count: count as number, members: revisions };
  } catch {
    // below
  }
  return { count: undefined, members: undefined, problem: `not a round record (${kv.value.length} bytes)` };
}

/** Splits `key` at its last `/`: the parent (undefined when there is none) and the last segment. */
function split(key: string): { parent: string | undefined; leaf: string } {
  const at = key.lastIndexOf('/');
  return at <= 0 ? { parent: undefined, leaf: key } : { parent: key.slice(0, at), leaf: key.slice(at + 1) };
}

/** The part of a role folder (`N/read/x` → `N`, `read`), when `parent` is one. */
function roleOf(parent: string | undefined): { name: string; role: string } | undefined {
  if (parent === undefined) return undefined;
  const at = parent.lastIndexOf('/');
  if (at <= 0) return undefined;
  return { name: parent.slice(0, at), role: parent.slice(at + 1) };
}

const noLease = 'no lease: every participant binds its keys to one (this one never expires)';

/** Classifies one key by its layout (see the table above). Pure; never throws. */
export function classify(kv: Kv): Part | ForeignPart {
  const part = byLayout(kv);
  if (part.kind === 'foreign' || part.problem !== undefined) return part;
  const leased = part.kind === 'rwlock' || part.kind === 'semaphore' || (part.kind === 'double-barrier' && part.role === 'waiter');
  return leased && kv.lease === '0' ? { ...part, problem: noLease } : part;
}

function byLayout(kv: Kv): Part | ForeignPart {
  if (!isUtf8(kv.bytes)) return { kind: 'foreign', reason: 'the key is not valid UTF-8 (no leasehold name is)' };
  const { parent, leaf } = split(kv.key);
  const folder = roleOf(parent);
  if (folder !== undefined && leaf !== '') {
    const { name, role } = folder;
    if (role === 'read' || role === 'write') {
      const part = { kind: 'rwlock', name, mode: role } as const;
      return kv.value.length === 0 ? part : { ...part, problem: `a value of ${kv.value.length} bytes (a lock key has none)` };
    }
    if (role === 'holders' || role === 'waiters') {
      const record = decodeRecord(kv.value);
      const semaphoreRole = role === 'holders' ? 'holder' : 'waiter';
      if (typeof record !== 'string') return { kind: 'semaphore', name, role: semaphoreRole, weight: record.weight, permits: record.permits };
      if (role === 'waiters' && kv.value.length === 0) return { kind: 'double-barrier', name, role: 'waiter' };
      return { kind: 'semaphore', name, role: semaphoreRole, problem: record };
    }
  }
  if (parent !== undefined && leaf === 'ready') {
    const { problem, ...round } = decodeRoundShape(kv);
    return { kind: 'double-barrier', name: parent, role: 'record', ...round, ...(problem === undefined ? {} : { problem }) };
  }
  if (parent !== undefined && kv.lease !== '0' && leaf === leaseHex(kv.lease)) return { kind: 'queue', name: parent };
  if (parent !== undefined && /^[0-9a-f]+$/.test(leaf)) {
    const reason = kv.lease === '0' ? 'a lock-like key without a lease (it would never expire)' : `a lock-like key whose suffix is not its lease (${leaseHex(kv.lease)})`;
    return { kind: 'foreign', reason };
  }
  if (kv.value.length === 0 && !kv.key.endsWith('/')) return { kind: 'barrier', name: kv.key };
  return { kind: 'foreign', reason: `no primitive's layout (a value of ${kv.value.length} bytes)` };
}
