// Signals and the terminal: every signal leaves `leasehold` and its command either both running or
// both stopped (docs/cli.md, "Signals"). Job control is tested on a real pseudo-terminal, under a
// job-control shell (test/processes/pty-shell.py), as a user at a terminal would meet it.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { Mutex, Session } from '../../src/index.js';
import { eventually, keysUnder, uniqueName } from '../helpers.js';
import { alive, fileLine, cliSuite, pidIn, procState, ptyJob, start } from './cli-helpers.js';

const t = cliSuite('cli-signals');

const stopped = (pid: number): boolean => procState(pid) === 'T';
const running = (pid: number): boolean => alive(pid) && !stopped(pid);

// The commands below never fork in a loop: a shell waiting for a child it has just vforked shows as
// `D`, not `T`, while the group is stopped, and a stop would be hard to see.

/** A command with a grandchild: both note their pids (`child`, `grandchild`); it ends when the grandchild does. */
function family(d: string): string[] {
  return ['sh', '-c', `exec 2>/dev/null; sleep 300 & echo $! > ${d}/grandchild; echo $$ > ${d}/child; wait; exit 0`];
}

/**
 * A command that ignores SIGTERM, notes its pid and lease, then appends a line to `ticks` every 50 ms
 * (one process: the shell execs the ticker).
 */
function ticker(d: string): string[] {
  // (Started once `ticks` exists: the python3 found on PATH may be a wrapper that forks before it execs.)
  writeFileSync(join(d, 'ticker.py'), `import time\nwhile True:\n    with open(${JSON.stringify(join(d, 'ticks'))}, 'a') as f:\n        f.write('tick\\n')\n    time.sleep(0.05)\n`);
  return ['sh', '-c', `exec 2>/dev/null; trap '' TERM; echo $LEASEHOLD_LEASE_ID > ${d}/lease; echo $$ > ${d}/child; exec python3 ${d}/ticker.py`];
}

describe('forwarded signals', () => {
  test('HUP, INT, QUIT, USR1, USR2, ALRM, WINCH reach the command’s group one by one; leasehold stays, then exits with the command’s code', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const name = uniqueName('forward');
    const signals = ['USR1', 'QUIT', 'USR2', 'ALRM', 'WINCH', 'HUP', 'INT'] as const;
    const traps = signals.map((s) => `trap 'echo ${s} >> ${d}/got' ${s}`).join('; ');
    const ours = start(['lock', name, '--', 'sh', '-c', `ulimit -c 0; exec 2>/dev/null; ${traps}; trap 'exit 5' TERM; echo $$ > ${d}/child; while :; do sleep 0.05; done`], t.etcd.endpoints);
    await pidIn(d, 'child');
    const got = (): string[] => (existsSync(join(d, 'got')) ? readFileSync(join(d, 'got'), 'utf8').trim().split('\n') : []);
    for (const [i, s] of signals.entries()) {
      ours.child.kill(`SIG${s}`);
      await eventually(() => got().length > i, 10_000, `the command got SIG${s} (so far: ${got().join(' ')})`);
    }
    expect(got()).toEqual([...signals]);
    ours.child.kill('SIGTERM');
    expect(await ours.exit).toBe(5);
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([]);
  });

  test('SIGQUIT while waiting ends the wait like SIGINT: exit 131, the queue key deleted, the command never ran (SIGWINCH before it changed nothing)', async () => {
    const name = uniqueName('quit-wait');
    await using s = await Session.create(t.admin, { ttl: 10 });
    await using held = await new Mutex(s, name).lock();
    const d = mkdtempSync(join(t.dir, 'case-'));
    const ours = start(['lock', name, '--', 'touch', `${d}/ran`], t.etcd.endpoints);
    await eventually(async () => (await keysUnder(t.admin, `${name}/`)).length === 2, 20_000, 'leasehold queued');
    ours.child.kill('SIGWINCH');
    ours.child.kill('SIGQUIT');
    expect(await ours.exit).toBe(131);
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([held.key]);
    expect(existsSync(join(d, 'ran'))).toBe(false);
  });
});

