// The watch hub's life cycle on a port whose streams open when told to, on a fake clock (no etcd):
// one stream opened for many watchers, cancels, the idle close, a refused open, a stream that
// ended or was replaced (its late messages change nothing), what etcd's cancels and empty messages
// do, and when the verdict on an unanswered request falls.
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { WatchRequest, WatchResponse } from './messages.js';
import type { EtcdTransport, Member, StreamHandlers, StreamOptions } from './port.js';
import { TransportError } from './port.js';
import { hubStats, suspect, watch } from './watch-hub.js';
import { unusedPort } from '../../test/unit/port-stub.js';
import { recorder, turn, watchResponse } from '../../test/unit/watch-script.js';

/** One stream the hub asked for: its requests, whether it is closed, and its side of the script. */
interface Asked {
  options: StreamOptions | undefined;
  sent: WatchRequest[];
  closed: boolean;
  message(res: Partial<WatchResponse>): void;
  end(): void;
  open(): Promise<void>;
  refuse(): Promise<void>;
}

const member: Member = { endpoint: 'm1:2379' };
const event = { type: 'put' as const, kv: { key: Buffer.from('k'), value: Buffer.from('v'), createRevision: 5n, modRevision: 9n, version: 1n, lease: '0' }, prevKv: undefined };

function port(): { transport: EtcdTransport; streams: Asked[]; told: string[]; silent(m: Member): void } {
  const streams: Asked[] = [];
  const told: string[] = [];
  const listeners: ((m: Member) => void)[] = [];
  const transport: EtcdTransport = {
    ...unusedPort([member.endpoint]),
    watch: (handlers: StreamHandlers<WatchResponse>, options?: StreamOptions) =>
      new Promise((resolve, reject) => {
        const asked: Asked = {
          options,
          sent: [],
          closed: false,
          message: (res) => handlers.message(watchResponse(res)),
          end: () => handlers.end(new TransportError('reset', { code: 'UNAVAILABLE', kind: 'transient', endpoint: member.endpoint })),
          open: async () => {
            resolve({ member, send: (req) => asked.sent.push(req), close: () => (asked.closed = true) });
            await Promise.resolve();
          },
          refuse: async () => {
            reject(new TransportError('no member reachable', { code: 'UNAVAILABLE', kind: 'transient', endpoint: undefined }));
            await Promise.resolve();
          },
        };
        streams.push(asked);
      }),
    markSilent: (m) => told.push(`silent ${m.endpoint}`),
    markAnswered: (m) => told.push(`answered ${m.endpoint}`),
    onSilent: (listener) => {
      listeners.push(listener);
      return () => undefined;
    },
  };
  return { transport, streams, told, silent: (m) => listeners.forEach((l) => l(m)) };
}

const creations = (a: Asked): number[] => a.sent.filter((r) => r.create).map((r) => r.create!.watchId);
const progress = (a: Asked): number => a.sent.filter((r) => r.progress).length;

