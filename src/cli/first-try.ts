/**
 * `--timeout`: how long to wait once the first try found the name taken. The clock starts at that
 * first try — when etcd shows our key in the queue behind someone — not when leasehold starts, so a
 * slow start-up or a slow etcd never turns a free name into a timeout, and `--timeout 0` means exactly
 * one try: take it if it is free now, else exit 75 without waiting.
 */
import type { Namespace } from 'etcd3';
import type { Session } from '../session.js';
import { anySignal, sleep } from '../transport/abort.js';
import { showDuration } from './args.js';
import { readQueue } from './inspect.js';
import type { Holding, Place, RunSpec } from './run.js';

/** The wait passed `--timeout`; the message says so, for `gave up waiting for …: <message>`. */
export class TimedOut extends Error {
  constructor(readonly timeout: number) {
    super(timeout === 0 ? 'taken at the first try (--timeout 0)' : `still taken ${showDuration(timeout)} after the first try (--timeout ${showDuration(timeout)})`);
  }
}

/**
 * Takes the holding; with a `timeout` (ms), gives up that long after the first try found the name
 * taken, rejecting with {@link TimedOut} (the queue key is deleted, as on any abort).
 */
export async function acquireWithin(spec: RunSpec, session: Session, ns: Namespace, signal: AbortSignal, timeout: number | undefined): Promise<Holding> {
  if (timeout === undefined) return spec.acquire(session, signal);
  const giveUp = new AbortController();
  const settled = new AbortController();
  const acquiring = spec.acquire(session, anySignal(signal, giveUp.signal));
  void firstTryWaits(spec, session.leaseId, ns, settled.signal)
    .then(async (waits) => {
      if (!waits) return;
      await sleep(timeout, settled.signal);
      giveUp.abort(new TimedOut(timeout));
    })
    .catch(() => undefined);
  try {
    return await acquiring;
  } finally {
    settled.abort();
  }
}

/** Where `leaseId` stands in the queue of `spec`'s kind and name. */
function placeIn(spec: RunSpec): (ns: Namespace, leaseId: string, signal: AbortSignal) => Promise<Place> {
  const kind = spec.kind;
  if (kind === 'multilock') throw new TypeError('a MultiLock run needs its own place()');
  return async (ns, leaseId, signal) => {
    const queue = await readQueue(ns, kind, spec.name, signal);
    if (queue.holders.some((c) => c.leaseId === leaseId)) return 'holds';
    if (queue.waiters.some((c) => c.leaseId === leaseId)) return 'waits';
    return undefined;
  };
}

/**
 * Reads the queue until the key of our lease is in it: true when it waits there (the first try found
 * the name taken), false when it holds. A failed read is tried again; `signal` ends the reading.
 */
async function firstTryWaits(spec: RunSpec, leaseId: string, ns: Namespace, signal: AbortSignal): Promise<boolean> {
  const placeOf = spec.place ?? placeIn(spec);
  for (;;) {
    try {
      const place = await placeOf(ns, leaseId, signal);
      if (place !== undefined) return place === 'waits';
    } catch (error) {
      if (signal.aborted) throw error;
    }
    await sleep(20, signal);
  }
}
