// The keep-alive loop's streams on a scripted port and a fake clock (no etcd): when a keep-alive goes
// out, which stream it goes on, which member a new stream avoids, when a broken, silent or retired
// stream is closed and replaced, and that nothing happens after stop().
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { LeaseKeepAliveResponse } from './messages.js';
import type { EtcdTransport, Member, StreamHandlers, StreamOptions } from './port.js';
import { TransportError } from './port.js';
import { KeepAlive } from './keep-alive.js';
import { unusedPort } from '../../test/unit/port-stub.js';

/** One stream the loop opened: what it sent, whether it is closed, and how to answer or end it. */
interface Opened {
  member: Member;
  options: StreamOptions | undefined;
  sent: number;
  closed: boolean;
  /** Sends after close (a closed stream must never be written to). */
  sentAfterClose: number;
  answer(ttl: number): void;
  end(): void;
}

const header = { revision: 1n, memberId: '1', raftTerm: 1n };

/** A port whose keep-alive streams alternate between two members and answer only when told to. */
function scripted(): { transport: EtcdTransport; streams: Opened[]; told: string[]; refuse: { next: number } } {
  const streams: Opened[] = [];
  const told: string[] = [];
  const refuse = { next: 0 };
  const members: Member[] = [{ endpoint: 'm1:2379' }, { endpoint: 'm2:2379' }];
  const transport: EtcdTransport = {
    ...unusedPort(members.map((m) => m.endpoint)),
    leaseKeepAlive: (handlers: StreamHandlers<LeaseKeepAliveResponse>, options?: StreamOptions) => {
      if (refuse.next > 0) {
        refuse.next--;
        told.push('refused');
        return Promise.reject(new TransportError('no member reachable', { code: 'UNAVAILABLE', kind: 'transient', endpoint: undefined }));
      }
      const member = members.find((m) => m !== options?.avoid)!;
      const opened: Opened = {
        member,
        options,
        sent: 0,
        closed: false,
        sentAfterClose: 0,
        answer: (ttl) => handlers.message({ header, id: '1', ttl }),
        end: () => handlers.end(new TransportError('reset', { code: 'UNAVAILABLE', kind: 'transient', endpoint: member.endpoint })),
      };
      streams.push(opened);
      return Promise.resolve({
        member,
        send: () => (opened.closed ? opened.sentAfterClose++ : opened.sent++),
        close: () => {
          opened.closed = true;
        },
      });
    },
    markSilent: (m) => told.push(`silent ${m.endpoint}`),
    markAnswered: (m) => told.push(`answered ${m.endpoint}`),
  };
  return { transport, streams, told, refuse };
}

let running: KeepAlive | undefined;
afterEach(() => {
  running?.stop();
  running = undefined;
  vi.useRealTimers();
});

/** A loop on a fake clock: interval 1 s, stall 300 ms, a retired stream listens 2 s. */
async function start(stallMs = 300): Promise<ReturnType<typeof scripted> & { renewals: [number, number][]; gone: Error[]; keepAlive: KeepAlive }> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
  const s = scripted();
  const renewals: [number, number][] = [];
  const gone: Error[] = [];
  running = new KeepAlive({
    transport: s.transport,
    leaseId: '1',
    interval: 1000,
    stallMs,
    requestTimeout: 2000,
    renewed: (sentAt, ttl) => renewals.push([sentAt, ttl]),
    gone: (e) => gone.push(e),
  });
  await vi.advanceTimersByTimeAsync(0);
  return { ...s, renewals, gone, keepAlive: running };
}

const tick = async (ms: number): Promise<void> => {
  await vi.advanceTimersByTimeAsync(ms);
};

