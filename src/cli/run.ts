/**
 * Running a command under a lock, a permit or a leadership — the safe version of `etcdctl lock NAME
 * CMD`: the command starts only once the holding is ours, and is stopped when the holding is lost.
 *
 * - The command runs without a shell, in a new session and process group (`setsid`), with stdio
 *   inherited and the holding described in its environment (`LEASEHOLD_*`), so it can fence its writes.
 * - SIGINT, SIGTERM and SIGHUP are forwarded to its process group while it runs; while leasehold is
 *   still waiting they abort the wait (the queue key is deleted) and leasehold exits 128 + N.
 * - When it exits, the holding is released and leasehold exits with its code (128 + N for a signal N).
 * - When the holding is lost, its process group gets SIGTERM at once and SIGKILL after `--kill-grace`
 *   (also every process still in the group after the command itself exited), and leasehold exits 79.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Etcd3 } from 'etcd3';
import type { Held } from '../handle.js';
import { Session } from '../session.js';
import { anySignal, raceSignal, sleep } from '../transport/abort.js';
import { connect, type ConnectionFlags } from './connect.js';
import { exitCodes, handledSignals, signalExitCode } from './exit-codes.js';
import type { Kind } from './inspect.js';
import { Reporter, type ReportFlags } from './report.js';

/** The flags of every command that runs a command. */
export interface RunFlags extends ConnectionFlags, ReportFlags {
  /** Lease TTL in seconds. */
  ttl: number;
  /** How long to wait for the holding, in ms; `undefined` waits as long as it takes. */
  timeout?: number;
  /** Between SIGTERM and SIGKILL of the process group after a loss, in ms. */
  killGrace: number;
}

/** What a command holds, as the run needs it. */
export interface Holding {
  handle: Held;
  /** Extra `LEASEHOLD_*` variables (beyond name, kind, key, token and lease). */
  env?: Record<string, string>;
}

/** One of the run commands: which primitive, its name, and how to take it on a session. */
export interface RunSpec {
  kind: Kind;
  name: string;
  /** What is waited for and then held, for messages: `lock "jobs"`, `1 of 3 permits of "ffmpeg"`. */
  waitingFor: string;
  acquire: (session: Session, signal: AbortSignal) => Promise<Holding>;
}

/** A wait ended by one of our own signals. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/**
 * Takes the holding `spec` describes, runs `command` under it, and resolves with the exit code
 * leasehold should exit with. Never rejects.
 */
export async function runUnder(spec: RunSpec, command: readonly string[], flags: RunFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const report = new Reporter(flags);
  const interrupt = new AbortController();
  let child: ChildProcess | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) killGroup(child.pid, signal);
    else if (!interrupt.signal.aborted) interrupt.abort(new Interrupted(signal));
  };
  for (const s of handledSignals) process.on(s, onSignal);
  let client: Etcd3 | undefined;
  let session: Session | undefined;
  try {
    const connection = connect(flags, env);
    client = connection.client;
    const ns = connection.ns;
    const timeout = flags.timeout === undefined ? undefined : AbortSignal.timeout(flags.timeout);
    const wait = anySignal(interrupt.signal, timeout);
    let holding: Holding;
    try {
      session = await Session.create(ns, { ttl: flags.ttl, signal: wait });
      holding = await spec.acquire(session, wait);
    } catch (error) {
      if (interrupt.signal.aborted) {
        const signal = (interrupt.signal.reason as Interrupted).signal;
        report.info('interrupted', `stopped waiting for ${spec.waitingFor}: ${signal}`, { kind: spec.kind, name: spec.name, signal });
        return signalExitCode(signal);
      }
      if (timeout?.aborted) {
        report.error('timeout', `timed out after ${flags.timeout} ms waiting for ${spec.waitingFor}`, { kind: spec.kind, name: spec.name });
        return exitCodes.timeout;
      }
      throw error;
    }
    const { handle } = holding;
    if (interrupt.signal.aborted) {
      await handle.release();
      return signalExitCode((interrupt.signal.reason as Interrupted).signal);
    }
    const fields = { kind: spec.kind, name: spec.name, key: handle.key, token: handle.token, leaseId: session.leaseId };
    report.info('acquired', `${spec.waitingFor} acquired (key ${handle.key}, token ${handle.token}, lease ${session.leaseHex}); running ${shown(command)}`, fields);
    const started = start(command, {
      ...env,
      LEASEHOLD_KIND: spec.kind,
      LEASEHOLD_NAME: spec.name,
      LEASEHOLD_KEY: handle.key,
      LEASEHOLD_TOKEN: handle.token.toString(),
      LEASEHOLD_LEASE_ID: session.leaseId,
      LEASEHOLD_LEASE_HEX: session.leaseHex,
      ...holding.env,
    });
    child = started.child;
    let code: number;
    try {
      // `exited` never rejects: a rejection is the holding's signal, aborted with why it was lost.
      code = await raceSignal(started.exited, handle.signal);
    } catch (lost) {
      // Lost (the lease ended, or could not be kept alive): stop everything the command started.
      const reason = lost instanceof Error ? lost.message : String(lost);
      report.error('lost', `${spec.waitingFor} lost (${reason}); stopping ${command[0]} (SIGTERM, SIGKILL after ${flags.killGrace} ms)`, fields);
      if (child.pid !== undefined) await stopGroup(child.pid, started.exited, flags.killGrace);
      return exitCodes.lost;
    }
    const ended = await handle.release();
    report.info('released', `${command[0]} exited with ${code}; ${spec.waitingFor} released (${ended})`, { ...fields, code });
    return code;
  } catch (error) {
    return report.failure(error, { kind: spec.kind, name: spec.name });
  } finally {
    for (const s of handledSignals) process.off(s, onSignal);
    await session?.close().catch(() => undefined);
    client?.close();
  }
}

/** The command as one line for messages: plain words as they are, anything else as a JSON string. */
function shown(command: readonly string[]): string {
  return command.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
}

/** Starts `command` without a shell in its own session; `exited` resolves with the exit code to report. */
function start(command: readonly string[], env: NodeJS.ProcessEnv): { child: ChildProcess; exited: Promise<number> } {
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', detached: true, env });
  const exited = new Promise<number>((resolve) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      process.stderr.write(`leasehold: cannot run ${command[0]}: ${error.code === 'ENOENT' ? 'not found' : error.message}\n`);
      resolve(error.code === 'ENOENT' ? exitCodes.notFound : exitCodes.cannotExecute);
    });
    child.once('exit', (code, signal) => resolve(signal !== null ? signalExitCode(signal) : (code ?? exitCodes.internal)));
  });
  return { child, exited };
}

/** Sends `signal` to the process group `pgid`; false when the group is gone. */
function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGTERM to the group now; SIGKILL to it after `grace` ms if anything in it is still alive (the
 * command itself or a process it started). Resolves once the command exited and the group is gone,
 * or right after the SIGKILL.
 */
async function stopGroup(pgid: number, exited: Promise<number>, grace: number): Promise<void> {
  killGroup(pgid, 'SIGTERM');
  const deadline = performance.now() + grace;
  let leaderGone = false;
  void exited.then(() => (leaderGone = true));
  while (performance.now() < deadline) {
    if (leaderGone && !killGroup(pgid, 0)) return;
    await sleep(Math.min(50, deadline - performance.now()));
  }
  killGroup(pgid, 'SIGKILL');
  await exited;
}
