// The watch hub's routing of etcd's answers on one stream, against a scripted stream (no etcd): a
// creation refused with watch id -1 breaks the oldest creation still unanswered and no other, and a
// stream that ends breaks every watcher. (Real etcd's refusals are exercised by the security tests.)
import { describe, expect, test } from 'vitest';
import type { WatchRequest, WatchResponse } from './messages.js';
import type { EtcdTransport, Member, Stream, StreamHandlers } from './port.js';
import { TransportError } from './port.js';
import { watch, type WatchHandlers } from './watch-hub.js';

const member: Member = { endpoint: 'scripted:2379' };
const header = { revision: 7n, memberId: '1', raftTerm: 1n };

/** A transport whose one watch stream records what is sent and answers only when told to. */
function scripted(): { transport: EtcdTransport; sent: WatchRequest[]; answer(res: Partial<WatchResponse>): void; end(): void; opened: Promise<void> } {
  const sent: WatchRequest[] = [];
  let handlers: StreamHandlers<WatchResponse> | undefined;
  let markOpen: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (markOpen = resolve));
  const unused = (): never => {
    throw new Error('not used');
  };
  const transport: EtcdTransport = {
    endpoints: [member.endpoint],
    user: undefined,
    range: unused,
    txn: unused,
    leaseGrant: unused,
    leaseRevoke: unused,
    leaseTimeToLive: unused,
    leaseKeepAlive: unused,
    watch: (h) => {
      handlers = h;
      const stream: Stream<WatchRequest> = { member, send: (req) => sent.push(req), close: () => undefined };
      setImmediate(markOpen);
      return Promise.resolve(stream);
    },
    markSilent: () => undefined,
    onSilent: () => () => undefined,
    close: () => undefined,
  };
  const base: WatchResponse = { header, watchId: 0, created: false, canceled: false, compactRevision: 0n, cancelReason: '', events: [] };
  return {
    transport,
    sent,
    opened,
    answer: (res) => handlers!.message({ ...base, ...res }),
    end: () => handlers!.end(new TransportError('the stream ended', { code: 'UNAVAILABLE', kind: 'transient', endpoint: member.endpoint })),
  };
}

function recorder(): WatchHandlers & { log: string[] } {
  const log: string[] = [];
  return { log, created: (revision) => log.push(`created ${revision}`), events: () => log.push('events'), broken: () => log.push('broken') };
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
});