describe('job control: both stop, both go on', () => {
  test('SIGTTIN stops leasehold and the command’s whole group; SIGCONT continues them all', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const ours = start(['lock', uniqueName('ttin'), '--', ...family(d)], t.etcd.endpoints);
    const pids = [await pidIn(d, 'child'), await pidIn(d, 'grandchild')];
    ours.child.kill('SIGTTIN');
    await eventually(() => stopped(ours.child.pid!) && pids.every(stopped), 10_000, 'leasehold and the group stopped');
    ours.child.kill('SIGCONT');
    await eventually(() => running(ours.child.pid!) && pids.every(running), 10_000, 'all running again');
    process.kill(pids[1]!); // the command ends with its grandchild
    expect(await ours.exit).toBe(0);
  });

  test('Ctrl-Z at a terminal stops leasehold and the command’s whole group; `fg` continues them; the run ends normally', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const job = ptyJob(['lock', uniqueName('ctrl-z'), '--', ...family(d)], t.etcd.endpoints);
    try {
      const pids = [await pidIn(d, 'child'), await pidIn(d, 'grandchild')];
      job.send('type 1a'); // Ctrl-Z
      await job.next('stopped');
      await eventually(() => pids.every(stopped), 10_000, 'the command’s group stopped with leasehold');
      job.send('fg');
      await job.next('continued');
      await eventually(() => pids.every(running), 10_000, 'the group running again');
      process.kill(pids[1]!);
      expect((await job.next('exited')).code).toBe(0);
    } finally {
      await job.close();
    }
  });

  test('stopped past the TTL: the name passes on while the command is stopped; at `fg` it is killed without running again; exit 79', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const name = uniqueName('ctrl-z-lost');
    // It ignores SIGTERM: continued by mistake, it would tick on until the SIGKILL a kill-grace later.
    const job = ptyJob(['lock', name, '--ttl', '3', '--', ...ticker(d)], t.etcd.endpoints);
    try {
      const child = await pidIn(d, 'child');
      await fileLine(d, 'ticks'); // the ticker runs
      await using s = await Session.create(t.admin, { ttl: 10 });
      const next = new Mutex(s, name).lock();
      await eventually(async () => (await keysUnder(t.admin, `${name}/`)).length === 2, 20_000, 'the next holder queued');
      job.send('type 1a');
      await job.next('stopped');
      await eventually(() => stopped(child), 10_000, 'the command stopped');
      await using lock = await next; // etcd expired the stopped leasehold's lease
      const ticks = readFileSync(join(d, 'ticks'), 'utf8');
      expect(stopped(child)).toBe(true); // not running beside the new holder
      job.send('fg');
      expect((await job.next('exited')).code).toBe(79);
      expect(alive(child)).toBe(false);
      expect(readFileSync(join(d, 'ticks'), 'utf8')).toBe(ticks); // it never ran again
      expect(job.tty()).toContain('lost');
      await lock.release();
    } finally {
      await job.close();
    }
  });

  test('a background job writing to a `tostop` terminal (SIGTTOU): the lost line stops both; at `fg` the group is killed, exit 79', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const job = ptyJob(['lock', uniqueName('tostop'), '--quiet', '--kill-grace', '3s', '--', ...ticker(d)], t.etcd.endpoints, ['--tostop', '--background']);
    try {
      const child = await pidIn(d, 'child');
      await fileLine(d, 'ticks'); // the ticker runs
      await t.admin.leaseClient.leaseRevoke({ ID: await fileLine(d, 'lease') });
      await job.next('stopped'); // leasehold stopped ...
      await eventually(() => stopped(child), 10_000, 'the command stopped too');
      job.send('fg');
      expect((await job.next('exited')).code).toBe(79);
      expect(alive(child)).toBe(false);
      expect(job.tty()).toContain('lost');
    } finally {
      await job.close();
    }
  });
});

describe('the terminal', () => {
  test('a command reads the terminal without stopping (leasehold never reads it) but has no /dev/tty; Ctrl-C at the terminal reaches it through leasehold', async () => {
    const d = mkdtempSync(join(t.dir, 'case-'));
    const script = `trap 'echo INT > ${d}/int; exit 3' INT; (: < /dev/tty) 2>/dev/null || echo none > ${d}/devtty; read line; echo "got $line" > ${d}/read; while :; do sleep 0.05; done`;
    const job = ptyJob(['lock', uniqueName('tty'), '--', 'sh', '-c', script], t.etcd.endpoints);
    try {
      expect(await fileLine(d, 'devtty')).toBe('none'); // no controlling terminal: a session of its own
      job.send(`type ${Buffer.from('hello\n').toString('hex')}`);
      expect(await fileLine(d, 'read')).toBe('got hello');
      job.send('type 03'); // Ctrl-C
      expect((await job.next('exited')).code).toBe(3);
      expect(readFileSync(join(d, 'int'), 'utf8').trim()).toBe('INT');
    } finally {
      await job.close();
    }
  });
});
