import { describe, expect, test } from 'vitest';
import type { ListedContender, ListedPrimitive, Listing } from '../list.js';
import { LiveModel } from './live-model.js';

const c = (key: string, token: bigint): ListedContender => ({ key, token, leaseId: '1', leaseHex: '1', value: '' });
const mutex = (holders: ListedContender[], waiters: ListedContender[] = []): ListedPrimitive => ({ kind: 'mutex', name: 'jobs', holders, waiters });
const listing = (...primitives: ListedPrimitive[]): Listing => ({ prefix: '', revision: 1n, keys: 0, truncated: false, primitives, foreign: [] });

describe('LiveModel', () => {
  test('times: a snapshot gives lower bounds; events give exact times, kept while the key stays', () => {
    const m = new LiveModel(10);
    const a = c('jobs/a', 5n);
    const b = c('jobs/b', 6n);
    const first = m.update(listing(mutex([a])), 1000, false);
    expect(first.primitives[0]!.holders[0]!.since).toEqual({ at: 1000, exact: false });
    const second = m.update(listing(mutex([a], [b])), 2000, true);
    expect(second.primitives[0]!.holders[0]!.since).toEqual({ at: 1000, exact: false });
    expect(second.primitives[0]!.waiters[0]!.since).toEqual({ at: 2000, exact: true });
    const third = m.update(listing(mutex([b])), 3000, true);
    expect(third.primitives[0]!.holders[0]!.since).toEqual({ at: 3000, exact: true }); // holds since the handoff, not since it queued
  });

  test('the timeline: acquired, handoff, released, newest first, at most `timeline` entries; none for the first state', () => {
    const m = new LiveModel(2);
    const a = c('jobs/a', 5n);
    const b = c('jobs/b', 6n);
    expect(m.update(listing(mutex([a])), 1, false).timeline).toEqual([]);
    expect(m.update(listing(mutex([b])), 2, true).timeline.map((e) => [e.event, e.from?.key, e.to?.key])).toEqual([['handoff', 'jobs/a', 'jobs/b']]);
    const view = m.update(listing(), 3, false);
    expect(view.timeline.map((e) => [e.event, e.from?.key, e.exact])).toEqual([
      ['released', 'jobs/b', false],
      ['handoff', 'jobs/a', true],
    ]);
    expect(m.update(listing(mutex([a])), 4, true).timeline.map((e) => e.event)).toEqual(['acquired', 'released']);
  });
});