/** Two watchers on a stream just opened, on a fake clock; their creations sent, not answered. */
async function twoWatchers(): Promise<{ p: ReturnType<typeof port>; a: ReturnType<typeof recorder>; b: ReturnType<typeof recorder>; ida: number; idb: number }> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const p = port();
  const [a, b] = [recorder(), recorder()];
  watch(p.transport, { key: Buffer.from('a') }, a);
  watch(p.transport, { key: Buffer.from('b') }, b);
  await p.streams[0]!.open();
  const [ida, idb] = creations(p.streams[0]!);
  return { p, a, b, ida: ida!, idb: idb! };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('watch hub streams', () => {
  test('watchers before the stream opens share one stream, opened with require-leader; their ids are distinct and positive (0 asks etcd to choose)', async () => {
    const p = port();
    const watchers = [recorder(), recorder(), recorder()];
    for (const w of watchers) watch(p.transport, { key: Buffer.from('k') }, w);
    expect(p.streams).toHaveLength(1);
    expect(p.streams[0]!.options).toEqual({ requireLeader: true });
    await p.streams[0]!.open();
    const ids = creations(p.streams[0]!);
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((id) => id > 0)).toBe(true);
    expect(hubStats(p.transport)).toEqual({ opened: 1, watchers: 3 });
    for (const id of ids) p.streams[0]!.message({ watchId: id, created: true });
    expect(watchers.map((w) => w.log)).toEqual([['created 7'], ['created 7'], ['created 7']]);
  });

  test('creations answered out of order reach their own watchers, and none is left counted as unanswered', async () => {
    const { p, a, b, ida, idb } = await twoWatchers();
    p.streams[0]!.message({ watchId: idb, created: true, header: { ...watchResponse({}).header, revision: 8n } });
    p.streams[0]!.message({ watchId: ida, created: true });
    p.streams[0]!.message({ watchId: -1 }); // the opening probe's answer
    expect([a.log, b.log]).toEqual([['created 7'], ['created 8']]);
    vi.advanceTimersByTime(3000);
    await turn();
    expect([a.log, b.log, p.streams[0]!.closed]).toEqual([['created 7'], ['created 8'], false]);
  });

  test('cancels: one queued before the stream opens is never sent; a live one is cancelled on the stream and hears nothing more', async () => {
    const p = port();
    const [a, b] = [recorder(), recorder()];
    const c = recorder();
    const cancelA = watch(p.transport, { key: Buffer.from('a') }, a);
    const cancelB = watch(p.transport, { key: Buffer.from('b') }, b);
    const cancelC = watch(p.transport, { key: Buffer.from('c') }, c);
    cancelC(); // the last queued: the others stay queued
    cancelA();
    cancelA(); // twice: harmless
    await p.streams[0]!.open();
    const [idb] = creations(p.streams[0]!);
    expect(p.streams[0]!.sent.filter((r) => r.create).map((r) => r.create!.key.toString())).toEqual(['b']);
    p.streams[0]!.message({ watchId: idb, created: true });
    cancelB();
    expect(p.streams[0]!.sent.at(-1)).toEqual({ cancel: { watchId: idb } });
    p.streams[0]!.message({ watchId: idb, events: [event] });
    p.streams[0]!.message({ watchId: idb, canceled: true });
    p.streams[0]!.message({ watchId: -1, created: true, canceled: true }); // a refusal naming nobody left
    expect([a.log, b.log]).toEqual([[], ['created 7']]);
    expect(hubStats(p.transport).watchers).toBe(0);
  });

  test('a creation answered after its watcher was cancelled, and a refusal of one cancelled, change nothing', async () => {
    const p = port();
    const [a, b] = [recorder(), recorder()];
    const cancelA = watch(p.transport, { key: Buffer.from('a') }, a);
    const cancelB = watch(p.transport, { key: Buffer.from('b') }, b);
    await p.streams[0]!.open();
    const [ida] = creations(p.streams[0]!);
    cancelA();
    cancelB();
    p.streams[0]!.message({ watchId: ida, created: true });
    p.streams[0]!.message({ watchId: -1, created: true, canceled: true });
    expect([a.log, b.log]).toEqual([[], []]);
  });

  test('with no watcher left the stream is closed after a second; a watch within it reuses the stream', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const p = port();
    const cancel = watch(p.transport, { key: Buffer.from('a') }, recorder());
    await p.streams[0]!.open();
    p.streams[0]!.message({ watchId: creations(p.streams[0]!)[0]!, created: true });
    p.streams[0]!.message({ watchId: -1 });
    cancel();
    vi.advanceTimersByTime(900);
    const again = watch(p.transport, { key: Buffer.from('b') }, recorder());
    expect(p.streams).toHaveLength(1);
    p.streams[0]!.message({ watchId: creations(p.streams[0]!)[1]!, created: true });
    vi.advanceTimersByTime(1500);
    expect(p.streams[0]!.closed).toBe(false);
    again();
    vi.advanceTimersByTime(999);
    expect(p.streams[0]!.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(p.streams[0]!.closed).toBe(true);
    expect(hubStats(p.transport)).toEqual({ opened: 1, watchers: 0 });
  });

  test('every watcher cancelled before the stream opens: it is closed as it opens, nothing is sent, the idle check finds nothing to close', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const p = port();
    watch(p.transport, { key: Buffer.from('a') }, recorder())();
    await p.streams[0]!.open();
    expect([p.streams[0]!.closed, p.streams[0]!.sent]).toEqual([true, []]);
    vi.advanceTimersByTime(1000);
    const b = recorder();
    watch(p.transport, { key: Buffer.from('b') }, b);
    await p.streams[1]!.open();
    p.streams[1]!.message({ watchId: creations(p.streams[1]!)[0]!, created: true });
    expect(b.log).toEqual(['created 7']);
  });

  test('a refused open breaks those waiting; the next watch opens again', async () => {
    const p = port();
    const a = recorder();
    watch(p.transport, { key: Buffer.from('a') }, a);
    await p.streams[0]!.refuse();
    expect(a.log).toEqual(['broken']);
    const b = recorder();
    watch(p.transport, { key: Buffer.from('b') }, b);
    expect(p.streams).toHaveLength(2);
    await p.streams[1]!.open();
    p.streams[1]!.message({ watchId: creations(p.streams[1]!)[0]!, created: true });
    expect(b.log).toEqual(['created 7']);
  });

  test("etcd's cancel (a compaction) breaks its watcher; an empty message is no event and no answer", async () => {
    const { p, a, b, ida, idb } = await twoWatchers();
    p.streams[0]!.message({ watchId: ida, created: true });
    p.streams[0]!.message({ watchId: idb, created: true });
    p.told.length = 0;
    p.streams[0]!.message({ watchId: ida, canceled: true, compactRevision: 5n });
    p.streams[0]!.message({ watchId: ida, events: [event] });
    p.streams[0]!.message({ watchId: idb }); // a progress notification for one watch: not an answer to our request
    p.streams[0]!.message({ watchId: -1, canceled: true }); // nor is a cancel naming no watch
    expect([a.log, b.log, p.told]).toEqual([['created 7', 'broken'], ['created 7'], []]);
    vi.advanceTimersByTime(1000); // the opening probe was never answered
    await turn();
    expect(b.log.at(-1)).toBe('broken');
  });

  test('the member of the stream goes silent elsewhere: one progress request at once; another member, or a second suspicion, sends none', async () => {
    const p = port();
    suspect(p.transport); // no stream yet: nothing to ask
    watch(p.transport, { key: Buffer.from('a') }, recorder());
    await p.streams[0]!.open();
    p.streams[0]!.message({ watchId: creations(p.streams[0]!)[0]!, created: true });
    p.streams[0]!.message({ watchId: -1 });
    expect(progress(p.streams[0]!)).toBe(1); // the opening probe
    p.silent({ endpoint: 'm2:2379' });
    expect(progress(p.streams[0]!)).toBe(1);
    p.silent(member);
    expect(progress(p.streams[0]!)).toBe(2);
    suspect(p.transport); // the last one is still unanswered
    expect(progress(p.streams[0]!)).toBe(2);
  });

  test('a stream that ended: its late messages and its end again change nothing on the next stream', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const p = port();
    const a = recorder();
    watch(p.transport, { key: Buffer.from('a') }, a);
    await p.streams[0]!.open();
    const [old] = creations(p.streams[0]!);
    p.streams[0]!.end();
    expect([a.log, p.streams[0]!.closed]).toEqual([['broken'], true]);
    const b = recorder();
    watch(p.transport, { key: Buffer.from('b') }, b);
    expect(p.streams).toHaveLength(2);
    await p.streams[1]!.open();
    const [idb] = creations(p.streams[1]!);
    p.told.length = 0;
    p.streams[0]!.message({ watchId: -1 });
    p.streams[0]!.message({ watchId: old!, created: true });
    p.streams[0]!.end();
    expect([b.log, p.told]).toEqual([[], []]);
    p.streams[1]!.message({ watchId: idb, created: true });
    p.streams[1]!.message({ watchId: -1 });
    vi.advanceTimersByTime(2500);
    await turn();
    expect([b.log, p.streams[1]!.closed]).toEqual([['created 7'], false]); // nothing left over from the old stream
  });
});

