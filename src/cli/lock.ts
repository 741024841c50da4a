/**
 * `leasehold lock NAME… -- CMD…`: one name is a Mutex; several are one MultiLock, taken all at once
 * (one txn joins every name's queue, one token for all of them, no deadlock whatever order other
 * callers name them in). Each key is a Mutex key, so `etcdctl lock` and Go's `concurrency.Mutex` on
 * any one of the names exclude the command and are excluded by it.
 *
 * Several names make the variables different: `LEASEHOLD_KIND=multilock`, `LEASEHOLD_COUNT`, and
 * `LEASEHOLD_NAME_i`/`LEASEHOLD_KEY_i` (1-based, in the order given), with no `LEASEHOLD_NAME` or
 * `LEASEHOLD_KEY`: a script written for one lock, fencing on `$LEASEHOLD_KEY` alone, would guard one
 * name of several — without it, its guard `create("") = token` never holds, and it writes nothing.
 */
import type { Namespace } from 'etcd3';
import { Mutex } from '../mutex.js';
import { MultiLock, maxMultiLockNames } from '../multi-lock.js';
import { checkName } from '../engine/validate.js';
import { UsageError } from './exit-codes.js';
import type { Place, RunSpec } from './run.js';

/**
 * Splits the operands of `lock` into the names and the command. `afterDashes` is what followed the
 * first `--` on the command line (commander drops the `--` itself); without one, the first operand is
 * the name and the rest the command, as before several names were taken.
 * @throws UsageError when no name comes before `--`, or a name is not valid (naming it).
 */
export function splitOperands(operands: readonly string[], afterDashes: readonly string[] | undefined): { names: string[]; command: string[] } {
  const split = afterDashes === undefined ? Math.min(1, operands.length) : operands.length - afterDashes.length;
  const names = operands.slice(0, Math.max(0, split));
  if (names.length === 0) throw new UsageError('lock: expected at least one name before --, got none');
  for (const n of names) {
    try {
      checkName(n, 'leasehold lock');
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const unique = [...new Set(names)];
  if (unique.length > maxMultiLockNames) {
    throw new UsageError(`lock: at most ${maxMultiLockNames} distinct names at once (etcd's default limit of 128 operations per txn), got ${unique.length}`);
  }
  return { names: unique, command: operands.slice(names.length) };
}

/** Names for messages: `"a"`, `"a" and "b"`, `"a", "b" and "c"`. */
function listed(names: readonly string[]): string {
  const quoted = names.map((n) => JSON.stringify(n));
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(', ')} and ${quoted.at(-1)!}`;
}

/** Where our lease is in the queues of `names`: holds when first in every one, waits when behind in any. */
async function multiPlace(ns: Namespace, names: readonly string[], leaseId: string, signal: AbortSignal): Promise<Place> {
  const { queues } = await MultiLock.queue(ns, names, { signal });
  if (queues.some((q) => q.waiters.some((c) => c.leaseId === leaseId))) return 'waits';
  if (queues.every((q) => q.holders.some((c) => c.leaseId === leaseId))) return 'holds';
  return undefined;
}

/** What `lock` takes for `names`: a Mutex for one, a MultiLock for several. */
export function lockSpec(names: readonly string[]): RunSpec {
  if (names.length === 1) {
    const n = names[0]!;
    return { kind: 'mutex', name: n, waitingFor: `lock ${JSON.stringify(n)}`, acquire: async (session, signal) => ({ handle: await new Mutex(session, n).lock({ signal }) }) };
  }
  return {
    kind: 'multilock',
    name: names.join(', '),
    names,
    waitingFor: `locks ${listed(names)}`,
    acquire: async (session, signal) => {
      const handle = await new MultiLock(session, names).lock({ signal });
      const env: Record<string, string> = { LEASEHOLD_COUNT: String(names.length) };
      names.forEach((n, i) => {
        env[`LEASEHOLD_NAME_${i + 1}`] = n;
        env[`LEASEHOLD_KEY_${i + 1}`] = handle.keys[i]!;
      });
      return { handle, keys: handle.keys, env };
    },
    place: async (ns, leaseId, signal) => multiPlace(ns, names, leaseId, signal),
  };
}
