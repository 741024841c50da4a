// The lean HTTP/2 transport against a real etcd (one member): unary calls, the watch and keep-alive
// streams, deadlines, aborts, and etcd's errors told apart — checked against an independent etcd3 client.
import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isEtcdUnavailableError } from '../../src/index.js';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { explainTransportError } from '../../src/transport/explain.js';
import { H2Transport } from '../../src/transport/h2/transport.js';
import type { WatchResponse } from '../../src/transport/messages.js';
import { TransportError } from '../../src/transport/port.js';
import { eventually } from '../helpers.js';

let etcd: EtcdCluster;
let admin: Etcd3;
let t: H2Transport;
const call = { timeoutMs: 5000 };
const prefix = `h2/${process.pid}/`;
const k = (name: string): Buffer => Buffer.from(`${prefix}${name}`);

beforeAll(async () => {
  etcd = await startEtcd();
  admin = etcd.client();
  t = new H2Transport({ hosts: [...etcd.endpoints] });
});
afterAll(async () => {
  t?.close();
  await etcd?.stop();
});

/** The reasons a promise rejected with, or 'resolved'. */
const failure = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'resolved', (e: unknown) => e);

describe('unary calls', () => {
  test('a lock\'s join: put-if-absent on a lease + the predecessor read, then the same txn again fails over to the read', async () => {
    const { id: lease, ttl } = await t.leaseGrant(30, call);
    expect(ttl).toBe(30);
    await admin.put(`${prefix}q/a`).value('first');
    const own = k('q/b');
    const join = {
      compare: [{ key: own, target: 'create' as const, result: 'equal' as const, createRevision: 0n }],
      success: [
        { range: { key: k('q/'), rangeEnd: k('q0'), sortTarget: 'create' as const, sortOrder: 'descend' as const, limit: 1, keysOnly: true } },
        { put: { key: own, value: Buffer.from('🔒'), lease } },
      ],
      failure: [{ range: { key: own } }],
    };
    const first = await t.txn(join, call);
    expect(first.succeeded).toBe(true);
    expect(first.responses[0]!.range!.kvs.map((kv) => kv.key.toString())).toEqual([`${prefix}q/a`]);
    const again = await t.txn(join, call);
    expect(again.succeeded).toBe(false);
    const kv = again.responses[0]!.range!.kvs[0]!;
    expect([kv.value.toString(), kv.lease, kv.createRevision]).toEqual(['🔒', lease, first.header.revision]);
    // An independent client sees the same key on the same lease.
    const seen = await admin.get(`${prefix}q/b`).exec();
    expect([seen.kvs[0]!.lease, seen.kvs[0]!.create_revision]).toEqual([lease, String(first.header.revision)]);
    await t.leaseRevoke(lease, call);
    expect(await admin.get(`${prefix}q/b`).string()).toBeNull();
  });

  test('range options: prefix, limit with more, count, keys only, serializable, an old revision', async () => {
    const first = await admin.put(`${prefix}r/1`).value('a').exec();
    await admin.put(`${prefix}r/2`).value('b');
    await admin.put(`${prefix}r/1`).value('c');
    const all = await t.range({ key: k('r/'), rangeEnd: k('r0'), limit: 1, sortTarget: 'key', sortOrder: 'descend', keysOnly: true, serializable: true }, call);
    expect([all.kvs.map((kv) => kv.key.toString()), all.kvs[0]!.value.length, all.more, all.count]).toEqual([[`${prefix}r/2`], 0, true, 2n]);
    const old = await t.range({ key: k('r/1'), revision: BigInt(first.header.revision) }, call);
    expect(old.kvs[0]!.value.toString()).toBe('a');
    expect((await t.range({ key: k('r/1') }, call)).kvs[0]!.version).toBe(2n);
  });

  test('time-to-live of a lease, and of one that is gone; revoking a lease that does not exist', async () => {
    const { id } = await t.leaseGrant(20, call);
    expect(await t.leaseTimeToLive(id, call)).toMatchObject({ id, grantedTtl: 20 });
    await t.leaseRevoke(id, call);
    expect((await t.leaseTimeToLive(id, call)).ttl).toBe(-1);
    const error = await failure(t.leaseRevoke(id, call));
    expect(error).toBeInstanceOf(TransportError);
    expect([(error as TransportError).code, (error as TransportError).kind]).toEqual(['NOT_FOUND', 'lease-not-found']);
  });

  test('a compacted revision is told apart from other refusals', async () => {
    const res = await admin.put(`${prefix}c`).value('1').exec();
    await admin.put(`${prefix}c`).value('2');
    await admin.kv.compact({ revision: String(Number(res.header.revision) + 1), physical: true });
    const error = (await failure(t.range({ key: k('c'), revision: BigInt(res.header.revision) }, call))) as TransportError;
    expect([error.code, error.kind, error.endpoint]).toEqual(['OUT_OF_RANGE', 'compacted', etcd.endpoints[0]!.replace('http://', '')]);
    expect(error.message).toMatch(/compacted/);
  });

  test('an oversized request is final, not transient', async () => {
    const error = (await failure(t.txn({ compare: [], success: [{ put: { key: k('big'), value: Buffer.alloc(2 * 1024 * 1024) } }] }, call))) as TransportError;
    expect(error.kind).toBe('final');
    expect(error.message).toMatch(/too large|larger than max/);
  });
});

