// The keep-alive loop against a fake stream (no etcd; through the etcd3 adapter's fallback to a pool-less client): which send time each answer is paired with, a
// stalled stream replaced at once while its late answer still counts, etcd's "gone", reconnects.
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Namespace } from 'etcd3';
import { afterEach, describe, expect, test } from 'vitest';
import { Etcd3Transport } from './etcd3/transport.js';
import { KeepAlive, type KeepAliveOptions } from './keep-alive.js';

/** A keep-alive stream that records what is written and answers only when told to. */
class FakeStream extends EventEmitter {
  readonly writes: unknown[] = [];
  ended = false;
  write(request: unknown): boolean {
    this.writes.push(request);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  cancel(): void {
    this.ended = true;
  }
  answer(ttl: number): void {
    this.emit('data', { ID: '1', TTL: String(ttl) });
  }
}

/** A namespace without a pool: the keep-alive loop then opens streams through the public client. */
function fakeNamespace(): { ns: Namespace; streams: FakeStream[] } {
  const streams: FakeStream[] = [];
  const ns = {
    leaseClient: {
      leaseKeepAlive: async () => {
        const s = new FakeStream();
        streams.push(s);
        return s;
      },
    },
  } as unknown as Namespace;
  return { ns, streams };
}

let running: KeepAlive | undefined;
afterEach(() => running?.stop());

function start(ns: Namespace, overrides: Partial<KeepAliveOptions> = {}): { renewals: [number, number][]; gone: Error[] } {
  const renewals: [number, number][] = [];
  const gone: Error[] = [];
  running = new KeepAlive({
    transport: new Etcd3Transport(ns),
    leaseId: '1',
    interval: 10_000,
    stallMs: 100,
    requestTimeout: 1000,
    renewed: (sentAt, ttl) => renewals.push([sentAt, ttl]),
    gone: (e) => gone.push(e),
    ...overrides,
  });
  return { renewals, gone };
}

describe('KeepAlive', () => {
  test('sends at once on a new stream and pairs each answer with its send time', async () => {
    const { ns, streams } = fakeNamespace();
    const before = performance.now();
    const { renewals } = start(ns);
    await expect.poll(() => streams[0]?.writes.length).toBe(1);
    const sentBy = performance.now();
    await delay(20);
    streams[0]!.answer(7);
    expect(renewals).toHaveLength(1);
    const [sentAt, ttl] = renewals[0]!;
    expect(ttl).toBe(7);
    expect(sentAt).toBeGreaterThanOrEqual(before);
    expect(sentAt).toBeLessThanOrEqual(sentBy); // the send time, not the answer's
  });

  test('a keep-alive unanswered for stallMs goes out again at once on a new stream; the late answer still counts', async () => {
    const { ns, streams } = fakeNamespace();
    const { renewals } = start(ns, { stallMs: 50 });
    await expect.poll(() => streams[0]?.writes.length).toBe(1);
    await expect.poll(() => streams.length, { timeout: 1000 }).toBe(2);
    await expect.poll(() => streams[1]!.writes.length).toBe(1);
    expect(streams[0]!.ended).toBe(false); // still listening
    streams[0]!.answer(5); // the slow member answers after all
    expect(renewals).toHaveLength(1);
    expect(streams[0]!.ended).toBe(true); // done with it once answered
    streams[1]!.answer(5);
    expect(renewals).toHaveLength(2);
    expect(renewals[1]![0]).toBeGreaterThan(renewals[0]![0]);
  });

  test('TTL 0 from etcd is "gone"; a broken stream is replaced; stop() ends everything', async () => {
    const { ns, streams } = fakeNamespace();
    const { gone } = start(ns);
    await expect.poll(() => streams[0]?.writes.length).toBe(1);
    streams[0]!.emit('error', new Error('reset'));
    expect(streams[0]!.ended).toBe(true);
    await expect.poll(() => streams.length, { timeout: 2000 }).toBe(2);
    await expect.poll(() => streams[1]!.writes.length).toBe(1);
    streams[1]!.answer(0);
    expect(gone).toHaveLength(1);
    expect(gone[0]!.message).toMatch(/TTL 0/);
    running!.stop();
    expect(streams[1]!.ended).toBe(true);
  });
});
