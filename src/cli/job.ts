/**
 * The command run under a holding, as leasehold controls it: started without a shell in a session and
 * process group of its own (`setsid`), signalled as a group, stopped and continued together with
 * leasehold, and ended — SIGTERM, then SIGKILL after the kill-grace — when the holding is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from '../transport/abort.js';
import { exitCodes } from './exit-codes.js';
import { stderr } from './output.js';
import { signalExitCode } from './signals.js';

/** A started command and its process group. */
export class Job {
  /** Resolves with the exit code to report: the command's, 128 + N for a signal N, 126/127 when it could not run. */
  readonly exited: Promise<number>;
  readonly #pgid: number | undefined;
  #exited = false;
  #stopped = false;

  private constructor(child: ChildProcess | undefined, exited: Promise<number>) {
    this.#pgid = child?.pid;
    this.exited = exited.finally(() => (this.#exited = true));
  }

  /** Starts `command` (checked: a program name first) without a shell, in a new session, stdio inherited. */
  static start(command: readonly string[], env: NodeJS.ProcessEnv): Job {
    const cannotRun = (error: NodeJS.ErrnoException): number => {
      stderr.line(`leasehold: cannot run ${command[0]}: ${error.code === 'ENOENT' ? 'not found' : error.message}`);
      return error.code === 'ENOENT' ? exitCodes.notFound : exitCodes.cannotExecute;
    };
    let child: ChildProcess;
    try {
      child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', detached: true, env });
    } catch (error) {
      return new Job(undefined, Promise.resolve(cannotRun(error as NodeJS.ErrnoException)));
    }
    const exited = new Promise<number>((resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => resolve(cannotRun(error)));
      child.once('exit', (code, signal) => resolve(signal !== null ? signalExitCode(signal) : (code ?? exitCodes.internal)));
    });
    return new Job(child.pid === undefined ? undefined : child, exited);
  }

  /** True while the command itself has not exited. */
  get running(): boolean {
    return this.#pgid !== undefined && !this.#exited;
  }

  /** True while leasehold keeps the group stopped ({@link stop}). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Sends `signal` to the process group (0: only checks it exists); false when the group is gone. */
  signal(signal: NodeJS.Signals | 0): boolean {
    if (this.#pgid === undefined) return false;
    try {
      process.kill(-this.#pgid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stops the group with SIGSTOP — the command, or what is left of its group after it exited. (Its own
   * SIGTSTP would do nothing: a process group in a session of its own is orphaned, and the kernel
   * discards job-control stops for those.)
   */
  stop(): void {
    if (this.signal('SIGSTOP')) this.#stopped = true;
  }

  /** Continues the group after {@link stop}. */
  resume(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.signal('SIGCONT');
  }

  /**
   * SIGTERM to the group now; SIGKILL to it after `grace` ms if anything in it is still alive (the
   * command itself or a process it started) — at once if the group is stopped or gets stopped
   * meanwhile: a stopped command cannot act on SIGTERM, and continuing it would let it run on after its
   * holding. Resolves once the command exited and the group is gone, or right after the SIGKILL.
   */
  async terminate(grace: number): Promise<void> {
    if (this.#pgid === undefined) return;
    const deadline = performance.now() + grace;
    if (!this.#stopped) this.signal('SIGTERM');
    while (!this.#stopped && performance.now() < deadline) {
      if (this.#exited && !this.signal(0)) return;
      await sleep(Math.min(50, deadline - performance.now()));
    }
    this.signal('SIGKILL');
    await this.exited;
  }
}
