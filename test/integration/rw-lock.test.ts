// ReadWriteLock against a real etcd: readers share, writers exclude, FIFO without writer starvation, try
// variants, abort cleanup, a lease lost mid-wait (etcd issue 16221), and the example.
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { isLeaseLostError } from '../../src/errors.js';
import type { LockHandle } from '../../src/handle.js';
import { ReadWriteLock } from '../../src/rw-lock.js';
import type { Session } from '../../src/session.js';
import { eventually, runTs } from '../helpers.js';
import { etcdForFile } from '../fixture.js';

const fx = etcdForFile(10);

const lock = async (name: string, ttl?: number) => new ReadWriteLock(await fx.session(ttl), name);

/** Polls `check` until it holds, for up to 15 s by default (generous: other tests share the machine). */
const until = (check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> => eventually(check, timeoutMs);

const keys = (prefix: string): Promise<string[]> => fx.admin.getAll().prefix(prefix).keys();
const queued = async (name: string): Promise<number> => (await keys(`${name}/`)).length;

/** In-process counters of what is held, checked at every acquisition. */
function ledger() {
  const state = { readers: 0, writers: 0, maxReaders: 0, violations: [] as string[] };
  return {
    state,
    read(): void {
      if (state.writers > 0) state.violations.push(`reader in while ${state.writers} writer(s) hold`);
      state.readers++;
      state.maxReaders = Math.max(state.maxReaders, state.readers);
    },
    write(): void {
      if (state.writers > 0 || state.readers > 0) {
        state.violations.push(`writer in while ${state.writers} writer(s) and ${state.readers} reader(s) hold`);
      }
      state.writers++;
    },
  };
}

describe('ReadWriteLock exclusion', () => {
  test('readers share, writers exclude: 10 mixed contenders × 8 cycles, checked at every acquisition', async () => {
    const name = 'rw-mixed';
    const book = ledger();
    const contenders = await Promise.all(Array.from({ length: 10 }, () => lock(name)));
    await Promise.all(
      contenders.map(async (rw, i) => {
        for (let cycle = 0; cycle < 8; cycle++) {
          if ((i + cycle) % 3 === 0) {
            const handle = await rw.writeLock();
            book.write();
            await delay(Math.random() * 5);
            book.state.writers--;
            await handle.release();
          } else {
            const handle = await rw.readLock();
            book.read();
            await delay(Math.random() * 15);
            book.state.readers--;
            await handle.release();
          }
        }
      }),
    );
    expect(book.state.violations).toEqual([]);
    expect(book.state.maxReaders).toBeGreaterThanOrEqual(2); // readers really did overlap
    expect(await keys(`${name}/`)).toEqual([]);
  });

  test('readers hold together; a writer waits for all of them and readers behind it wait for the writer', async () => {
    const name = 'rw-order';
    const r1 = await (await lock(name)).readLock();
    const r2 = await (await lock(name)).readLock(); // shares with r1 at once
    expect(r1.held && r2.held).toBe(true);
    const events: string[] = [];
    const writer = (await lock(name)).writeLock().then((h) => (events.push('w'), h));
    await until(async () => (await queued(name)) === 3);
    const r3 = (await lock(name)).readLock().then((h) => (events.push('r3'), h));
    await until(async () => (await queued(name)) === 4);
    await delay(200);
    expect(events).toEqual([]); // r3 queued behind the writer, although only readers hold

    await r1.release();
    await delay(100);
    expect(events).toEqual([]);
    await r2.release();
    const w = await writer;
    await delay(100);
    expect(events).toEqual(['w']);
    await w.release();
    await (await r3).release();
    expect(events).toEqual(['w', 'r3']);
    expect(await keys(`${name}/`)).toEqual([]);
  });

  test('two read locks on one Session share; write locks on one Session exclude each other', async () => {
    const name = 'rw-one-session';
    const rw = await lock(name);
    const [a, b] = await Promise.all([rw.readLock(), rw.readLock()]);
    expect(a!.key).not.toBe(b!.key);
    expect(a!.key).toMatch(new RegExp(`^${name}/read/${a!.session.leaseHex}-[0-9a-z]+$`));
    expect(await rw.tryWriteLock()).toBeNull();
    await Promise.all([a!.release(), b!.release()]);
    const w1 = await rw.writeLock();
    expect(w1.key).toMatch(new RegExp(`^${name}/write/`));
    let second = false;
    const w2 = rw.writeLock().then((h) => ((second = true), h));
    await delay(200);
    expect(second).toBe(false);
    await w1.release();
    await (await w2).release();
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('ReadWriteLock fairness', () => {
  test('a writer is not starved by a continuous stream of overlapping readers: it waits only for the reads queued before it', async () => {
    const name = 'rw-starve';
    const book = ledger();
    const readers = await Promise.all(Array.from({ length: 4 }, () => lock(name)));
    const writer = await lock(name); // its session first: nothing but microtasks between "a reader holds" and the ask
    let stop = false;
    /** Each read: its token, when it was granted, when its release began and ended. */
    const readLog: { token: bigint; at: number; releasing: number; released: number }[] = [];
    const HOLD_MAX = 50;
    const loops = readers.map(async (rw, i) => {
      await delay(i * 10); // staggered, so some reader always holds
      while (!stop) {
        const handle = await rw.readLock();
        book.read();
        const at = performance.now();
        await delay(30 + Math.random() * (HOLD_MAX - 30));
        book.state.readers--;
        const releasing = performance.now();
        await handle.release();
        readLog.push({ token: handle.token, at, releasing, released: performance.now() });
      }
    });
    await delay(300);
    await until(() => book.state.readers > 0); // the stream of reads is under way: some reader holds
    const asked = performance.now();
    const w = await writer.writeLock({ signal: AbortSignal.timeout(20_000) });
    const granted = performance.now();
    book.write();
    await delay(100); // readers keep trying meanwhile
    book.state.writers--;
    const releasing = performance.now();
    await w.release();
    await delay(200);
    stop = true;
    await Promise.all(loops);
    expect(book.state.violations).toEqual([]);
    // Only reads queued before the writer (smaller tokens) were granted while it waited, each held
    // 30–50 ms; the writer got in as soon as the last of them let go — not when the stream stopped.
    const duringWait = readLog.filter((r) => r.at > asked && r.at < granted);
    expect(duringWait.every((r) => r.token < w.token)).toBe(true);
    const ahead = readLog.filter((r) => r.token < w.token && r.released > asked);
    expect(ahead.length).toBeGreaterThan(0);
    const lastAhead = Math.max(...ahead.map((r) => r.releasing));
    expect(granted).toBeGreaterThanOrEqual(lastAhead);
    expect(granted - lastAhead).toBeLessThan(2000);
    expect(granted - asked).toBeLessThan(HOLD_MAX + 2000);
    // Every reader that queued after the writer got in only after the writer let go.
    const later = readLog.filter((r) => r.token > w.token);
    expect(later.length).toBeGreaterThan(0);
    expect(later.every((r) => r.at >= releasing)).toBe(true);
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('ReadWriteLock try variants and abort', () => {
  test('tryReadLock / tryWriteLock: handles when free, null when blocked, no key left on null', async () => {
    const name = 'rw-try';
    const a = await lock(name);
    const b = await lock(name);
    const r = await a.tryReadLock();
    expect(r?.held).toBe(true);
    const r2 = await b.tryReadLock();
    expect(r2?.held).toBe(true);
    expect(await b.tryWriteLock()).toBeNull();
    await Promise.all([r!.release(), r2!.release()]);

    const w = await a.tryWriteLock();
    expect(w?.held).toBe(true);
    expect(await b.tryReadLock()).toBeNull();
    expect(await b.tryWriteLock()).toBeNull();
    expect(await keys(`${name}/`)).toEqual([w!.key]);
    await w!.release();

    // A queued writer blocks new readers (no barging), even though only a reader holds.
    const r3 = await a.readLock();
    const queuedWriter = b.writeLock();
    await until(async () => (await queued(name)) === 2);
    expect(await (await lock(name)).tryReadLock()).toBeNull();
    await r3.release();
    await (await queuedWriter).release();
    expect(await keys(`${name}/`)).toEqual([]);
  });

  test('aborting a queued reader or writer rejects with signal.reason, leaves no key, and unblocks those behind', async () => {
    const name = 'rw-abort';
    const holder = await (await lock(name)).readLock();
    const writerAbort = new AbortController();
    const writer = (await lock(name)).writeLock({ signal: writerAbort.signal });
    await until(async () => (await queued(name)) === 2);
    const readerAbort = new AbortController();
    const reader = (await lock(name)).readLock({ signal: readerAbort.signal });
    const tail = (await lock(name)).readLock(); // behind the writer
    await until(async () => (await queued(name)) === 4);

    const readerReason = new Error('reader gave up');
    readerAbort.abort(readerReason);
    await expect(reader).rejects.toBe(readerReason);
    const writerReason = new Error('writer gave up');
    writerAbort.abort(writerReason);
    await expect(writer).rejects.toBe(writerReason);
    const t = await tail; // no writer ahead any more: shares with the holder
    expect(t.held && holder.held).toBe(true);
    await Promise.all([t.release(), holder.release()]);
    expect(await keys(`${name}/`)).toEqual([]);

    const already = AbortSignal.abort(new Error('never started'));
    await expect((await lock(name)).writeLock({ signal: already })).rejects.toBe(already.reason);
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('ReadWriteLock.withReadLock / withWriteLock', () => {
  test('run fn under the lock, return its value, and release it — also when fn throws', async () => {
    const name = 'rw-with';
    const a = await lock(name);
    const b = await lock(name);
    const read = await a.withReadLock(async (handle) => {
      expect(handle.key).toMatch(new RegExp(`^${name}/read/`));
      expect(handle.held).toBe(true);
      expect((await b.tryReadLock().then(async (r) => (await r?.release(), r !== null)))).toBe(true); // readers share
      expect(await b.tryWriteLock()).toBeNull(); // a writer is excluded
      return 'read';
    });
    expect(read).toBe('read');
    const write = await a.withWriteLock(async (handle) => {
      expect(handle.key).toMatch(new RegExp(`^${name}/write/`));
      expect(await b.tryReadLock()).toBeNull(); // a reader is excluded
      return 42;
    });
    expect(write).toBe(42);
    const boom = new Error('failed under the lock');
    let inside: LockHandle | undefined;
    await expect(
      a.withWriteLock((handle) => {
        inside = handle;
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(inside!.held).toBe(false);
    await expect(a.withReadLock(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(await keys(`${name}/`)).toEqual([]);
    // The lock is free again: a writer gets it at once.
    const w = await b.tryWriteLock();
    expect(w?.held).toBe(true);
    await w!.release();
  });
});

describe('ReadWriteLock and lost leases (etcd issue 16221)', () => {
  test('a writer whose lease is revoked mid-wait is never told it holds; the writer behind it gets in alone', async () => {
    const name = 'rw-16221';
    const m1 = await (await lock(name)).writeLock();
    const doomed = await lock(name, 3);
    const m2 = doomed.writeLock();
    await until(async () => (await queued(name)) === 2);
    const m3 = (await lock(name)).writeLock();
    await until(async () => (await queued(name)) === 3);

    // Go's recipe: s2 is revoked while m2 waits, then m1 unlocks, and both m2 and m3 "hold".
    await fx.admin.leaseClient.leaseRevoke({ ID: (doomed.session as Session).leaseId });
    await m1.release();
    const outcome = await m2.then(
      (h: LockHandle) => h,
      (e: unknown) => e,
    );
    expect(isLeaseLostError(outcome)).toBe(true);
    const w3 = await m3;
    expect(w3.held).toBe(true);
    expect(await keys(`${name}/`)).toEqual([w3.key]);
    await w3.release();
  });

  test('a reader whose lease is revoked behind a writer gets LeaseLostError, not a shared lock', async () => {
    const name = 'rw-16221-read';
    const w = await (await lock(name)).writeLock();
    const doomed = await lock(name, 3);
    const r = doomed.readLock();
    await until(async () => (await queued(name)) === 2);
    await fx.admin.leaseClient.leaseRevoke({ ID: (doomed.session as Session).leaseId });
    await w.release();
    await expect(r).rejects.toSatisfy(isLeaseLostError);
    expect(await keys(`${name}/`)).toEqual([]);
  });
});

describe('ReadWriteLock input validation', () => {
  test('a bad name throws TypeError naming it; a bad signal is a TypeError', async () => {
    const s = await fx.session();
    expect(() => new ReadWriteLock(s, '')).toThrow(/non-empty string, got the string ""/);
    expect(() => new ReadWriteLock(s, 'cfg/')).toThrow(/not to end with "\/", got the string "cfg\/"/);
    await expect(new ReadWriteLock(s, 'cfg').readLock({ signal: 1 as unknown as AbortSignal })).rejects.toThrow(
      /`signal` of ReadWriteLock.readLock to be an AbortSignal, got `1`/,
    );
  });
});

describe('examples/rw-lock.ts', () => {
  test('runs against ETCD_ENDPOINTS as a user would run it, importing leasehold', async () => {
    const file = fileURLToPath(new URL('../../examples/rw-lock.ts', import.meta.url));
    const { code, output } = await runTs(file, { ETCD_ENDPOINTS: fx.etcd.endpoints.join(',') }, 50_000);
    expect(output).toMatch(/config is now v3; every read saw a whole version: true/);
    expect(code).toBe(0);
  });
});
