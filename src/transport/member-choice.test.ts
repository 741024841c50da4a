// The member-choice policy on its own: answered members first, then those not heard from, then the
// silent ones (silent longest first), the one to avoid last; a silence is forgotten after the memory.
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test, vi } from 'vitest';
import { MemberChoice } from './member-choice.js';

const members = ['a', 'b', 'c', 'd'];

describe('MemberChoice', () => {
  test('answered, then not heard from, then silent (silent longest first), the avoided one last', async () => {
    const choice = new MemberChoice<string>();
    choice.silent('c');
    await delay(2);
    choice.silent('a');
    choice.answered('d');
    for (let i = 0; i < 20; i++) {
      expect(choice.order(members)).toEqual(['d', 'b', 'c', 'a']);
      expect(choice.order(members, 'd')).toEqual(['b', 'c', 'a', 'd']);
    }
    expect(choice.isSilent('a')).toBe(true);
    expect(choice.isSilent('b')).toBe(false);
  });

  test('every silent member is remembered, not only the last; an answer clears a silence', () => {
    const choice = new MemberChoice<string>();
    choice.silent('a');
    choice.silent('b');
    expect(choice.order(members).slice(0, 2).sort()).toEqual(['c', 'd']);
    choice.answered('a');
    expect(choice.order(members)[0]).toBe('a');
    expect(choice.isSilent('b')).toBe(true);
  });

  test('members of one rank come in random order (clients spread over the members that work)', () => {
    const choice = new MemberChoice<string>();
    const firsts = new Set(Array.from({ length: 200 }, () => choice.order(members)[0]));
    expect(firsts.size).toBe(4);
  });

  test('a silence older than the memory counts as not heard from', async () => {
    const choice = new MemberChoice<string>(20);
    choice.silent('a');
    choice.answered('b');
    expect(choice.order(['a', 'b', 'c']).at(-1)).toBe('a');
    await delay(30);
    expect(choice.isSilent('a')).toBe(false);
    expect(choice.order(['a', 'b', 'c'])[0]).toBe('b');
    expect(new Set(Array.from({ length: 100 }, () => choice.order(['a', 'b', 'c'])[1]))).toEqual(new Set(['a', 'c']));
  });

  test('listeners hear of every silence until they stop listening', () => {
    const choice = new MemberChoice<string>();
    const heard: string[] = [];
    const stop = choice.onSilent((m) => heard.push(m));
    choice.silent('a');
    choice.silent('b');
    stop();
    choice.silent('c');
    expect(heard).toEqual(['a', 'b']);
  });

  test('a silence lasts exactly the memory: silent just before, not heard from at its end', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    try {
      const choice = new MemberChoice<string>(1000);
      vi.advanceTimersByTime(5);
      choice.silent('a');
      vi.advanceTimersByTime(999);
      expect(choice.isSilent('a')).toBe(true);
      vi.advanceTimersByTime(1);
      expect(choice.isSilent('a')).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });
});
