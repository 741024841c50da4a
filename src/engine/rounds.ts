/**
 * A double barrier's rounds: the record that fixes a round's members, and the reads and writes of it.
 * The waits that use them are in round-waits.ts; docs/barrier.md states the protocol and its
 * invariants.
 *
 * Keys (relative to the namespace), for the barrier `name` — the layout of etcd's Go
 * `recipe.DoubleBarrier`:
 *
 *   name/waiters/<suffix>   a participant; bound to its session's lease; empty value
 *   name/ready              the round in progress; no lease; value
 *                           `{"count":3,"members":["17","19","23"]}`: the create revisions of the
 *                           members' waiter keys, oldest first
 *
 * A round is opened by one txn that puts `ready` only while `ready` does not exist and every one of
 * the `count` waiter keys it names still has the create revision that was read: so a round has
 * exactly `count` members, all present when it opened, and nobody can be added to it later. `ready`
 * has no lease, so no participant's death takes it away; it is deleted (guarded by its mod revision)
 * only once none of its members' keys exists — by the last member to leave, or by whoever finds the
 * round empty (everyone died).
 *
 * A `ready` with an empty value was written by Go's recipe (or by leasehold before this protocol): its
 * members are the waiter keys created before it, as Go counts them.
 */
import { ForeignKeyError } from '../errors.js';
import { guardCompare, rangeOp, type EtcdOps, type Kv } from '../transport/etcd.js';
import { isDirectChild } from './keys.js';
import { OwnKeyGone } from './queue.js';

/** Where a double barrier's keys are, and its size. */
export interface RoundSpec {
  /** The barrier's name, for messages. */
  name: string;
  /** `name/waiters/`. */
  waiters: string;
  /** `name/ready`. */
  ready: string;
  /** How many participants make a round. */
  count: number;
}

/** A round, as its record says. */
export interface Round {
  /** The record's create revision: the round's id, larger for every later round. */
  id: bigint;
  /** The record's mod revision: its deletion is guarded by it. */
  version: bigint;
  /** The members' create revisions; `undefined` for a record without them (Go's): every key created before `id`. */
  members: ReadonlySet<bigint> | undefined;
}

/** A participant's waiter key. */
export interface Own {
  /** The key, relative to the namespace. */
  key: string;
  /** Its create revision. */
  revision: bigint;
}

/** The keys of a barrier at one revision. */
export interface RoundState {
  /** `ready`, when it exists (not decoded: {@link decodeRound} does that where it matters). */
  record: Kv | undefined;
  /** The waiter keys (direct children of `waiters/`), oldest first. */
  waiters: Kv[];
  /** The revision of the read. */
  revision: bigint;
}

/** Whether the waiter key created at `createRevision` is a member of `round`. */
export function isMember(round: Round, createRevision: bigint): boolean {
  return round.members ? round.members.has(createRevision) : createRevision < round.id;
}

/** The value of a round record naming `members` (create revisions, oldest first). */
export function encodeRound(count: number, members: readonly bigint[]): Buffer {
  return Buffer.from(JSON.stringify({ count, members: members.map(String) }));
}

/**
 * The round in the record `kv`, validated: `count` must be ours, and the members exactly `count`
 * distinct create revisions below the record's own, in ascending order.
 * @throws ForeignKeyError naming the key when the record is not one, or records another count.
 */
