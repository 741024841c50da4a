// Running the `leasehold` command line from the tests: as a child process with piped output, under a
// job-control shell on a real pty (test/processes/pty-shell.py), and looking at the processes it runs.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startEtcd, type EtcdCluster } from '../../src/testing/index.js';
import { eventually } from '../helpers.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cli = join(root, 'src/cli/main.ts');
/** `node` with the flags that run the CLI from its sources. */
export const cliArgv = [process.execPath, '--conditions=leasehold-source', '--import', 'tsx', cli];

/** Fields 3… of /proc/PID/stat (state, ppid, pgrp, …), or undefined when the process is gone. */
function stat(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  } catch {
    return undefined;
  }
}

/** A process's start time (field 22): with the pid, it names one process, never a later one. */
function startTime(pid: number): string | undefined {
  return stat(pid)?.[19];
}

const leftovers = new Map<number, string>();

/** Notes processes a test started, so that {@link killLeftovers} ends whatever a failed test left running. */
export function track(...pids: (number | undefined)[]): void {
  for (const pid of pids) {
    const started = pid === undefined ? undefined : startTime(pid);
    if (started !== undefined) leftovers.set(pid!, started);
  }
}

/**
 * SIGKILLs every tracked process still there — the same process, not one that reused its pid — and,
 * for a command that leads its process group, the whole group (for `afterEach`).
 */
export function killLeftovers(): void {
  for (const [pid, started] of leftovers) {
    if (startTime(pid) !== started) continue;
    try {
      process.kill(stat(pid)?.[2] === String(pid) ? -pid : pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  leftovers.clear();
}

/** What a CLI test file shares: its own etcd, an admin client on it, and a scratch directory. */
export interface CliSuite {
  etcd: EtcdCluster;
  admin: Etcd3;
  dir: string;
}

/**
 * Registers the hooks of a CLI test file — an etcd of its own, a scratch directory (removed after),
 * and {@link killLeftovers} after each test — and returns what they set up (filled in by `beforeAll`).
 */
export function cliSuite(name: string): CliSuite {
  const suite = {} as CliSuite;
  beforeAll(async () => {
    suite.etcd = await startEtcd();
    suite.admin = suite.etcd.client();
    suite.dir = mkdtempSync(join(tmpdir(), `leasehold-${name}-`));
  });
  afterEach(killLeftovers);
  afterAll(async () => {
    await suite.etcd?.stop();
    if (suite.dir) rmSync(suite.dir, { recursive: true, force: true });
  });
  return suite;
}

export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** The exit code; -1 when a signal killed it. */
  exit: Promise<number | null>;
}

/** Starts `leasehold ...args` against `endpoints`, stdin ignored and stdout/stderr piped. */
export function start(args: string[], endpoints: readonly string[], env: Record<string, string> = {}, stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): Running {
  const child = spawn(cliArgv[0]!, [...cliArgv.slice(1), ...args], {
    env: { ...process.env, ETCD_ENDPOINTS: endpoints.join(','), ...env },
    stdio,
  });
  track(child.pid);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Runs `leasehold ...args` to the end (killed after `timeoutMs`). */
export async function run(args: string[], endpoints: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = start(args, endpoints, env);
  const timer = setTimeout(() => r.child.kill('SIGKILL'), timeoutMs);
  const code = await r.exit;
  clearTimeout(timer);
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** A process's state letter from /proc (`R`, `S`, `T` stopped, `Z` zombie…); `undefined` when it is gone. */
export function procState(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Alive: it exists and is not a zombie (an orphan's zombie may wait for a PID 1 that never reaps). */
export function alive(pid: number): boolean {
  const state = procState(pid);
  return state !== undefined && state !== 'Z';
}

/** Waits until the file `d/name` holds a line, and returns it. */
export async function fileLine(d: string, name: string, timeoutMs = 45_000): Promise<string> {
  const path = join(d, name);
  await eventually(() => existsSync(path) && readFileSync(path, 'utf8').includes('\n'), timeoutMs, `${name} written`);
  return readFileSync(path, 'utf8').trim();
}

/** Waits for the pid a command writes to `d/name`, and tracks it ({@link track}). */
export async function pidIn(d: string, name: string): Promise<number> {
  const pid = Number(await fileLine(d, name));
  track(pid);
  return pid;
}

/** What test/processes/pty-shell.py reports. */
export interface PtyEvent {
  event: 'started' | 'stopped' | 'continued' | 'exited' | 'signaled' | 'tty';
  pid?: number;
  signal?: number;
  code?: number;
  data?: string;
}

/** A job-control shell on a pty running `leasehold ...args` as its job. */
export interface PtyJob {
  events: PtyEvent[];
  /** Sends a line to the shell: `type HEX`, `fg`, `bg`. */
  send: (line: string) => void;
  /** Waits for the `n`-th (1-based) event of that kind and returns it. */
  next: (event: PtyEvent['event'], n?: number, timeoutMs?: number) => Promise<PtyEvent>;
  /** What the terminal showed so far. */
  tty: () => string;
  close: () => Promise<void>;
}

/** Starts `leasehold ...args` as the job of a shell on a pty (`--tostop`, `--background` as the script takes). */
export function ptyJob(args: string[], endpoints: readonly string[], options: string[] = []): PtyJob {
  const child = spawn('python3', [join(root, 'test/processes/pty-shell.py'), ...options, '--', ...cliArgv, ...args], {
    env: { ...process.env, ETCD_ENDPOINTS: endpoints.join(',') },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const events: PtyEvent[] = [];
  let partial = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line.trim() === '') continue;
      const event = JSON.parse(line) as PtyEvent;
      if (event.event === 'started') track(event.pid);
      events.push(event);
    }
  });
  track(child.pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    events,
    send: (line) => child.stdin.write(`${line}\n`),
    next: async (event, n = 1, timeoutMs = 30_000) => {
      const matching = (): PtyEvent[] => events.filter((e) => e.event === event);
      await eventually(() => matching().length >= n, timeoutMs, `pty event ${event} #${n}`).catch((error: Error) => {
        throw new Error(`${error.message} (events: ${JSON.stringify(events.filter((e) => e.event !== 'tty'))})`);
      });
      return matching()[n - 1]!;
    },
    tty: () => events.filter((e) => e.event === 'tty').map((e) => e.data).join(''),
    close: async () => {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