describe('KeepAlive streams', () => {
  test('one keep-alive per interval on the open stream, with require-leader; an unanswered one is not sent again before its stall', async () => {
    const { streams, renewals } = await start();
    expect(streams).toHaveLength(1);
    expect(streams[0]!.options).toEqual({ requireLeader: true });
    expect(streams[0]!.sent).toBe(1);
    await tick(100);
    streams[0]!.answer(5);
    await tick(900); // the interval
    expect(streams[0]!.sent).toBe(2);
    await tick(1000);
    expect(streams[0]!.sent).toBe(2); // the second is still unanswered (stall 300 ms passed: a new stream took over)
    expect(renewals).toEqual([[0, 5]]);
  });

  test('an answer within the stall keeps the stream: no new stream, no silence, and the next interval sends on it', async () => {
    const { streams, told } = await start();
    await tick(200);
    streams[0]!.answer(5);
    await tick(500); // past the stall of the answered keep-alive
    expect(streams).toHaveLength(1);
    expect(told).toEqual(['answered m1:2379']);
    await tick(300);
    expect([streams[0]!.sent, streams[0]!.closed]).toEqual([2, false]);
  });

  test('a stall: a new stream at once on the other member; the old one listens until requestTimeout, then closes; the avoidance ends with an answer on the new one', async () => {
    const { streams, told, renewals } = await start();
    await tick(299);
    expect(told).toEqual([]);
    await tick(1);
    expect(told).toEqual(['silent m1:2379']);
    await tick(1);
    expect(streams).toHaveLength(2);
    expect(streams[1]!.options).toEqual({ avoid: streams[0]!.member, requireLeader: true });
    expect(streams[1]!.member.endpoint).toBe('m2:2379');
    expect(streams[1]!.sent).toBe(1);
    streams[1]!.answer(5);
    expect(renewals).toHaveLength(1);
    expect(renewals[0]![0]).toBeGreaterThanOrEqual(300); // sent on the new stream, after the stall
    streams[1]!.end(); // the new stream breaks after an answer: the next one avoids nobody
    await tick(100);
    expect(streams[2]!.options).toEqual({ requireLeader: true });
    expect(streams[0]!.closed).toBe(false);
    await tick(1898);
    expect(streams[0]!.closed).toBe(false);
    await tick(1);
    expect(streams[0]!.closed).toBe(true); // never answered: closed after requestTimeout
  });

  test('a late answer on the retired stream counts and closes it; the new stream and the avoidance stay', async () => {
    const { streams, renewals } = await start();
    await tick(301);
    await tick(100);
    streams[0]!.answer(7); // the slow member answers after all
    expect(renewals).toEqual([[0, 7]]);
    expect([streams[0]!.closed, streams[1]!.closed]).toEqual([true, false]);
    streams[1]!.end(); // broken before it ever answered: the next stream still avoids the silent member
    await tick(100);
    expect(streams[2]!.options).toEqual({ avoid: streams[0]!.member, requireLeader: true });
  });

  test('a silent stream that breaks before its late answer is closed; nothing is opened for it', async () => {
    const { streams } = await start();
    await tick(301);
    streams[1]!.answer(5);
    streams[0]!.end();
    expect(streams[0]!.closed).toBe(true);
    await tick(200);
    expect(streams).toHaveLength(2);
    expect(streams[1]!.closed).toBe(false);
  });

  test('a broken stream is closed at once and replaced; nothing is sent on it meanwhile', async () => {
    const { streams } = await start();
    streams[0]!.end();
    expect(streams[0]!.closed).toBe(true);
    await tick(100); // the first backoff is under 70 ms
    expect(streams).toHaveLength(2);
    streams[1]!.answer(5);
    await tick(900); // the interval fired meanwhile
    expect(streams[0]!.sentAfterClose).toBe(0);
    expect(streams[1]!.sent).toBe(2);
  });

  test('the interval firing while no stream is open sends nothing and breaks nothing', async () => {
    const { streams, refuse } = await start();
    streams[0]!.answer(5);
    await tick(950);
    refuse.next = 100;
    streams[0]!.end(); // broken after its answer; the interval fires at 1000, before any stream is back
    await tick(5000);
    expect(streams[0]!.sentAfterClose).toBe(0);
    expect(streams).toHaveLength(1);
  });

  test('a stall longer than the interval: an unanswered keep-alive is not repeated; its stall replaces the stream', async () => {
    const { streams, told } = await start(2500);
    await tick(2000); // two intervals
    expect(streams[0]!.sent).toBe(1);
    await tick(500);
    expect(told).toEqual(['silent m1:2379']);
  });

  test('opens refused in a row: retried, the waits growing from 50 ms up to half the interval, never beyond', async () => {
    const { told, refuse, streams } = await start();
    refuse.next = 40;
    streams[0]!.end();
    const at: number[] = [];
    for (let t = 0; t < 30_000 && told.filter((x) => x === 'refused').length < 40; t += 5) {
      const before = told.length;
      await tick(5);
      if (told.length > before) at.push(performance.now());
    }
    const waits = at.slice(1).map((t, i) => t - at[i]!);
    expect(waits.length).toBeGreaterThan(30);
    expect(Math.max(...waits)).toBeLessThanOrEqual(500 + 5);
    expect(Math.max(...waits)).toBeGreaterThan(100);
    await tick(600);
    expect(streams).toHaveLength(2); // the 41st open succeeds
  });

  test('an answer that no keep-alive asked for is no renewal', async () => {
    const { streams, renewals } = await start();
    streams[0]!.answer(5);
    streams[0]!.answer(5);
    expect(renewals).toHaveLength(1);
  });

  test('stop(): the stream is closed, later answers are ignored, nothing is sent or opened again', async () => {
    const { streams, renewals, gone, keepAlive } = await start();
    keepAlive.stop();
    expect(streams[0]!.closed).toBe(true);
    streams[0]!.answer(5);
    streams[0]!.answer(0);
    await tick(5000);
    expect([renewals, gone, streams.length, streams[0]!.sentAfterClose]).toEqual([[], [], 1, 0]);
  });

  test('stop() while a stream is opening: it is closed once open, and nothing is sent on it', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] });
    const s = scripted();
    running = new KeepAlive({ transport: s.transport, leaseId: '1', interval: 1000, stallMs: 300, requestTimeout: 2000, renewed: () => undefined, gone: () => undefined });
    running.stop();
    await tick(5000);
    expect(s.streams.map((o) => [o.closed, o.sent])).toEqual([[true, 0]]);
  });
});