export function decodeRound(spec: RoundSpec, kv: Kv): Round {
  const round = { id: kv.createRevision, version: kv.modRevision };
  if (kv.value.length === 0) return { ...round, members: undefined };
  const refuse = (what: string): never => {
    throw new ForeignKeyError(`${kv.key}: ${what}`, { key: kv.key });
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value.toString());
  } catch {
    return refuse(`not a round record (${kv.value.length} bytes that are not JSON); delete it`);
  }
  const { count, members } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  if (count !== spec.count) {
    if (Number.isSafeInteger(count)) {
      refuse(`a round of ${String(count)} participants, but DoubleBarrier ${spec.name} has count ${spec.count}: every participant must pass the same count`);
    }
    refuse(`not a round record (count ${JSON.stringify(count)}); delete it`);
  }
  const revisions = Array.isArray(members) && members.every((m) => typeof m === 'string' && /^[1-9]\d{0,18}$/.test(m)) ? members.map((m: string) => BigInt(m)) : [];
  const ascending = revisions.every((r, i) => r < kv.createRevision && (i === 0 || r > revisions[i - 1]!));
  if (revisions.length !== spec.count || !ascending) {
    refuse(`not a round record (members ${JSON.stringify(members)} are not ${spec.count} ascending revisions below ${kv.createRevision}); delete it`);
  }
  return { ...round, members: new Set(revisions) };
}

/**
 * Reads `ready` and the waiters in one txn. With `own`, the read is guarded by our waiter key: throws
 * {@link OwnKeyGone} when it no longer exists with its create revision.
 */
export async function readRounds(ops: EtcdOps, spec: RoundSpec, signal: AbortSignal, own?: Own): Promise<RoundState> {
  const res = await ops.readTxn(
    {
      compare: own ? [guardCompare(ops.abs(own.key), own.revision)] : [],
      success: [rangeOp({ key: ops.abs(spec.ready) }), rangeOp(waitersQuery(ops, spec))],
    },
    signal,
  );
  if (!res.succeeded) throw new OwnKeyGone(`${own?.key} is gone`);
  const record = res.responses[0]!.range!.kvs[0];
  return {
    record: record && ops.decode(record),
    waiters: waitersIn(spec, res.responses[1]!.range!.kvs.map((kv) => ops.decode(kv))),
    revision: res.header.revision,
  };
}

/** The range of every waiter key, oldest first, keys only. */
export function waitersQuery(ops: EtcdOps, spec: RoundSpec) {
  return { ...ops.prefixRange(spec.waiters), sortTarget: 'create' as const, sortOrder: 'ascend' as const, keysOnly: true };
}

/** The waiter keys among `kvs` (direct children of `waiters/`: names do not nest). */
export function waitersIn(spec: RoundSpec, kvs: Kv[]): Kv[] {
  return kvs.filter((kv) => isDirectChild(kv.bytes, spec.waiters));
}

/**
 * Opens a round of `members` (the oldest `count` waiter keys, as read): one txn that puts the record
 * only while `ready` does not exist and every member key still has the create revision read. Resolves
 * with the round, or `undefined` when the txn was refused (a round is open already, or a member left).
 * @throws ForeignKeyError when a member key has no lease: it would never go, nor would the round.
 */
export async function openRound(ops: EtcdOps, spec: RoundSpec, members: Kv[], signal: AbortSignal): Promise<Round | undefined> {
  for (const kv of members) {
    if (kv.lease === '0') {
      throw new ForeignKeyError(`${kv.key}: a waiter key without a lease: a round with it would never end; delete it`, { key: kv.key });
    }
  }
  const ready = ops.abs(spec.ready);
  const res = await ops.txn(
    {
      compare: [
        { key: ready, target: 'create', result: 'equal', createRevision: 0n },
        ...members.map((kv) => guardCompare(ops.abs(kv.bytes), kv.createRevision)),
      ],
      success: [{ put: { key: ready, value: encodeRound(spec.count, members.map((kv) => kv.createRevision)) } }],
    },
    signal,
  );
  if (!res.succeeded) return undefined;
  const id = res.header.revision;
  return { id, version: id, members: new Set(members.map((kv) => kv.createRevision)) };
}

/** Deletes the record of an empty round, only if it is still the one read (its mod revision `version`). */
export async function dropRound(ops: EtcdOps, spec: RoundSpec, version: bigint, signal: AbortSignal): Promise<void> {
  const ready = ops.abs(spec.ready);
  await ops.txn(
    {
      compare: [{ key: ready, target: 'mod', result: 'equal', modRevision: version }],
      success: [{ deleteRange: { key: ready } }],
    },
    signal,
  );
}
