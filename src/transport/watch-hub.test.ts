// The watch hub's routing of etcd's answers on one stream, against a scripted stream (no etcd): a
// creation refused with watch id -1 breaks the oldest creation still unanswered and no other, and a
// stream that ends breaks every watcher. (Real etcd's refusals are exercised by the security tests.)
// And what shows a stream alive: only answers to our requests, never events (a one-way loss; the
// network test N5 and test/integration/one-way.test.ts show it against etcd).
import { afterEach, describe, expect, test, vi } from 'vitest';
import type { WatchRequest, WatchResponse } from './messages.js';
import type { EtcdTransport, Member, Stream, StreamHandlers } from './port.js';
import { TransportError } from './port.js';
import { suspect, watch } from './watch-hub.js';
import { unusedPort } from '../../test/unit/port-stub.js';
import { recorder, turn, watchResponse } from '../../test/unit/watch-script.js';

const member: Member = { endpoint: 'scripted:2379' };

/** A transport whose one watch stream records what is sent and answers only when told to. */
function scripted(): {
  transport: EtcdTransport;
  sent: WatchRequest[];
  answer(res: Partial<WatchResponse>): void;
  end(): void;
  opened: Promise<void>;
  /** What the hub told the member choice, in order, and whether it closed the stream. */
  told: string[];
} {
  const sent: WatchRequest[] = [];
  const told: string[] = [];
  let handlers: StreamHandlers<WatchResponse> | undefined;
  let markOpen: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (markOpen = resolve));
  const transport: EtcdTransport = {
    ...unusedPort([member.endpoint]),
    watch: (h) => {
      handlers = h;
      const stream: Stream<WatchRequest> = { member, send: (req) => sent.push(req), close: () => told.push('closed') };
      setImmediate(markOpen);
      return Promise.resolve(stream);
    },
    markSilent: (m) => told.push(`silent ${m.endpoint}`),
    markAnswered: (m) => told.push(`answered ${m.endpoint}`),
  };
  return {
    transport,
    sent,
    opened,
    told,
    answer: (res) => handlers!.message(watchResponse(res)),
    end: () => handlers!.end(new TransportError('the stream ended', { code: 'UNAVAILABLE', kind: 'transient', endpoint: member.endpoint })),
  };
}

