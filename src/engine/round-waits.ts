/**
 * A double barrier's waits, on the records of rounds.ts (docs/barrier.md states the protocol):
 *
 * - enter: join (write our waiter key, only while no round is open), then wait. Whoever reads at
 *   least `count` waiter keys and no `ready` opens a round of the oldest `count` — any participant,
 *   not one chosen in advance, so a participant that dies before opening strands nobody. A
 *   participant named by the round is in; one that is not (more arrived than `count`) takes its key
 *   back and waits, without a key, for that round to end, then joins again.
 * - the end of a round: its record is gone, or none of its members' keys is left (then whoever sees
 *   that deletes the record: everyone of it may have died).
 * - leave: the oldest member still present waits until it is the only one, then deletes its key and
 *   the record in one txn; every other member deletes its key and waits for the oldest to go. Only
 *   the round's own members count: a later round never holds a leaver up.
 *
 * Every wait runs in the engine's wait loop, so an etcd outage only delays it.
 */
import { acquisitionSuffix } from './acquisition-key.js';
import { removeBounded } from './cleanup.js';
import {
  decodeRound,
  dropRound,
  isMember,
  openRound,
  readRounds,
  waitersIn,
  waitersQuery,
  type Own,
  type Round,
  type RoundSpec,
  type RoundState,
} from './rounds.js';
import type { SessionLike } from './session-internals.js';
import { retrying, waitLoop } from './wait-loop.js';
import { waitForDelete, waitForDeletes, waitForPut } from './watch.js';
import { guardCompare, rangeOp, type EtcdOps } from '../transport/etcd.js';
import { isTransientError } from '../transport/retry.js';

/** A participant inside a round: its waiter key and the round. */
export interface Inside {
  own: Own;
  round: Round;
}

/**
 * Enters a round: resolves once this participant is a member of an open round. On any failure (an
 * abort, a lost lease, a refusal) deletes our waiter key, if a join wrote one, before rejecting.
 */
export async function enterRound(ops: EtcdOps, spec: RoundSpec, session: SessionLike, signal: AbortSignal): Promise<Inside> {
  // One name for every join of this call: a retried join finds the key an earlier attempt wrote.
  const key = `${spec.waiters}${acquisitionSuffix(session.leaseHex)}`;
  let joining: Promise<Joined> | undefined;
  const attempt = (): Promise<Joined> => (joining = join(ops, spec, key, session.leaseId, signal));
  try {
    // The first join fails like any call once the retry policy gives up (as a Mutex's does); from
    // then on the wait is under way, and a join after a round ends rides out an outage.
    for (let first = true; ; first = false) {
      const joined = await (first ? attempt() : retrying(signal, attempt));
      if (joined !== 'busy') {
        const round = await awaitRound(ops, spec, joined.own, joined.state, signal);
        if (round !== 'left out') return { own: joined.own, round };
      }
      await untilRoundEnds(ops, spec, signal);
    }
  } catch (error) {
    // A join still in flight may yet write our key: let it settle, then delete whatever it wrote —
    // waiting for that only when etcd answers (an unreachable etcd cannot take the delete now either).
    const cleanup = removeBounded(session, async (s) => {
      await joining?.catch(() => undefined);
      return deleteOurs(ops, key, session.leaseId, s);
    });
    if (!isTransientError(error)) await cleanup;
    throw error;
  }
}

type Joined = { own: Own; state: RoundState | undefined } | 'busy';

/**
 * Writes our waiter key bound to `lease` in one txn that succeeds only while no round is open, and
 * reads the waiters. Resolves `'busy'` when a round is open. Idempotent: a retry after an ambiguous
 * outcome finds the key (named by this call alone) and goes on with it.
 */
async function join(ops: EtcdOps, spec: RoundSpec, key: string, lease: string, signal: AbortSignal): Promise<Joined> {
  const abs = ops.abs(key);
  const ready = ops.abs(spec.ready);
  const res = await ops.txn(
    {
      compare: [{ key: ready, target: 'create', result: 'equal', createRevision: 0n }],
      success: [{ put: { key: abs, value: Buffer.alloc(0), lease } }, rangeOp(waitersQuery(ops, spec))],
      failure: [rangeOp({ key: abs, keysOnly: true })],
    },
    signal,
  );
  const revision = res.header.revision;
  if (!res.succeeded) {
    const mine = res.responses[0]?.range!.kvs[0];
    return mine?.lease === lease ? { own: { key, revision: mine.createRevision }, state: undefined } : 'busy';
  }
  const waiters = waitersIn(spec, res.responses[1]!.range!.kvs.map((kv) => ops.decode(kv)));
  const mine = waiters.find((kv) => kv.bytes.equals(Buffer.from(key)));
  return { own: { key, revision: mine?.createRevision ?? revision }, state: { record: undefined, waiters, revision } };
}

/**
 * With our key in place: resolves with the round once one names us, or `'left out'` once a round
 * opened without us and our key is taken back. Opens a round itself whenever it reads `count` waiter
 * keys and none open. Throws `OwnKeyGone` when our key vanished (lease lost, or deleted by someone).
 */
