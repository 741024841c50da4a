// The `leasehold` run commands when things go wrong while the command runs: the lease cannot be kept
// alive (the command's whole group is gone before etcd gives the name to the next holder), the
// readers of leasehold's output go away (nothing it writes can end it), leasehold itself fails (the
// command is ended as on a loss).
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Mutex, Session } from '../../src/index.js';
import { startProxy } from '../../src/testing/index.js';
import { eventually, keysUnder, uniqueName, untilReleased } from '../helpers.js';
import { alive, fileLine, cliSuite, pidIn, start } from './cli-helpers.js';

const t = cliSuite('cli-loss');

/**
 * Scripts for a command whose group must be ended: the command ignores SIGTERM (only SIGKILL ends it)
 * and starts a grandchild that notes the SIGTERM it gets (`grandchild-term`) and runs on. Each writes
 * its pid once it runs; the command also notes the lease (`lease`). Their stderr is /dev/null: the
 * shell reports a killed `sleep` there, and a test may have closed leasehold's stderr, which they share.
 */
function stubbornGroup(d: string): string[] {
  writeFileSync(join(d, 'grandchild.sh'), `exec 2>/dev/null\ntrap 'echo TERM > ${d}/grandchild-term' TERM\necho $$ > ${d}/grandchild\nwhile :; do sleep 0.05; done\n`);
  writeFileSync(join(d, 'child.sh'), `exec 2>/dev/null\nsh ${d}/grandchild.sh &\ntrap '' TERM\necho $LEASEHOLD_LEASE_ID > ${d}/lease\necho $$ > ${d}/child\nwhile :; do sleep 0.05; done\n`);
  return ['sh', join(d, 'child.sh')];
}

async function groupPids(d: string): Promise<number[]> {
  return [await pidIn(d, 'child'), await pidIn(d, 'grandchild')];
}

describe('a lost lease ends the command’s group before the name passes on', () => {
  test('keep-alives blackholed: the command (ignoring SIGTERM) and its grandchild (trapping it) got SIGTERM and are gone when the next holder gets the lock; exit 79', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const name = uniqueName('lost');
    await using proxy = await startProxy(t.etcd.members[0]!.clientUrl);
    // TTL 10: SIGKILL goes out a tenth of the TTL (1 s) before etcd can expire the lease, which is what
    // a late timer and the death of a SIGKILLed process may take on a loaded 2-core machine (TTL 4's
    // 400 ms was not always enough there). A kill-grace of 4 s: stopping only at the validity deadline,
    // the SIGKILL would come seconds after the next holder has the name.
    const ours = start(['lock', name, '--ttl', '10', '--kill-grace', '4s', '--', ...stubbornGroup(d)], [proxy.url]);
    const pids = await groupPids(d);
    await using s = await Session.create(t.admin, { ttl: 10 });
    const next = new Mutex(s, name).lock();
    await eventually(async () => (await keysUnder(t.admin, `${name}/`)).length === 2, 15_000, 'the next holder queued');
    expect(pids.every(alive)).toBe(true);
    proxy.blackhole(); // leasehold's keep-alives stop arriving; etcd expires its lease after the TTL
    await using lock = await next;
    // The moment etcd gave the name on, nothing of the command may still run.
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(join(d, 'grandchild-term'))).toBe(true); // SIGTERM went to the whole group first
    proxy.heal();
    expect(await ours.exit).toBe(79);
    expect(ours.stderr()).toMatch(/lost .*stopping sh \(SIGTERM, SIGKILL after 4000 ms\)/);
    await lock.release();
  });
});

describe('nothing leasehold writes can end it', () => {
  test.each([[[]], [['--quiet']]])('stderr’s reader gone (%j), then the lease revoked: the group is still ended, exit 79', async (flags) => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const ours = start(['lock', uniqueName('epipe'), ...flags, '--kill-grace', '1s', '--', ...stubbornGroup(d)], t.etcd.endpoints);
    const pids = await groupPids(d);
    ours.child.stderr!.destroy(); // the next line leasehold writes meets EPIPE
    await t.admin.leaseClient.leaseRevoke({ ID: await fileLine(d, 'lease') });
    expect(await ours.exit).toBe(79);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(join(d, 'grandchild-term'))).toBe(true);
  });

  test('stderr full (its reader stopped reading, the command filled it), then the lease revoked: the group is still ended, exit 79', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const fifo = join(d, 'stderr');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK); // held open, never read until the end
    const writer = openSync(fifo, constants.O_WRONLY); // blocking, as a pipe from a shell is
    try {
      const command = ['sh', '-c', `head -c 1000000 /dev/zero >&2 & exec ${stubbornGroup(d).join(' ')}`];
      const ours = start(['lock', uniqueName('full'), '--kill-grace', '1s', '--', ...command], t.etcd.endpoints, {}, ['ignore', 'pipe', writer]);
      closeSync(writer);
      const pids = await groupPids(d);
      await t.admin.leaseClient.leaseRevoke({ ID: await fileLine(d, 'lease') });
      expect(await ours.exit).toBe(79);
      expect(pids.filter(alive)).toEqual([]);
      expect(existsSync(join(d, 'grandchild-term'))).toBe(true);
    } finally {
      closeSync(reader);
    }
  });

  test('stderr’s reader gone before the first line: the command runs, the lock is released, its code passes through', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const name = uniqueName('epipe-first');
    const ours = start(['lock', name, '--', 'sh', '-c', `echo $$ > ${d}/child; ${untilReleased(d)}; exit 3`], t.etcd.endpoints);
    ours.child.stderr!.destroy();
    await pidIn(d, 'child');
    writeFileSync(join(d, 'release'), '');
    expect(await ours.exit).toBe(3);
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([]);
  });

  test('`observe NAME | head -1`: when its stdout’s reader is gone, observe ends at the next change with exit 0, no error', async () => {
    const name = uniqueName('observe-head');
    const watcher = start(['observe', name], t.etcd.endpoints);
    await eventually(() => watcher.stdout().includes('\n'), 20_000, 'first observe line');
    watcher.child.stdout!.destroy();
    await using s = await Session.create(t.admin, { ttl: 10 });
    await using _held = await new Mutex(s, name).lock(); // a change: observe writes, meets EPIPE, ends
    expect(await watcher.exit).toBe(0);
    expect(watcher.stderr()).toBe('');
  });
});

describe('leasehold failing ends the command first', () => {
  test('an exception nothing caught, while the command runs: its group is ended as on a loss, exit 70', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    // Planted from outside: a module loaded into leasehold that throws from a timer once told to.
    const plant = join(d, 'plant.mjs');
    writeFileSync(plant, `import { existsSync } from 'node:fs';\nconst t = setInterval(() => { if (existsSync(${JSON.stringify(join(d, 'fail'))})) { clearInterval(t); throw new Error('planted failure'); } }, 20);\nt.unref();\n`);
    const name = uniqueName('fatal');
    const ours = start(['lock', name, '--kill-grace', '1s', '--', ...stubbornGroup(d)], t.etcd.endpoints, { NODE_OPTIONS: `--import=${plant}` });
    const pids = await groupPids(d);
    writeFileSync(join(d, 'fail'), '');
    expect(await ours.exit).toBe(70);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(join(d, 'grandchild-term'))).toBe(true);
    expect(ours.stderr()).toContain('planted failure');
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([]); // the lease was revoked on the way out
    expect(readFileSync(join(d, 'lease'), 'utf8').trim()).not.toBe('');
  });
});
