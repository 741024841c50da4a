// Session against a real etcd: options, keep-alive, validity deadline, close, lease reuse, loss.
import { setTimeout as delay } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { describe, expect, test } from 'vitest';
import { LeaseLostError, Mutex, Session, SessionClosedError, sessionDefaults } from '../../src/index.js';
import { eventually, keysUnder, uniqueName } from '../helpers.js';
import { etcdForFile } from '../fixture.js';

const fx = etcdForFile(5);

describe('Session', () => {
  test('bad options are rejected with errors that name the value', async () => {
    const c = fx.etcd.client();
    await expect(Session.create(c, { ttl: 0 })).rejects.toThrow('Expected `ttl` to be an integer from 1 to 9000000000, got `0`');
    await expect(Session.create(c, { ttl: 1.5 })).rejects.toThrow('got `1.5`');
    await expect(Session.create(c, { ttl: '5' as unknown as number })).rejects.toThrow(TypeError);
    await expect(Session.create(c, { ttl: 2, safetyMargin: 2000 })).rejects.toThrow(
      'Expected `safetyMargin` to be less than the TTL (2000 ms), got `2000`',
    );
    await expect(Session.create(c, { ttl: 2, safetyMargin: -1 })).rejects.toThrow('got `-1`');
    await expect(Session.create(c, { ttl: 3, keepAliveInterval: 5000 })).rejects.toThrow(RangeError);
    await expect(Session.create(c, { requestTimeout: 0 })).rejects.toThrow('`requestTimeout`');
    await expect(Session.create(c, { leaseId: 'abc' })).rejects.toThrow('Expected `leaseId` to be a positive decimal string or bigint below 2^63 (etcd\'s decimal lease id), got the string "abc"');
    await expect(Session.create({} as Etcd3)).rejects.toThrow(/etcd3 Etcd3 or Namespace/);
    const reason = new Error('no thanks');
    await expect(Session.create(c, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(sessionDefaults.ttl).toBe(60);
  });

  test('keep-alives hold the lease well past its TTL and move the deadline forward', async () => {
    await using s = await Session.create(fx.etcd.client(), { ttl: fx.etcd.minTtl });
    const first = s.deadline;
    await delay(fx.etcd.minTtl * 1000 * 2.5);
    expect(s.alive).toBe(true);
    expect(s.deadline).toBeGreaterThan(first);
    const ttl = await fx.admin.leaseClient.leaseTimeToLive({ ID: s.leaseId });
    expect(Number(ttl.TTL)).toBeGreaterThanOrEqual(0); // -1 would mean gone; whole seconds left otherwise
    expect(s.ttl).toBe(fx.etcd.minTtl);
    expect(s.leaseHex).toBe(BigInt(s.leaseId).toString(16));
  });

  test('close() revokes the lease, releases what it held, aborts with SessionClosedError, and is idempotent', async () => {
    const s = await Session.create(fx.etcd.client(), { ttl: 30 });
    const name = uniqueName('closing');
    const lock = await new Mutex(s, name).lock();
    await s.close();
    expect(s.signal.reason).toBeInstanceOf(SessionClosedError);
    expect(lock.signal.aborted).toBe(true);
    expect(lock.held).toBe(false);
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([]);
    const ttl = await fx.admin.leaseClient.leaseTimeToLive({ ID: s.leaseId });
    expect(Number(ttl.TTL)).toBe(-1);
    await s.close();
    await expect(new Mutex(s, name).lock()).rejects.toBeInstanceOf(SessionClosedError);
  });

  test('an existing lease can be adopted, and a key it already owns is resumed, not duplicated', async () => {
    const granted = await fx.admin.leaseClient.leaseGrant({ TTL: 20 });
    const name = uniqueName('adopted');
    const hex = BigInt(granted.ID).toString(16);
    await fx.admin.put(`${name}/${hex}`).value('').lease(granted.ID);
    const existing = await fx.admin.get(`${name}/${hex}`).exec();
    await using s = await Session.create(fx.etcd.client(), { leaseId: granted.ID });
    expect(s.leaseId).toBe(granted.ID);
    expect(s.ttl).toBe(20);
    const lock = await new Mutex(s, name).lock();
    expect(lock.token).toBe(BigInt(existing.kvs[0]!.create_revision));
    expect(await keysUnder(fx.admin, `${name}/`)).toEqual([`${name}/${hex}`]);
    await lock.release();
  });

  test('adopting a lease that does not exist is LeaseLostError', async () => {
    await expect(Session.create(fx.etcd.client(), { leaseId: '123456789' })).rejects.toBeInstanceOf(LeaseLostError);
  });

  test('a lease revoked on the server loses the session at the next keep-alive, and loss is final', async () => {
    const s = await Session.create(fx.etcd.client(), { ttl: 3 });
    await fx.admin.leaseClient.leaseRevoke({ ID: s.leaseId });
    await eventually(() => s.signal.aborted, 3000, 'session lost');
    expect(s.signal.reason).toBeInstanceOf(LeaseLostError);
    expect(s.alive).toBe(false);
    await expect(new Mutex(s, 'x').lock()).rejects.toBe(s.signal.reason);
    await s.close(); // does not throw
  });

  test('a session on an etcd3 namespace keeps its keys inside the namespace', async () => {
    const ns = fx.etcd.client().namespace('tenant-a/');
    await using s = await Session.create(ns, { ttl: 5 });
    const name = uniqueName('ns-lock');
    await using lock = await new Mutex(s, name).lock();
    expect(await keysUnder(fx.admin, `tenant-a/${name}/`)).toEqual([`tenant-a/${name}/${s.leaseHex}`]);
    await lock.commit(ns.put('value').value('1'));
    expect(await fx.admin.get('tenant-a/value').string()).toBe('1');
  });
});