async function awaitRound(ops: EtcdOps, spec: RoundSpec, own: Own, first: RoundState | undefined, signal: AbortSignal): Promise<Round | 'left out'> {
  let known = first;
  const pending = async (): Promise<boolean> => {
    const now = await readRounds(ops, spec, signal, own);
    return now.record !== undefined || now.waiters.length >= spec.count;
  };
  return waitLoop<Round | 'left out'>(signal, async () => {
    const now = known ?? (await readRounds(ops, spec, signal, own));
    known = undefined;
    if (now.record) {
      const round = decodeRound(spec, now.record);
      if (isMember(round, own.revision)) return { done: round };
      return (await takeBack(ops, spec, own, round, signal)) ? { done: 'left out' } : 'woke';
    }
    if (now.waiters.length >= spec.count) {
      const round = await openRound(ops, spec, now.waiters.slice(0, spec.count), signal);
      // Opened with us: in. Without us, refused, or a member gone: the next read says what to do.
      return round && isMember(round, own.revision) ? { done: round } : 'woke';
    }
    // Fewer than `count`: wait for a round to be opened (the newest arrival opens it).
    const woke = await waitForPut(ops, [{ key: ops.abs(spec.ready) }], now.revision, pending, signal);
    return woke ? 'woke' : 'broke';
  });
}

/** Deletes our waiter key while `round` is still the open one (a later round could name us). */
async function takeBack(ops: EtcdOps, spec: RoundSpec, own: Own, round: Round, signal: AbortSignal): Promise<boolean> {
  const res = await ops.txn(
    {
      compare: [guardCompare(ops.abs(own.key), own.revision), { key: ops.abs(spec.ready), target: 'mod', result: 'equal', modRevision: round.version }],
      success: [{ deleteRange: { key: ops.abs(own.key) } }],
    },
    signal,
  );
  return res.succeeded;
}

/** Waits, without a key, until no round is open; deletes the record of a round whose members are all gone. */
async function untilRoundEnds(ops: EtcdOps, spec: RoundSpec, signal: AbortSignal): Promise<void> {
  await waitLoop(signal, async () => {
    const now = await readRounds(ops, spec, signal);
    if (!now.record) return { done: undefined };
    const round = decodeRound(spec, now.record);
    // The oldest member usually leaves last (see leaveRound): one wake-up per round.
    const oldest = now.waiters.find((kv) => isMember(round, kv.createRevision));
    if (!oldest) {
      await dropRound(ops, spec, round.version, signal);
      return { done: undefined };
    }
    const changed = async (): Promise<boolean> => {
      const later = await readRounds(ops, spec, signal);
      return later.record?.modRevision !== round.version || !later.waiters.some((kv) => kv.createRevision === oldest.createRevision);
    };
    const woke = await waitForDeletes(ops, [{ key: ops.abs(spec.ready) }, { key: ops.abs(oldest.bytes) }], now.revision, changed, signal);
    return woke ? 'woke' : 'broke';
  });
}

/**
 * Leaves `inside.round` and waits until every member of it has left (or died). The oldest member
 * present waits for the others and deletes the record with its own key; the others delete theirs and
 * wait for the oldest. Needs no lease.
 */
export async function leaveRound(ops: EtcdOps, spec: RoundSpec, inside: Inside, signal: AbortSignal): Promise<void> {
  const { own, round } = inside;
  await waitLoop(signal, async () => {
    const now = await readRounds(ops, spec, signal);
    const members = now.waiters.filter((kv) => isMember(round, kv.createRevision));
    const record = now.record?.createRevision === round.id ? now.record : undefined;
    const oldest = members[0];
    const newest = members.at(-1);
    if (!oldest || !newest) {
      if (record) await dropRound(ops, spec, record.modRevision, signal);
      return { done: undefined };
    }
    const mine = members.some((kv) => kv.createRevision === own.revision);
    if (mine && members.length === 1) {
      await lastOut(ops, spec, own, record?.modRevision, signal);
      return 'woke'; // read again: done once the round is empty
    }
    if (mine && oldest.createRevision !== own.revision) {
      await ops.deleteIfCreated(own.key, own.revision, signal);
      return 'woke';
    }
    // The oldest waits for the newest to go; the others, once their keys are gone, for the oldest.
    const woke = await waitForDelete(ops, mine ? newest : oldest, now.revision, signal);
    return woke ? 'woke' : 'broke';
  });
}

/** The last member: deletes its key and (if it is still this round's, at mod revision `version`) the record, in one txn. */
async function lastOut(ops: EtcdOps, spec: RoundSpec, own: Own, version: bigint | undefined, signal: AbortSignal): Promise<void> {
  const key = ops.abs(own.key);
  const ready = ops.abs(spec.ready);
  const withRecord = version !== undefined;
  await ops.txn(
    {
      compare: [guardCompare(key, own.revision), ...(withRecord ? [{ key: ready, target: 'mod' as const, result: 'equal' as const, modRevision: version }] : [])],
      success: [{ deleteRange: { key } }, ...(withRecord ? [{ deleteRange: { key: ready } }] : [])],
    },
    signal,
  );
}

/** Deletes `key` if it is bound to `lease` (the key is named by one enter() call alone): true when it did. */
async function deleteOurs(ops: EtcdOps, key: string, lease: string, signal: AbortSignal): Promise<boolean> {
  const abs = ops.abs(key);
  const res = await ops.txn({ compare: [{ key: abs, target: 'lease', result: 'equal', lease }], success: [{ deleteRange: { key: abs } }] }, signal);
  return res.succeeded;
}