describe('the verdict on an unanswered request', () => {
  /** A stream with one watcher, its creation and the opening probe answered at 0; the timer they armed has run. */
  async function quiet(): Promise<{ p: ReturnType<typeof port>; a: ReturnType<typeof recorder> }> {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const p = port();
    const a = recorder();
    watch(p.transport, { key: Buffer.from('a') }, a);
    await p.streams[0]!.open();
    p.streams[0]!.message({ watchId: creations(p.streams[0]!)[0]!, created: true });
    p.streams[0]!.message({ watchId: -1 });
    vi.advanceTimersByTime(1000);
    await turn();
    p.told.length = 0;
    return { p, a };
  }

  test('a creation unanswered for exactly a second replaces the stream', async () => {
    const { p, a } = await quiet();
    watch(p.transport, { key: Buffer.from('b') }, recorder());
    vi.advanceTimersByTime(1000);
    await turn();
    expect([a.log.at(-1), p.told]).toEqual(['broken', ['silent m1:2379']]);
  });

  test('a timer armed by an older request does not condemn a younger one: it is judged a second after it was sent', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const p = port();
    const a = recorder();
    watch(p.transport, { key: Buffer.from('a') }, a);
    await p.streams[0]!.open(); // the creation and the probe are sent at 0 and armed the timer
    p.streams[0]!.message({ watchId: creations(p.streams[0]!)[0]!, created: true });
    vi.advanceTimersByTime(600);
    p.streams[0]!.message({ watchId: -1 });
    const b = recorder();
    watch(p.transport, { key: Buffer.from('b') }, b); // sent at 600
    vi.advanceTimersByTime(400); // the timer of 0 runs at 1000: b has waited 400 ms
    await turn();
    expect([a.log, b.log, p.told.includes('silent m1:2379')]).toEqual([['created 7'], [], false]);
    vi.advanceTimersByTime(600); // 1600: b has waited its second
    await turn();
    expect([a.log.at(-1), b.log, p.told.at(-1)]).toEqual(['broken', ['broken'], 'silent m1:2379']);
  });

  test('a verdict falling due as its stream ends is not passed on the next stream, which is judged on its own', async () => {
    const { p, a } = await quiet();
    watch(p.transport, { key: Buffer.from('b') }, recorder()); // unanswered: its timer runs at 2000
    vi.advanceTimersByTime(1000); // the timer ran; the verdict waits a turn
    p.streams[0]!.end(); // the stream ends first
    expect(a.log).toEqual(['created 7', 'broken']);
    const c = recorder();
    watch(p.transport, { key: Buffer.from('c') }, c);
    await p.streams[1]!.open(); // its creation and probe go unanswered
    await turn();
    expect(c.log).toEqual([]);
    vi.advanceTimersByTime(1000);
    await turn();
    expect(c.log).toEqual(['broken']);
    expect(p.streams[1]!.closed).toBe(true);
  });
});
