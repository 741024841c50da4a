/**
 * What the live page shows, from one listing after another: how long each key has held or waited,
 * and a timeline of handoffs. etcd keeps no clock, so the times are the feed's own: a key is "seen"
 * when the watch delivered it. Times from a snapshot (the first read, or a re-read after the watch
 * broke) are lower bounds — the key existed before it was read — and are marked `exact: false`
 * (the page shows "≥ 12 s"); times from watch events are exact to the delivery delay.
 */
import type { ListedContender, ListedPrimitive, Listing } from '../list.js';

/** When something began, as seen by the feed. */
export interface Since {
  /** Milliseconds (the feed's `Date.now()`) when it was first seen. */
  at: number;
  /** True when seen as it happened (a watch event), false when found by a read (a lower bound). */
  exact: boolean;
}

/** A holder or waiter with how long it has held (holders) or waited (waiters). */
export interface LiveContender extends ListedContender {
  /** Since when it holds (a holder) or waits (a waiter). */
  since: Since;
}

/** A primitive as the page shows it. */
export interface LivePrimitive extends Omit<ListedPrimitive, 'holders' | 'waiters'> {
  /** As {@link ListedPrimitive.holders}, each with since when it holds. */
  holders: LiveContender[];
  /** As {@link ListedPrimitive.waiters}, each with since when it waits. */
  waiters: LiveContender[];
}

/** A change of holders: someone took it, someone left it, or one gave it to the next. */
export interface Handoff {
  /** When the feed saw it (its `Date.now()`). */
  at: number;
  /** False when it happened while the watch was down (found by the read after): `at` is then later than the change. */
  exact: boolean;
  /** The primitive's kind. */
  kind: ListedPrimitive['kind'];
  /** The primitive's name. */
  name: string;
  /** `handoff` when a holder left and another came in the same change. */
  event: 'acquired' | 'released' | 'handoff';
  /** The holder that left (released, handoff). */
  from?: Pick<ListedContender, 'key' | 'token' | 'leaseHex' | 'value'>;
  /** The holder that came (acquired, handoff). */
  to?: Pick<ListedContender, 'key' | 'token' | 'leaseHex' | 'value'>;
}

/** One state of the page. */
export interface LiveView extends Omit<Listing, 'primitives'> {
  /** As {@link Listing.primitives}, with times. */
  primitives: LivePrimitive[];
  /** Newest first. */
  timeline: Handoff[];
}

const idOf = (p: ListedPrimitive): string => `${p.kind}\0${p.name}`;
const keyOf = (p: ListedPrimitive, c: ListedContender): string => `${idOf(p)}\0${c.key}\0${c.token}`;
const brief = (c: ListedContender): Handoff['to'] => ({ key: c.key, token: c.token, leaseHex: c.leaseHex, value: c.value });

/** Follows listings; keeps first-seen times and the timeline. */
export class LiveModel {
  readonly #limit: number;
  #seen = new Map<string, Since>();
  #holding = new Map<string, Since>();
  #holders = new Map<string, { p: ListedPrimitive; holders: ListedContender[] }>();
  #timeline: Handoff[] = [];
  #first = true;

  /** `timeline`: how many handoffs to keep. */
  constructor(timeline: number) {
    this.#limit = timeline;
  }

  /**
   * The view of `listing` at `now`. `exact`: the listing follows the previous one through watch
   * events, with nothing missed in between (false for a snapshot).
   */
  update(listing: Listing, now: number, exact: boolean): LiveView {
    const at: Since = { at: now, exact: exact && !this.#first };
    const seen = new Map<string, Since>();
    const holding = new Map<string, Since>();
    const holders = new Map<string, { p: ListedPrimitive; holders: ListedContender[] }>();
    const primitives = listing.primitives.map((p): LivePrimitive => {
      const live = (c: ListedContender, since: Map<string, Since>, into: Map<string, Since>): LiveContender => {
        const s = since.get(keyOf(p, c)) ?? at;
        into.set(keyOf(p, c), s);
        return { ...c, since: s };
      };
      holders.set(idOf(p), { p, holders: p.holders });
      return { ...p, holders: p.holders.map((c) => live(c, this.#holding, holding)), waiters: p.waiters.map((c) => live(c, this.#seen, seen)) };
    });
    if (!this.#first) this.#record(holders, at);
    this.#first = false;
    this.#seen = seen;
    this.#holding = holding;
    this.#holders = holders;
    return { ...listing, primitives, timeline: [...this.#timeline] };
  }

  /** Appends the handoffs between the last holders and `now` (newest first). */
  #record(now: Map<string, { p: ListedPrimitive; holders: ListedContender[] }>, at: Since): void {
    const events: Handoff[] = [];
    for (const id of new Set([...this.#holders.keys(), ...now.keys()])) {
      const before = this.#holders.get(id);
      const after = now.get(id);
      const p = (after ?? before)!.p;
      const had = new Set((before?.holders ?? []).map((c) => keyOf(p, c)));
      const has = new Set((after?.holders ?? []).map((c) => keyOf(p, c)));
      const gone = (before?.holders ?? []).filter((c) => !has.has(keyOf(p, c)));
      const came = (after?.holders ?? []).filter((c) => !had.has(keyOf(p, c)));
      const base = { at: at.at, exact: at.exact, kind: p.kind, name: p.name };
      for (let i = 0; i < Math.max(gone.length, came.length); i++) {
        const from = gone[i];
        const to = came[i];
        const event = from && to ? 'handoff' : to ? 'acquired' : 'released';
        events.push({ ...base, event, ...(from ? { from: brief(from) } : {}), ...(to ? { to: brief(to) } : {}) });
      }
    }
    this.#timeline = [...events.reverse(), ...this.#timeline].slice(0, this.#limit);
  }
}
