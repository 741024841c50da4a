// `leasehold lock a b c -- cmd`: several names taken at once with a MultiLock. The command's
// environment names every key (and no single LEASEHOLD_KEY), `etcdctl lock` on one of the names
// excludes the command and is excluded by it, `--timeout` and an aborted wait leave none of our keys.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { etcdctl, eventually, exited, keysUnder, uniqueName, untilReleased } from '../helpers.js';
import { cliSuite, run, start } from './cli-helpers.js';

const t = cliSuite('cli-multi');

/** The keys under each of `names` (absolute), in create-revision order. */
async function keysOf(names: readonly string[]): Promise<string[][]> {
  return Promise.all(names.map(async (n) => keysUnder(t.admin, `${n}/`)));
}

function envFile(path: string): Record<string, string> {
  return Object.fromEntries(readFileSync(path, 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
}

describe('lock with several names', () => {
  test('the command runs holding every name: LEASEHOLD_COUNT, _NAME_i, _KEY_i, one token (every key’s create revision); no LEASEHOLD_NAME/KEY, even inherited', async () => {
    const names = ['a', 'b', 'c'].map((n) => uniqueName(`multi-${n}`));
    const d = mkdtempSync(join(t.dir, 'case-'));
    // LEASEHOLD_TRANSPORT, when the test run sets it, is the environment's, inherited like any other.
    const r = start(['lock', ...names, '--', 'sh', '-c', `env | grep ^LEASEHOLD_ | grep -v ^LEASEHOLD_TRANSPORT= | sort > ${d}/env.tmp; mv ${d}/env.tmp ${d}/env; ${untilReleased(d)}`], t.etcd.endpoints, {
      LEASEHOLD_NAME: 'outer', // as inside another leasehold's command: must not leak through
      LEASEHOLD_KEY: 'outer/1',
      LEASEHOLD_MODE: 'read',
    });
    await eventually(() => existsSync(join(d, 'env')), 20_000, 'command started');
    const env = envFile(join(d, 'env'));
    const kvs = await Promise.all(names.map(async (n) => (await t.admin.getAll().prefix(`${n}/`).exec()).kvs));
    expect(kvs.map((k) => k.length)).toEqual([1, 1, 1]);
    const [first] = kvs[0]!;
    expect(env).toEqual({
      LEASEHOLD_KIND: 'multilock',
      LEASEHOLD_COUNT: '3',
      LEASEHOLD_NAME_1: names[0],
      LEASEHOLD_NAME_2: names[1],
      LEASEHOLD_NAME_3: names[2],
      LEASEHOLD_KEY_1: kvs[0]![0]!.key.toString(),
      LEASEHOLD_KEY_2: kvs[1]![0]!.key.toString(),
      LEASEHOLD_KEY_3: kvs[2]![0]!.key.toString(),
      LEASEHOLD_TOKEN: first!.create_revision,
      LEASEHOLD_LEASE_ID: first!.lease,
      LEASEHOLD_LEASE_HEX: BigInt(first!.lease).toString(16),
    });
    for (const [kv] of kvs) expect([kv!.create_revision, kv!.lease]).toEqual([first!.create_revision, first!.lease]);
    writeFileSync(join(d, 'release'), '');
    expect(await r.exit).toBe(0);
    expect(r.stderr()).toContain(`locks ${names.map((n) => JSON.stringify(n)).slice(0, 2).join(', ')} and "${names[2]}" released`);
    expect(await keysOf(names)).toEqual([[], [], []]);
  });

  test('--json lines carry names and keys; a name given twice is taken once; no name before -- is a usage error', async () => {
    const [a, b] = [uniqueName('json-a'), uniqueName('json-b')];
    const r = await run(['lock', a, b, a, '--json', '--', 'true'], t.etcd.endpoints);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l['event'])).toEqual(['acquired', 'released']);
    expect(lines[0]).toMatchObject({ kind: 'multilock', names: [a, b], keys: [expect.stringMatching(`^${a}/[0-9a-f]+$`), expect.stringMatching(`^${b}/[0-9a-f]+$`)] });
    expect(lines[0]).not.toHaveProperty('key');
    const none = await run(['lock', '--', 'true'], t.etcd.endpoints);
    expect(none.code).toBe(64);
    const bad = await run(['lock', a, 'jobs/', '--', 'true'], t.etcd.endpoints);
    expect([bad.code, bad.stderr]).toEqual([64, expect.stringContaining('not to end with "/", got the string "jobs/"')]);
  });

  test('`etcdctl lock` holds one name → `--timeout` exits 75 leaving none of our keys; without it we wait, on every name, and run once it unlocks', async () => {
    const names = [uniqueName('ctl-a'), uniqueName('ctl-b'), uniqueName('ctl-c')];
    const ctl = etcdctl(t.etcd.endpoints, ['lock', names[1]!]);
    try {
      await eventually(() => ctl.output().includes(`${names[1]}/`), 10_000, 'etcdctl holds');
      const timedOut = await run(['lock', ...names, '--timeout', '700ms', '--', 'true'], t.etcd.endpoints);
      expect(timedOut.code).toBe(75);
      expect(timedOut.stderr).toContain('gave up waiting for locks');
      expect((await keysOf(names)).map((k) => k.length)).toEqual([0, 1, 0]);

      const d = mkdtempSync(join(t.dir, 'case-'));
      const ours = start(['lock', ...names, '--', 'touch', `${d}/ran`], t.etcd.endpoints);
      await eventually(async () => (await keysOf(names)).every((k, i) => k.length === (i === 1 ? 2 : 1)), 15_000, 'ours queued on every name');
      await delay(500);
      expect(existsSync(join(d, 'ran'))).toBe(false); // excluded by etcdctl on one name of three
      ctl.kill('SIGINT'); // etcdctl unlocks on SIGINT
      expect(await ours.exit).toBe(0);
      expect(existsSync(join(d, 'ran'))).toBe(true);
      expect(await keysOf(names)).toEqual([[], [], []]);
    } finally {
      ctl.kill('SIGKILL');
      await exited(ctl);
    }
  });

  test('ours holds every name → `etcdctl lock` on one waits; ours ends → etcdctl gets it. SIGINT while waiting deletes every queue key (exit 130)', async () => {
    const names = [uniqueName('own-a'), uniqueName('own-b')];
    const d = mkdtempSync(join(t.dir, 'case-'));
    const ours = start(['lock', ...names, '--', 'sh', '-c', `touch ${d}/started; ${untilReleased(d)}`], t.etcd.endpoints);
    await eventually(() => existsSync(join(d, 'started')), 20_000, 'ours holds');
    const ctl = etcdctl(t.etcd.endpoints, ['lock', names[1]!]);
    try {
      await eventually(async () => (await keysUnder(t.admin, `${names[1]}/`)).length === 2, 10_000, 'etcdctl queued');
      const waiting = start(['lock', names[0]!, uniqueName('own-c'), '--', 'touch', `${d}/never`], t.etcd.endpoints);
      await eventually(async () => (await keysUnder(t.admin, `${names[0]}/`)).length === 2, 15_000, 'a second run queued');
      await delay(500);
      expect(ctl.output()).toBe(''); // etcdctl prints the key once it holds
      waiting.child.kill('SIGINT');
      expect(await waiting.exit).toBe(130);
      expect((await keysUnder(t.admin, `${names[0]}/`)).length).toBe(1);
      writeFileSync(join(d, 'release'), '');
      expect(await ours.exit).toBe(0);
      await eventually(() => ctl.output().includes(`${names[1]}/`), 10_000, 'etcdctl holds after us');
      expect(existsSync(join(d, 'never'))).toBe(false);
    } finally {
      ctl.kill('SIGKILL');
      await exited(ctl);
    }
  });
});
