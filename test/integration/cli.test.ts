// The `leasehold` command line against a real etcd: exclusion with `etcdctl lock`/`elect` both ways,
// exit codes (passthrough, signals, timeout, bad arguments, unreachable or silent etcd, not found),
// signal forwarding and aborted waits, the environment of the command, `status`/`observe` with
// Go-style (etcdctl) waiters present. Losses and failed writes: cli-loss.test.ts; signals and the
// terminal: cli-signals.test.ts.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { Mutex, ReadWriteLock, Semaphore, Election, Session } from '../../src/index.js';
import { eventually, keysUnder, uniqueName, untilReleased } from '../helpers.js';
import { cli, fileLine, cliSuite, root, run as runCli, start as startCli, type Running } from './cli-helpers.js';

const t = cliSuite('cli');

/** Starts `leasehold ...args` against `endpoints` (default: this file's etcd). */
function start(args: string[], env: Record<string, string> = {}, endpoints = t.etcd.endpoints): Running {
  return startCli(args, endpoints, env);
}

/** Runs `leasehold ...args` to the end (killed after `timeoutMs`). */
function run(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): ReturnType<typeof runCli> {
  return runCli(args, t.etcd.endpoints, env, timeoutMs);
}

function etcdctl(args: string[]): Running {
  const child = spawn('etcdctl', [`--endpoints=${t.etcd.endpoints.join(',')}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCDCTL_API: '3' } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** A shell command that notes it started (writes `started`) and runs until `release` appears in `d`. */
function holdUntilReleased(d: string): string[] {
  return ['sh', '-c', `echo "$LEASEHOLD_TOKEN $LEASEHOLD_KEY $LEASEHOLD_LEASE_ID" > ${d}/started; ${untilReleased(d)}`];
}

function freshDir(): string {
  return mkdtempSync(join(t.dir, 'case-'));
}

describe('arguments and exit codes', () => {
  test('--help of every command shows examples and exits 0; --version prints the package version', async () => {
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;
    const v = await run(['--version']);
    expect(v).toMatchObject({ code: 0 });
    expect(v.stdout.trim()).toBe(version);
    for (const command of ['lock', 'read-lock', 'write-lock', 'acquire', 'elect', 'status', 'observe', 'ls', 'ui']) {
      const h = await run([command, '--help']);
      expect(h.code, command).toBe(0);
      expect(h.stdout, command).toContain('Examples:');
      expect(h.stdout, command).toContain('--endpoints');
    }
  });

  test.each([
    [['lock', 'jobs/', '--', 'true'], 'not to end with "/"'],
    [['lock', 'jobs', '--ttl', '0', '--', 'true'], '--ttl: expected a whole number from 1 to 9000000000, got "0"'],
    [['lock', 'jobs', '--timeout', '5 parsecs', '--', 'true'], '--timeout: expected a duration'],
    [['acquire', 'gpu', '--permits', '2', '--weight', '3', '--', 'true'], '--weight 3 is more than --permits 2'],
    [['acquire', 'gpu', '--', 'true'], "required option '--permits <n>' not specified"],
    [['lock', 'jobs', '--cert', 'c.pem', '--', 'true'], '--cert and --key go together'],
    [['lock', 'jobs', '--user', 'alice', '--', 'true'], '--user alice needs a password: set ETCD_PASSWORD or pass --password-file FILE'],
    [['status', 'jobs', '--endpoints', 'etcd-0 etcd-1'], '--endpoints: "etcd-0 etcd-1" is not host:port'],
    [['status', 'jobs', '--kind', 'queue'], "argument 'queue' is invalid. Allowed choices are mutex, rwlock, semaphore, election"],
    [['lock', 'jobs', '--cacert', '/nonexistent/ca.pem', '--', 'true'], 'cannot read --cacert "/nonexistent/ca.pem" (ENOENT)'],
    [['lock', 'jobs', '--', ''], 'the command after -- must start with a program name, got ""'],
    [['lock', 'jobs', '--ttl', '10', '--kill-grace', '6s', '--', 'true'], '--kill-grace 6s does not fit in --ttl 10'],
    [['elect', 'jobs', '--ttl', '3', '--', 'true'], ''], // the default kill-grace always fits
  ])('%j: refused with a message naming it', async (args, message) => {
    const revision = async (): Promise<string> => (await t.admin.get('jobs').exec()).header.revision;
    const before = await revision();
    const r = await run(args, { ETCD_PASSWORD: '' });
    if (message === '') {
      expect(r.code).toBe(0);
      return;
    }
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(message.startsWith('cannot read --cacert') ? 78 : 64);
    expect(await revision()).toBe(before); // nothing was written: no key taken, none deleted
  });

  test('--timeout 0 is one try: a free lock is taken and the command runs; a held one exits 75 at once, its queue key deleted', async () => {
    const name = uniqueName('one-try');
    const d = freshDir();
    expect((await run(['lock', name, '--timeout', '0', '--', 'touch', `${d}/free`])).code).toBe(0);
    expect(existsSync(join(d, 'free'))).toBe(true);
    await using s = await Session.create(t.admin, { ttl: 10 });
    await using held = await new Mutex(s, name).lock();
    const busy = await run(['lock', name, '--timeout', '0', '--', 'touch', `${d}/busy`]);
    expect(busy.code).toBe(75);
    expect(busy.stderr).toContain(`gave up waiting for lock "${name}": taken at the first try (--timeout 0)`);
    expect(existsSync(join(d, 'busy'))).toBe(false);
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([held.key]);
  });

  test('the command’s exit code passes through; 128 + N when signal N kills it; 127 when it does not exist', async () => {
    const name = uniqueName('codes');
    expect((await run(['lock', name, '--', 'sh', '-c', 'exit 7'])).code).toBe(7);
    expect((await run(['lock', name, '--', 'sh', '-c', 'kill -KILL $$'])).code).toBe(137);
    const missing = await run(['lock', name, '--', 'no-such-command-leasehold']);
    expect(missing.code).toBe(127);
    expect(missing.stderr).toContain('cannot run no-such-command-leasehold: not found');
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([]); // released every time
  });

  test('status and observe (also of an election) against an endpoint that accepts connections and never answers: exit 69 naming it, after their 10 s deadline', async () => {
    const silent: Server = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `127.0.0.1:${(silent.address() as { port: number }).port}`;
      const commands = [['status'], ['observe'], ['observe', '--kind', 'election']];
      const results = await Promise.all(commands.map(async (command) => run([...command, uniqueName('silent'), '--endpoints', endpoint])));
      for (const r of results) {
        expect(r.code).toBe(69);
        expect(r.stderr.trim()).toBe(`leasehold: etcd at ${endpoint} did not answer within 10 s`);
      }
    } finally {
      silent.close();
    }
  });

  test('an unreachable etcd: exit 69 and a line naming the endpoint', async () => {
    const r = await run(['lock', uniqueName('nowhere'), '--endpoints', '127.0.0.1:9', '--', 'true']);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/127\.0\.0\.1:9/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('running a command under a lock', () => {
  test('the command sees LEASEHOLD_* naming its key, token and lease; the token is the key’s create revision', async () => {
    const name = uniqueName('env');
    const d = freshDir();
    // LEASEHOLD_TRANSPORT, when the test run sets it, is the environment's, inherited like any other.
    const r = start(['lock', name, '--', 'sh', '-c', `env | grep ^LEASEHOLD_ | grep -v ^LEASEHOLD_TRANSPORT= | sort > ${d}/env; ${untilReleased(d)}`]);
    await eventually(() => existsSync(join(d, 'env')) && readFileSync(join(d, 'env'), 'utf8').includes('LEASEHOLD_TOKEN'), 15_000, 'command started');
    const env = Object.fromEntries(readFileSync(join(d, 'env'), 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
    const [kv] = (await t.admin.getAll().prefix(`${name}/`).exec()).kvs;
    expect(env).toEqual({
      LEASEHOLD_KIND: 'mutex',
      LEASEHOLD_NAME: name,
      LEASEHOLD_KEY: kv!.key.toString(),
      LEASEHOLD_TOKEN: kv!.create_revision,
      LEASEHOLD_LEASE_ID: kv!.lease,
      LEASEHOLD_LEASE_HEX: BigInt(kv!.lease).toString(16),
    });
    writeFileSync(join(d, 'release'), '');
    expect(await r.exit).toBe(0);
    expect(r.stderr()).toContain(`lock "${name}" released`);
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([]);
  });

  test('--namespace: the keys live under the prefix, LEASEHOLD_KEY is relative to it', async () => {
    const name = uniqueName('ns');
    const d = freshDir();
    const ours = start(['lock', name, '--namespace', 'app/', '--', 'sh', '-c', `echo $LEASEHOLD_KEY > ${d}/key; ${untilReleased(d)}`]);
    const key = (await fileLine(d, 'key')).trim();
    expect(key.startsWith(`${name}/`)).toBe(true);
    expect(await keysUnder(t.admin, `app/${name}/`)).toEqual([`app/${key}`]);
    writeFileSync(join(d, 'release'), '');
    expect(await ours.exit).toBe(0);
  });

  test('`etcdctl lock` holds → `leasehold lock` waits (and times out with 75); it releases → ours runs', async () => {
    const name = uniqueName('ctl-first');
    const ctl = etcdctl(['lock', name]);
    try {
      await eventually(() => ctl.stdout().includes(`${name}/`), 10_000, 'etcdctl holds');
      const timedOut = await run(['lock', name, '--timeout', '700ms', '--', 'true']);
      expect(timedOut.code).toBe(75);
      expect(timedOut.stderr).toContain(`gave up waiting for lock "${name}": still taken 700ms after the first try (--timeout 700ms)`);
      const d = freshDir();
      const ours = start(['lock', name, '--', 'touch', `${d}/ran`]);
      await delay(800);
      expect(existsSync(join(d, 'ran'))).toBe(false); // still excluded
      ctl.child.kill('SIGINT'); // etcdctl unlocks on SIGINT
      expect(await ours.exit).toBe(0);
      expect(existsSync(join(d, 'ran'))).toBe(true);
    } finally {
      ctl.child.kill('SIGKILL');
      await ctl.exit;
    }
  });

  test('`leasehold lock` holds → `etcdctl lock` waits; ours ends → etcdctl gets it', async () => {
    const name = uniqueName('ours-first');
    const d = freshDir();
    const ours = start(['lock', name, '--', ...holdUntilReleased(d)]);
    await eventually(() => existsSync(join(d, 'started')), 15_000, 'ours holds');
    const ctl = etcdctl(['lock', name]);
    try {
      await delay(800);
      expect(ctl.stdout()).toBe(''); // etcdctl prints the key once it holds
      writeFileSync(join(d, 'release'), '');
      expect(await ours.exit).toBe(0);
      await eventually(() => ctl.stdout().includes(`${name}/`), 10_000, 'etcdctl holds after us');
    } finally {
      ctl.child.kill('SIGKILL');
      await ctl.exit;
    }
  });

  test('`etcdctl elect` leads → `leasehold elect` waits; we lead → `etcdctl elect -l` shows our value', async () => {
    const name = uniqueName('elect');
    const ctl = etcdctl(['elect', name, 'from-etcdctl']);
    const d = freshDir();
    try {
      await eventually(() => ctl.stdout().includes('from-etcdctl'), 10_000, 'etcdctl leads');
      expect((await run(['elect', name, '--value', 'from-cli', '--timeout', '700ms', '--', 'true'])).code).toBe(75);
      const ours = start(['elect', name, '--value', 'from-cli', '--', 'sh', '-c', `echo "$LEASEHOLD_VALUE $LEASEHOLD_KIND" > ${d}/started; ${untilReleased(d)}`]);
      await delay(500);
      expect(existsSync(join(d, 'started'))).toBe(false);
      ctl.child.kill('SIGINT'); // resigns
      await eventually(() => existsSync(join(d, 'started')), 15_000, 'we lead');
      expect(readFileSync(join(d, 'started'), 'utf8').trim()).toBe('from-cli election');
      const listen = etcdctl(['elect', '-l', name]);
      await eventually(() => listen.stdout().includes('from-cli'), 10_000, 'etcdctl elect -l sees us');
      listen.child.kill('SIGKILL');
      writeFileSync(join(d, 'release'), '');
      expect(await ours.exit).toBe(0);
    } finally {
      ctl.child.kill('SIGKILL');
      await ctl.exit;
    }
  });

  test('SIGTERM to leasehold reaches the command’s process group; leasehold exits with the command’s code and releases', async () => {
    const name = uniqueName('forward');
    const d = freshDir();
    const ours = start(['lock', name, '--', 'sh', '-c', `trap 'echo TERM > ${d}/got; exit 5' TERM; touch ${d}/started; while :; do sleep 0.02; done`]);
    await eventually(() => existsSync(join(d, 'started')), 15_000, 'command started');
    ours.child.kill('SIGTERM');
    expect(await ours.exit).toBe(5);
    expect(readFileSync(join(d, 'got'), 'utf8').trim()).toBe('TERM');
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([]);
  });

  test('SIGINT while waiting aborts the wait: exit 130, the queue key is deleted, the command never ran', async () => {
    const name = uniqueName('abort-wait');
    await using s = await Session.create(t.etcd.client(), { ttl: 10 });
    await using held = await new Mutex(s, name).lock();
    const d = freshDir();
    const ours = start(['lock', name, '--', 'touch', `${d}/ran`]);
    await eventually(async () => (await keysUnder(t.admin, `${name}/`)).length === 2, 15_000, 'leasehold queued');
    ours.child.kill('SIGINT');
    expect(await ours.exit).toBe(130);
    expect(await keysUnder(t.admin, `${name}/`)).toEqual([held.key]);
    expect(existsSync(join(d, 'ran'))).toBe(false);
  });

  test('read-lock shares with readers and waits for a writer; acquire takes weighted permits', async () => {
    const name = uniqueName('rw');
    await using s = await Session.create(t.etcd.client(), { ttl: 10 });
    const rw = new ReadWriteLock(s, name);
    {
      await using _reader = await rw.readLock();
      expect((await run(['read-lock', name, '--timeout', '5s', '--', 'sh', '-c', 'test "$LEASEHOLD_MODE" = read'])).code).toBe(0);
      expect((await run(['write-lock', name, '--timeout', '600ms', '--', 'true'])).code).toBe(75);
    }
    const sem = uniqueName('sem');
    await using permit = await new Semaphore(s, sem, { permits: 3 }).acquire({ weight: 2 });
    expect((await run(['acquire', sem, '--permits', '3', '--weight', '2', '--timeout', '600ms', '--', 'true'])).code).toBe(75);
    expect((await run(['acquire', sem, '--permits', '3', '--timeout', '5s', '--', 'sh', '-c', 'test "$LEASEHOLD_WEIGHT/$LEASEHOLD_PERMITS" = 1/3'])).code).toBe(0);
    const mismatch = await run(['acquire', sem, '--permits', '4', '--timeout', '5s', '--', 'true']);
    expect(mismatch.code).toBe(65); // another participant recorded 3 permits
    expect(mismatch.stderr).toMatch(/permits/);
    await permit.release();
  });
});

describe('status and observe', () => {
  test('status shows the holder and the waiters in order — a Go-style (etcdctl) waiter among them — with tokens and TTLs', async () => {
    const name = uniqueName('status');
    const d = freshDir();
    const ours = start(['lock', name, '--ttl', '20', '--', ...holdUntilReleased(d)]);
    await eventually(() => existsSync(join(d, 'started')), 15_000, 'ours holds');
    const ctl = etcdctl(['lock', name]);
    try {
      await eventually(async () => (await keysUnder(t.admin, `${name}/`)).length === 2, 10_000, 'etcdctl queued');
      await using s = await Session.create(t.etcd.client(), { ttl: 30 });
      const lib = new Mutex(s, name).lock();
      await eventually(async () => (await keysUnder(t.admin, `${name}/`)).length === 3, 10_000, 'library queued');
      const keys = await keysUnder(t.admin, `${name}/`);
      const json = await run(['status', name, '--json']);
      expect(json.code).toBe(0);
      const st = JSON.parse(json.stdout) as { holders: { key: string; token: string; ttl: number }[]; waiters: { key: string; ttl: number }[] };
      expect(st.holders.map((h) => h.key)).toEqual([keys[0]]);
      expect(st.waiters.map((w) => w.key)).toEqual(keys.slice(1));
      expect(st.holders[0]!.token).toBe(readFileSync(join(d, 'started'), 'utf8').split(' ')[0]);
      expect(st.holders[0]!.ttl).toBeGreaterThan(0);
      expect(st.holders[0]!.ttl).toBeLessThanOrEqual(20);
      const text = await run(['status', name]);
      expect(text.stdout).toContain(`mutex "${name}"`);
      expect(text.stdout).toMatch(new RegExp(`holder +${keys[0]}`));
      expect(text.stdout).toMatch(new RegExp(`waiter 1 +${keys[1]}`));
      expect(text.stdout).toMatch(new RegExp(`waiter 2 +${keys[2]}`));

      // observe: the holder now, then each change, as JSON lines.
      const watcher = start(['observe', name]);
      const lines = (): { holders: { key: string }[] }[] => watcher.stdout().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      await eventually(() => lines().length >= 1, 15_000, 'first observe line');
      expect(lines()[0]!.holders.map((h) => h.key)).toEqual([keys[0]]);
      writeFileSync(join(d, 'release'), '');
      expect(await ours.exit).toBe(0);
      await eventually(() => lines().at(-1)?.holders[0]?.key === keys[1], 10_000, 'observe shows etcdctl holding');
      ctl.child.kill('SIGINT');
      await using handle = await lib;
      await eventually(() => lines().at(-1)?.holders[0]?.key === handle.key, 10_000, 'observe shows the library holding');
      await handle.release();
      await eventually(() => lines().at(-1)?.holders.length === 0, 10_000, 'observe shows it free');
      watcher.child.kill('SIGINT');
      expect(await watcher.exit).toBe(0);
    } finally {
      ctl.child.kill('SIGKILL');
      await ctl.exit;
      writeFileSync(join(d, 'release'), '');
    }
  });

  test('status --kind election/rwlock/semaphore', async () => {
    await using s = await Session.create(t.etcd.client(), { ttl: 10 });
    const e = uniqueName('st-election');
    await using leading = await new Election(s, e).campaign('leader-value');
    const el = JSON.parse((await run(['status', e, '--kind', 'election', '--json'])).stdout);
    expect(el.holders).toEqual([expect.objectContaining({ key: leading.key, token: leading.term.toString(), value: 'leader-value' })]);
    const r = uniqueName('st-rw');
    const rw = new ReadWriteLock(s, r);
    await using r1 = await rw.readLock();
    await using r2 = await rw.readLock();
    const rws = JSON.parse((await run(['status', r, '--kind', 'rwlock', '--json'])).stdout);
    expect(rws.holders.map((h: { key: string; mode: string }) => [h.key, h.mode])).toEqual([[r1.key, 'read'], [r2.key, 'read']]);
    const m = uniqueName('st-sem');
    await using p = await new Semaphore(s, m, { permits: 5 }).acquire({ weight: 2 });
    const sem = await run(['status', m, '--kind', 'semaphore']);
    expect(sem.stdout).toContain(`semaphore "${m}"`);
    expect(sem.stdout).toMatch(new RegExp(`holder +${p.key} .*weight 2/5`));
  });
});

describe('docs/cli.md', () => {
  test('every ```sh example runs against a real etcd and exits 0', async () => {
    const doc = readFileSync(join(root, 'docs/cli.md'), 'utf8');
    const blocks = [...doc.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const bin = freshDir();
    writeFileSync(join(bin, 'leasehold'), `#!/bin/sh\nexec "${process.execPath}" --conditions=leasehold-source --import tsx "${cli}" "$@"\n`, { mode: 0o755 });
    for (const block of blocks) {
      const endpoints = t.etcd.endpoints.join(',');
      const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn('bash', ['-c', block], {
          env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, ETCD_ENDPOINTS: endpoints, ETCDCTL_ENDPOINTS: endpoints, ETCDCTL_API: '3' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (d: Buffer) => (output += d.toString()));
        child.stderr.on('data', (d: Buffer) => (output += d.toString()));
        child.once('exit', (code) => resolve({ code, output }));
      });
      expect(result, block).toMatchObject({ code: 0 });
      if (block.includes('busy: skipped')) expect(result.output).toContain('busy: skipped');
      if (block.includes('fenced-write')) expect(result.output).toMatch(/SUCCESS[\s\S]*fenced-write/);
      if (block.includes('both-fenced')) expect(result.output).toMatch(/^leasehold: locks "docs-alice" and "docs-bob" acquired[\s\S]*\nSUCCESS\n/);
      if (block.includes('status docs-transcode')) expect(result.output).toMatch(/holder +docs-transcode\/holders\/\S+ +token \d+ +lease \w+ +ttl \d+s +weight 1\/2/);
      if (block.includes('docs-example')) expect(result.output).toMatch(/holding docs-example\/[0-9a-f]+ with token \d+/);
    }
  }, 120_000);
});