describe('watch hub', () => {
  test('a creation refused with watch id -1 breaks the oldest unanswered creation, not the others', async () => {
    const s = scripted();
    const a = recorder();
    const b = recorder();
    watch(s.transport, { key: Buffer.from('a') }, a);
    watch(s.transport, { key: Buffer.from('b') }, b);
    await s.opened;
    const ids = s.sent.filter((r) => r.create).map((r) => r.create!.watchId);
    expect(ids).toHaveLength(2);
    s.answer({ watchId: -1, created: true, canceled: true, cancelReason: 'etcdserver: permission denied' });
    expect(a.log).toEqual(['broken']);
    expect(b.log).toEqual([]);
    s.answer({ watchId: ids[1]!, created: true });
    expect(b.log).toEqual(['created 7']);
    s.answer({ watchId: ids[1]!, events: [{ type: 'delete', kv: { key: Buffer.from('b'), value: Buffer.alloc(0), createRevision: 5n, modRevision: 8n, version: 0n, lease: '0' }, prevKv: undefined }] });
    expect(b.log).toEqual(['created 7', 'events']);
    s.end();
    expect(b.log).toEqual(['created 7', 'events', 'broken']);
    expect(a.log).toEqual(['broken']);
  });

  describe('what shows the stream alive', () => {
    afterEach(() => {
      vi.useRealTimers();
    });
    const event = (watchId: number): Partial<WatchResponse> => ({
      watchId,
      events: [{ type: 'put', kv: { key: Buffer.from('a'), value: Buffer.from('v'), createRevision: 5n, modRevision: 9n, version: 2n, lease: '0' }, prevKv: undefined }],
    });
    /** A watcher created on a fresh stream (its creation and the opening probe answered), on a fake clock. */
    async function live(): Promise<{ s: ReturnType<typeof scripted>; a: ReturnType<typeof recorder>; id: number }> {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      const s = scripted();
      const a = recorder();
      watch(s.transport, { key: Buffer.from('a') }, a);
      await s.opened;
      const id = s.sent.find((r) => r.create)!.create!.watchId;
      s.answer({ watchId: id, created: true });
      s.answer({ watchId: -1 }); // the opening probe's progress answer
      return { s, a, id };
    }

    test('only answers to our requests mark the member answered: a creation and a progress answer do, events do not', async () => {
      const { s, id } = await live();
      expect(s.told).toEqual(['answered scripted:2379', 'answered scripted:2379']);
      for (let i = 0; i < 5; i++) s.answer(event(id));
      expect(s.told).toHaveLength(2);
    });

    test('a progress request answered only by events (requests lost one way): the stream is replaced after a second and its member marked silent', async () => {
      const { s, a, id } = await live();
      watch(s.transport, { key: Buffer.from('b') }, recorder()); // the hub is still in use; its creation is answered
      const second = s.sent.filter((r) => r.create)[1]!.create!.watchId;
      s.answer({ watchId: second, created: true });
      s.told.length = 0;
      suspect(s.transport); // as a waiter's re-read that found a change its watch did not report

      expect(s.sent.at(-1)).toEqual({ progress: true });
      for (let t = 0; t < 9; t++) {
        vi.advanceTimersByTime(100);
        s.answer(event(id)); // events of a watch created before keep arriving
      }
      expect(a.log).toEqual(['created 7', 'events', 'events', 'events', 'events', 'events', 'events', 'events', 'events', 'events']);
      vi.advanceTimersByTime(150);
      await turn();
      expect(a.log.at(-1)).toBe('broken');
      expect(s.told).toEqual(['closed', 'silent scripted:2379']);
    });

    test('a creation unanswered for a second while events arrive: the stream is replaced, every watcher re-reads, its member is marked silent', async () => {
      const { s, a, id } = await live();
      vi.advanceTimersByTime(2000); // whatever the opening armed has run out
      s.told.length = 0;
      const b = recorder();
      watch(s.transport, { key: Buffer.from('b') }, b); // its creation is lost on the way
      for (let t = 0; t < 9; t++) {
        vi.advanceTimersByTime(100);
        s.answer(event(id));
      }
      expect(b.log).toEqual([]);
      vi.advanceTimersByTime(150);
      await turn();
      expect(b.log).toEqual(['broken']);
      expect(a.log.at(-1)).toBe('broken');
      expect(s.told).toEqual(['closed', 'silent scripted:2379']);
    });

    test('an answer read in the turn its deadline passed keeps the stream (a process busy for a second reads its sockets after its timers)', async () => {
      const { s, a } = await live();
      vi.advanceTimersByTime(2000);
      s.told.length = 0;
      const b = recorder();
      watch(s.transport, { key: Buffer.from('b') }, b);
      const id = s.sent.filter((r) => r.create).at(-1)!.create!.watchId;
      vi.advanceTimersByTime(1500); // the deadline's timer runs late, as after a long synchronous task
      s.answer({ watchId: id, created: true }); // read from the socket before the next turn
      await turn();
      expect(b.log).toEqual(['created 7']);
      expect(a.log).toEqual(['created 7']);
      expect(s.told).toEqual(['answered scripted:2379']);
    });

    test('a progress answer within the second keeps the stream, whatever else is quiet', async () => {
      const { s, a } = await live();
      s.told.length = 0;
      suspect(s.transport);
      vi.advanceTimersByTime(900);
      s.answer({ watchId: -1 });
      vi.advanceTimersByTime(5000);
      expect(a.log).toEqual(['created 7']);
      expect(s.told).toEqual(['answered scripted:2379']);
    });
  });
});
