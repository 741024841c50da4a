/**
 * What the watch hub's scripted tests share (src/transport/watch-hub*.test.ts): a watch response made
 * from the fields a test names, a watcher that logs what it is told, and one turn of the real event
 * loop (the hub judges an unanswered request in the turn after its timer).
 */
import type { WatchResponse } from '../../src/transport/messages.js';
import type { WatchHandlers } from '../../src/transport/watch-hub.js';

const header = { revision: 7n, memberId: '1', raftTerm: 1n };
const base: WatchResponse = { header, watchId: 0, created: false, canceled: false, compactRevision: 0n, cancelReason: '', events: [] };

/** A watch response at revision 7: nothing but the fields given. */
export const watchResponse = (res: Partial<WatchResponse>): WatchResponse => ({ ...base, ...res });

/** A watcher that logs `created <revision>`, `events` and `broken`. */
export function recorder(): WatchHandlers & { log: string[] } {
  const log: string[] = [];
  return { log, created: (revision) => log.push(`created ${revision}`), events: () => log.push('events'), broken: () => log.push('broken') };
}

/** One turn of the real event loop. */
export const turn = async (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