describe('deadlines, aborts, close', () => {
  test('a member that stops answering: the call rejects at its deadline (DEADLINE_EXCEEDED, transient, naming the member)', async () => {
    const member = etcd.members[0]!;
    await member.pause();
    try {
      const started = performance.now();
      const error = (await failure(t.range({ key: k('x') }, { timeoutMs: 300 }))) as TransportError;
      expect(performance.now() - started).toBeLessThan(3000);
      expect([error.code, error.kind, error.endpoint]).toEqual(['DEADLINE_EXCEEDED', 'transient', member.clientUrl.replace('http://', '')]);
      const explained = explainTransportError(error, { endpoints: t.endpoints, user: undefined });
      expect(isEtcdUnavailableError(explained)).toBe(true);
      expect((explained as Error).message).toMatch(/^etcd at 127\.0\.0\.1:\d+ unavailable: 4 DEADLINE_EXCEEDED/);
    } finally {
      await member.resume();
    }
    await expect(t.range({ key: k('x') }, call)).resolves.toBeDefined();
  });

  test('a deadline beyond Node\'s timer limit (requestTimeout 2^31 ms): calls work, none expires at once', async () => {
    await expect(t.range({ key: k('x') }, { timeoutMs: 2 ** 31 })).resolves.toBeDefined();
    const { id } = await t.leaseGrant(5, { timeoutMs: 2 ** 31 });
    await t.leaseRevoke(id, { timeoutMs: 2 ** 31 });
  });

  test('an abort rejects at once with the signal\'s reason unchanged', async () => {
    const member = etcd.members[0]!;
    await member.pause();
    try {
      const controller = new AbortController();
      const reason = new Error('stop');
      const pending = failure(t.range({ key: k('x') }, { timeoutMs: 10_000, signal: controller.signal }));
      await delay(100);
      controller.abort(reason);
      expect(await pending).toBe(reason);
      expect(await failure(t.range({ key: k('x') }, { timeoutMs: 10_000, signal: AbortSignal.abort(reason) }))).toBe(reason);
    } finally {
      await member.resume();
    }
  });

  test('a closed transport refuses calls (CLIENT_CLOSED, final)', async () => {
    const other = new H2Transport({ hosts: [...etcd.endpoints] });
    await other.range({ key: k('x') }, call);
    other.close();
    const error = (await failure(other.range({ key: k('x') }, call))) as TransportError;
    expect([error.code, error.kind]).toEqual(['CLIENT_CLOSED', 'final']);
  });
});

