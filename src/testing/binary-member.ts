/** One etcd member process started from the binary: start, stop, kill, pause, and its log. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { EtcdMember } from './cluster.js';
import { answersHttp, isHealthy, pollUntil } from './http.js';
import type { Reaper } from './reaper.js';

/** The one-letter process state from `/proc/<pid>/stat` (`R`, `S`, `T`, `Z`, …), or `undefined` off Linux. */
export function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) || undefined;
  } catch {
    return undefined;
  }
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

const STOP_LIKE = new Set<string>(['SIGSTOP', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU']);

export interface MemberSpec {
  name: string;
  /** The URLs etcd listens on (and advertises). */
  listen: { client: string; peer: string; metrics: string };
  /** How this process reaches it: the listen URLs on loopback, the admin gateway's in a network. */
  reach: { client: string; metrics: string };
  /** A prefix that runs etcd elsewhere (`ip netns exec <name>`); empty to run it as is. */
  command: readonly string[];
}

export class BinaryMember implements EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly metricsUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #command: readonly string[];
  readonly #args: readonly string[];
  readonly #reaper: Reaper;
  readonly #timeoutMs: number;
  readonly #quorumWouldRun: () => boolean;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #paused = false;
  /** The raft member ID, a decimal string as etcd's JSON gateway writes it; set once the cluster is up. */
  id = '';

  constructor(init: {
    spec: MemberSpec;
    dir: string;
    binary: string;
    flags: readonly string[];
    reaper: Reaper;
    timeoutMs: number;
    quorumWouldRun: () => boolean;
  }) {
    const { spec, dir } = init;
    this.name = spec.name;
    this.clientUrl = spec.reach.client;
    this.peerUrl = spec.listen.peer;
    this.metricsUrl = spec.reach.metrics;
    this.dataDir = join(dir, 'data');
    this.logFile = join(dir, 'etcd.log');
    this.#command = [...spec.command, init.binary];
    this.#reaper = init.reaper;
    this.#timeoutMs = init.timeoutMs;
    this.#quorumWouldRun = init.quorumWouldRun;
    this.#args = [
      `--name=${spec.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${spec.listen.client}`,
      `--advertise-client-urls=${spec.listen.client}`,
      `--listen-peer-urls=${spec.listen.peer}`,
      `--initial-advertise-peer-urls=${spec.listen.peer}`,
      `--listen-metrics-urls=${spec.listen.metrics}`,
      ...init.flags,
    ];
    mkdirSync(dir, { recursive: true });
  }

  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    const child = this.#child;
    return child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  }

  get paused(): boolean {
    return this.#paused && this.running;
  }

  /** Spawns the etcd process; it is tracked by the reaper until it exits. */
  spawn(): void {
    if (this.#reaper.disposed) throw new Error(`etcd member ${this.name} belongs to a stopped cluster`);
    const log = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      const [program, ...prefix] = this.#command;
      child = spawn(program!, [...prefix, ...this.#args], { stdio: ['ignore', 'ignore', log] });
    } finally {
      closeSync(log);
    }
    // A test that forgets stop() must not hang: the exit hook and the watchdog clean up instead.
    child.unref();
    this.#child = child;
    this.#paused = false;
    const { pid } = child;
    if (pid !== undefined) this.#reaper.track(pid);
    this.#exited = new Promise((resolve) => {
      const done = () => {
        if (pid !== undefined) this.#reaper.untrack(pid);
        resolve();
      };
      child.once('exit', done);
      child.once('error', done);
    });
  }

  /**
   * Resolves once the member serves — `'health'`: `/health` is true (it has a leader and a quorum read
   * succeeds); `'listening'`: its metrics port answers, so its peer port serves too — or rejects with its log when it exits or
   * `timeoutMs` passes.
   */
  async waitServing(options: { until: 'health' | 'listening'; timeoutMs: number; signal?: AbortSignal | undefined }) {
    const child = this.#child;
    await pollUntil(
      async () => {
        if (!this.running || this.#child !== child) {
          throw new MemberExitedError(this, tail(this.logFile));
        }
        // The metrics listener serves from the start (503 without a leader); the client listener only
        // once the member has joined, which needs a quorum.
        const ok =
          options.until === 'health'
            ? await isHealthy(this.metricsUrl, 500, options.signal)
            : await answersHttp(`${this.metricsUrl}/health`, 500, options.signal);
        return ok || undefined;
      },
      {
        timeoutMs: options.timeoutMs,
        intervalMs: options.until === 'health' ? 25 : 5,
        signal: options.signal,
        what: `etcd member ${this.name} to serve`,
      },
    ).catch((error: unknown) => {
      if (error instanceof MemberExitedError || options.signal?.aborted) throw error;
      throw new Error(`${(error as Error).message}; its log (${this.logFile}):\n${tail(this.logFile)}`, {
        cause: error,
      });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (STOP_LIKE.has(signal)) {
      throw new TypeError(`Expected \`signal\` to end the process, got \`${signal}\`; use pause() or resume()`);
    }
    const child = this.#child;
    if (!this.running || child === undefined) return;
    child.kill(signal);
    if (this.#paused && signal !== 'SIGKILL') child.kill('SIGCONT');
    this.#paused = false;
    await this.#waitExit(this.#timeoutMs, `etcd member ${this.name} to exit after ${signal}`);
  }

  async pause(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) throw new Error(`etcd member ${this.name} is not running`);
    process.kill(pid, 'SIGSTOP');
    this.#paused = true;
    if (processState(pid) === undefined) return;
    await pollUntil(async () => (processState(pid) === 'T' ? true : undefined), {
      timeoutMs: 5_000,
      intervalMs: 5,
      what: `etcd member ${this.name} to stop`,
    });
  }

  async resume(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !this.#paused) return;
    process.kill(pid, 'SIGCONT');
    this.#paused = false;
  }

  async restart(options: { signal?: AbortSignal } = {}): Promise<void> {
    options.signal?.throwIfAborted();
    await this.kill('SIGKILL');
    this.spawn();
    await this.waitServing({
      until: this.#quorumWouldRun() ? 'health' : 'listening',
      timeoutMs: this.#timeoutMs,
      signal: options.signal,
    });
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (!this.running || child === undefined) return;
    child.kill('SIGTERM');
    if (this.#paused) child.kill('SIGCONT');
    this.#paused = false;
    try {
      await this.#waitExit(2_000, `etcd member ${this.name} to exit after SIGTERM`);
    } catch {
      await this.kill('SIGKILL');
    }
  }

  /** SIGKILLs the process (if any) and waits for it; for cluster shutdown and failed starts. */
  async destroy(): Promise<void> {
    await this.kill('SIGKILL');
  }

  async #waitExit(timeoutMs: number, what: string): Promise<void> {
    // The timer is referenced: the child is not, so without it Node could exit while we wait.
    const controller = new AbortController();
    try {
      await Promise.race([
        this.#exited,
        delay(timeoutMs, undefined, { signal: controller.signal }).then(() => {
          throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
        }),
      ]);
    } finally {
      controller.abort();
    }
  }
}

export class MemberExitedError extends Error {
  constructor(member: BinaryMember, log: string) {
    super(`etcd member ${member.name} exited while starting; its log (${member.logFile}):\n${log}`);
    this.name = 'MemberExitedError';
  }
}

