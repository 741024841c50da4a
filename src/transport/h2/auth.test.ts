// The shared token fetch: each caller waits within its own deadline and signal; the fetch's attempts
// get the longest remaining wait (at most authAttemptMs) and stop when nobody waits. (etcd's side of
// authentication is tested against a real etcd in test/integration/h2-security.test.ts.)
import { describe, expect, test } from 'vitest';
import { TransportError } from '../port.js';
import { authAttemptMs, Tokens, type Attempts } from './auth.js';

/** Tokens whose fetch waits until the test settles it. */
function pending(): { tokens: Tokens; attempts: () => Attempts; settle: (token: string | Error) => void; fetches: () => number } {
  let attempts: Attempts | undefined;
  let settle: ((token: string | Error) => void) | undefined;
  let fetches = 0;
  const tokens = new Tokens((a) => {
    fetches++;
    attempts = a;
    return new Promise<string>((resolve, reject) => (settle = (t) => (typeof t === 'string' ? resolve(t) : reject(t))));
  });
  return { tokens, attempts: () => attempts!, settle: (t) => settle!(t), fetches: () => fetches };
}

describe('Tokens', () => {
  test('one fetch for all waiters; its budget is the longest remaining wait, at most authAttemptMs, and 0 once nobody waits', async () => {
    const { tokens, attempts, fetches } = pending();
    const reason = new Error('gave up');
    const a = new AbortController();
    const b = new AbortController();
    const first = tokens.current(1000, a.signal).catch((e: unknown) => e);
    expect(attempts().budget()).toBeGreaterThan(0);
    expect(attempts().budget()).toBeLessThanOrEqual(1000);
    const second = tokens.current(60_000, b.signal).catch((e: unknown) => e);
    expect([attempts().budget(), fetches()]).toEqual([authAttemptMs, 1]);
    a.abort(reason);
    expect(await first).toBe(reason);
    expect(attempts().budget()).toBe(authAttemptMs); // the other still waits
    b.abort(reason);
    expect(await second).toBe(reason);
    expect(attempts().budget()).toBeLessThanOrEqual(0);
  });

  test('a caller whose deadline passes rejects with DEADLINE_EXCEEDED naming the member tried; the fetch goes on for the others', async () => {
    const { tokens, attempts, settle } = pending();
    const hasty = tokens.current(30).catch((e: unknown) => e);
    const patient = tokens.current(60_000);
    attempts().endpoint = '127.0.0.1:2379';
    const error = (await hasty) as TransportError;
    expect(error).toBeInstanceOf(TransportError);
    expect([error.code, error.kind, error.endpoint, error.message]).toEqual(['DEADLINE_EXCEEDED', 'transient', '127.0.0.1:2379', '4 DEADLINE_EXCEEDED: no auth token within 30 ms (authenticating at 127.0.0.1:2379)']);
    settle('t1');
    expect([await patient, tokens.known]).toEqual(['t1', 't1']);
  });

  test('a failed fetch is forgotten: the next caller fetches again; an invalid token likewise', async () => {
    const { tokens, settle, fetches } = pending();
    const refused = new Error('refused');
    const first = tokens.current(60_000).catch((e: unknown) => e);
    settle(refused);
    expect(await first).toBe(refused);
    const second = tokens.current(60_000);
    settle('t2');
    expect([await second, fetches()]).toEqual(['t2', 2]);
    tokens.invalidate('t2');
    expect(tokens.known).toBeNull();
    const third = tokens.current();
    settle('t3');
    expect([await third, fetches()]).toEqual(['t3', 3]);
  });
});