describe('streams', () => {
  test('one watch stream: watchers by our ids, put and delete events with filters, cancel, progress', async () => {
    const answers: WatchResponse[] = [];
    const ended: TransportError[] = [];
    const stream = await t.watch({ message: (res) => answers.push(res), end: (e) => ended.push(e) }, { requireLeader: true });
    stream.send({ create: { key: k('w/a'), watchId: 11 } });
    stream.send({ create: { key: k('w/'), rangeEnd: k('w0'), watchId: 12, filters: ['noPut'] } });
    await eventually(() => answers.filter((a) => a.created).length === 2, 5000, 'two watchers created');
    expect(answers.map((a) => a.watchId).sort()).toEqual([11, 12]);
    await admin.put(`${prefix}w/a`).value('v');
    await admin.delete().key(`${prefix}w/a`);
    await eventually(() => answers.filter((a) => a.watchId === 12 && a.events.length > 0).length === 1 && answers.filter((a) => a.watchId === 11 && a.events.length > 0).length >= 1, 5000, 'events');
    const on11 = answers.filter((a) => a.watchId === 11).flatMap((a) => a.events.map((e) => e.type));
    const on12 = answers.filter((a) => a.watchId === 12).flatMap((a) => a.events.map((e) => [e.type, e.kv.key.toString()]));
    expect(on11).toEqual(['put', 'delete']);
    expect(on12).toEqual([['delete', `${prefix}w/a`]]); // noPut: no put event
    stream.send({ cancel: { watchId: 11 } });
    await eventually(() => answers.some((a) => a.watchId === 11 && a.canceled), 5000, 'cancelled');
    stream.send({ progress: true });
    await eventually(() => answers.some((a) => a.watchId === -1), 5000, 'progress answer');
    stream.close();
    await admin.put(`${prefix}w/b`).value('after close');
    await delay(200);
    expect(answers.some((a) => a.events.some((e) => e.kv.key.toString() === `${prefix}w/b`))).toBe(false);
    expect(ended).toEqual([]); // our close() calls no handler
  });

  test('a keep-alive stream renews a lease; without it the lease expires', async () => {
    const { id } = await t.leaseGrant(2, call);
    const answers: { id: string; ttl: number }[] = [];
    const stream = await t.leaseKeepAlive({ message: (res) => answers.push(res), end: () => undefined });
    for (let i = 0; i < 6; i++) {
      stream.send(id);
      await delay(500);
    }
    expect(answers.length).toBeGreaterThanOrEqual(5);
    expect(answers.every((a) => a.id === id && a.ttl === 2)).toBe(true);
    expect((await t.leaseTimeToLive(id, call)).ttl).toBeGreaterThan(0); // 3 s after a 2 s grant
    stream.close();
    await eventually(async () => (await t.leaseTimeToLive(id, call)).ttl === -1, 6000, 'lease expired');
  });

  test('a stream whose member is killed ends with a transient error naming it', async () => {
    const other = new H2Transport({ hosts: [...etcd.endpoints] });
    const ended: TransportError[] = [];
    await other.watch({ message: () => undefined, end: (e) => ended.push(e) });
    const stream = await other.leaseKeepAlive({ message: () => undefined, end: (e) => ended.push(e) });
    stream.send('1'); // make sure the connection is up
    await delay(200);
    const member = etcd.members[0]!;
    await member.kill();
    try {
      await eventually(() => ended.length === 2, 5000, 'both streams ended');
      expect(ended.map((e) => [e.kind, e.endpoint])).toEqual([
        ['transient', member.clientUrl.replace('http://', '')],
        ['transient', member.clientUrl.replace('http://', '')],
      ]);
    } finally {
      await member.restart();
      other.close();
    }
    await expect(t.range({ key: k('x') }, call)).resolves.toBeDefined(); // and the shared transport reconnects
  });
});

describe('the process lifetime', () => {
  const transportModule = fileURLToPath(new URL('../../src/transport/h2/transport.ts', import.meta.url));
  /** Runs `body` (with `t`, an H2Transport on the test's etcd, and `key`) in a child process. */
  const child = (body: string): { output: () => string; errors: () => string; exited: Promise<number | null> } => {
    const script = `import { H2Transport } from ${JSON.stringify(transportModule)};\nconst t = new H2Transport({ hosts: ${JSON.stringify(etcd.endpoints)} });\nconst key = Buffer.from(${JSON.stringify(`${prefix}life`)});\n${body}`;
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => (clearTimeout(timer), resolve(code))));
    return { output: () => out, errors: () => err, exited };
  };

  test('calls and both streams print no warning on this Node (Node 22 and 24 deprecate HTTP/2 priority options: a user\'s log is not ours to fill)', async () => {
    const run = child(
      [
        "const { id } = await t.leaseGrant(30, { timeoutMs: 5000 });",
        "await t.txn({ compare: [], success: [{ put: { key, value: Buffer.from('v'), lease: id } }], failure: [] }, { timeoutMs: 5000 });",
        "await t.range({ key }, { timeoutMs: 5000 });",
        "const k = await t.leaseKeepAlive({ message: () => {}, end: () => {} }); k.send(id);",
        "const w = await t.watch({ message: (res) => { if (res.created) { console.log('created'); w.close(); k.close(); t.close(); } }, end: () => {} }); w.send({ create: { key, watchId: 1 } });",
      ].join('\n'),
    );
    expect(await run.exited).toBe(0);
    expect(run.output()).toBe('created\n');
    expect(run.errors()).toBe('');
  });

  test('an idle connection never keeps a process alive; an open stream waiting for its answer does', async () => {
    const idle = child("await t.range({ key }, { timeoutMs: 5000 }); console.log('read');");
    expect(await idle.exited).toBe(0); // exits by itself, with the connection still open
    expect(idle.output()).toBe('read\n');
    const waiting = child(
      "const s = await t.watch({ message: (res) => { if (res.created) console.log('created'); if (res.events.length > 0) { console.log('event'); s.close(); } }, end: () => {} }); s.send({ create: { key, watchId: 1 } });",
    );
    await eventually(() => waiting.output() === 'created\n', 20_000, 'the child\'s watch created');
    await delay(500); // the child has nothing but its stream (exit 13 if that did not hold it)
    await admin.put(`${prefix}life`).value('now');
    expect(await waiting.exited).toBe(0);
    expect(waiting.output()).toBe('created\nevent\n');
  });
});
