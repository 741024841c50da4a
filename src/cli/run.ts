/**
 * Running a command under a lock, a permit or a leadership — the safe version of `etcdctl lock NAME
 * CMD`: the command starts only once the holding is ours, and is stopped when the holding is lost.
 *
 * - The command runs without a shell, in a new session and process group (`setsid`), with stdio
 *   inherited and the holding described in its environment (`LEASEHOLD_*`), so it can fence its writes.
 * - Every signal has a fate (signals.ts): forwarded to the command's group, stopping both, or
 *   continuing both; while leasehold still waits, an ending signal aborts the wait (the queue key is
 *   deleted) and leasehold exits 128 + N.
 * - When it exits, the holding is released and leasehold exits with its code (128 + N for a signal N).
 * - When the holding is lost — or leasehold itself fails — its process group gets SIGTERM at once and
 *   SIGKILL after `--kill-grace`, and leasehold exits 79 (70). The lease is given up `--kill-grace`
 *   early (timings.ts), so after a keep-alive failure the group is gone before etcd lets the lease go.
 */
import type { Etcd3, Namespace } from 'etcd3';
import type { Held } from '../handle.js';
import { Session } from '../session.js';
import { anySignal, raceSignal } from '../transport/abort.js';
import { checkCommand } from './args.js';
import { connect, type ConnectionFlags } from './connect.js';
import { exitCodes } from './exit-codes.js';
import { acquireWithin, TimedOut } from './first-try.js';
import type { Kind } from './inspect.js';
import { Job } from './job.js';
import { Reporter, type ReportFlags } from './report.js';
import { handledSignals, signalExitCode, signalFates, terminalForeground, whileWaiting, type HandledSignal } from './signals.js';
import { runTimings } from './timings.js';

/** The flags of every command that runs a command. */
export interface RunFlags extends ConnectionFlags, ReportFlags {
  /** Lease TTL in seconds. */
  ttl: number;
  /** How long to wait after the first try found the name taken, in ms (0: one try); `undefined` waits as long as it takes. */
  timeout?: number;
  /** Between SIGTERM and SIGKILL of the process group after a loss, in ms; `undefined`: the default (timings.ts). */
  killGrace?: number;
}

/** What a command holds, as the run needs it. */
export interface Holding {
  handle: Held;
  /** Every key held, when several (a MultiLock's): messages name them all, and the command gets no `LEASEHOLD_KEY`. */
  keys?: readonly string[];
  /** Extra `LEASEHOLD_*` variables (beyond kind, token, lease, and name and key for one name). */
  env?: Record<string, string>;
}

/** Where a lease stands in a queue: first (holds), behind someone (waits), or not in it (yet). */
export type Place = 'holds' | 'waits' | undefined;

/** One of the run commands: which primitive, its name, and how to take it on a session. */
export interface RunSpec {
  kind: Kind | 'multilock';
  /** The name; for several (`names`), them joined with `, `, for reading only. */
  name: string;
  /** The names of a holding of several (a MultiLock): reported as `names`, and no `LEASEHOLD_NAME`. */
  names?: readonly string[];
  /** What is waited for and then held, for messages: `lock "jobs"`, `1 of 3 permits of "ffmpeg"`. */
  waitingFor: string;
  acquire: (session: Session, signal: AbortSignal) => Promise<Holding>;
  /** Where `leaseId` stands, for `--timeout` (first-try.ts); by default read from the queue of `kind` and `name`. */
  place?: (ns: Namespace, leaseId: string, signal: AbortSignal) => Promise<Place>;
}

/**
 * The variables leasehold sets for a command. Any of them in leasehold's own environment (a leasehold
 * inside another's command) is removed first, so what the command sees always describes this holding.
 */
const ownVariable = /^LEASEHOLD_(KIND|NAME|KEY|TOKEN|LEASE_ID|LEASE_HEX|MODE|WEIGHT|PERMITS|VALUE|COUNT|NAME_\d+|KEY_\d+)$/;

/** The command's environment: `env` without inherited {@link ownVariable}s, plus the holding's. */
function commandEnv(env: NodeJS.ProcessEnv, spec: RunSpec, holding: Holding, session: Session): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(env).filter(([k]) => !ownVariable.test(k)));
  const one = spec.names === undefined ? { LEASEHOLD_NAME: spec.name, LEASEHOLD_KEY: holding.handle.key } : {};
  return {
    ...inherited,
    LEASEHOLD_KIND: spec.kind,
    ...one,
    LEASEHOLD_TOKEN: holding.handle.token.toString(),
    LEASEHOLD_LEASE_ID: session.leaseId,
    LEASEHOLD_LEASE_HEX: session.leaseHex,
    ...holding.env,
  };
}

/** How a spec names what it is about in JSON lines: `name`, or `names` for several. */
function subject(spec: RunSpec): Record<string, unknown> {
  return spec.names === undefined ? { kind: spec.kind, name: spec.name } : { kind: spec.kind, names: spec.names };
}

/** A wait ended by one of our own signals. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/**
 * Where the run is, and what each signal does to it there (signals.ts): before the command starts
 * (`waiting`), while it runs (`running`), while it is being ended after a loss (`stopping`), after.
 */
class Supervisor {
  phase: 'waiting' | 'running' | 'stopping' | 'done' = 'waiting';
  job: Job | undefined;
  session: Session | undefined;
  /** Aborts when an ending signal arrives while waiting. */
  readonly interrupt = new AbortController();
  /** Aborts when leasehold itself failed (an exception nothing caught): the command must end too. */
  readonly fatal = new AbortController();

  /** Between stopping ourselves and the SIGCONT that continued us: stop signals queued meanwhile are stale. */
  #selfStopped = false;

  readonly onSignal = (signal: HandledSignal): void => {
    const fate = signalFates[signal];
    if (fate === 'stop') {
      // A background write to a `tostop` terminal raises SIGTTOU over and over until we stop: handle
      // the first, and drop those queued behind it (before the SIGCONT that woke us, or — from a
      // thread stopped inside the signal handler — after it, once `fg` made us the foreground job).
      if (this.#selfStopped || (signal !== 'SIGTSTP' && terminalForeground())) return;
      if (this.phase === 'running' || this.phase === 'stopping') this.job?.stop();
      this.#selfStopped = true;
      process.kill(process.pid, 'SIGSTOP'); // returns once continued
    } else if (fate === 'continue') {
      this.#selfStopped = false;
      // Only while the holding is valid (`alive` notices a deadline passed while stopped: the loss ends it).
      if (this.phase === 'running' && this.job?.stopped && this.session?.alive) this.job.resume();
    } else if (this.phase === 'running' || this.phase === 'stopping') {
      this.job?.signal(signal);
    } else if (this.phase === 'waiting' && whileWaiting(signal) === 'end' && !this.interrupt.signal.aborted) {
      this.interrupt.abort(new Interrupted(signal));
    }
  };
}

let active: Supervisor | undefined;

/**
 * Hands an error nothing caught to the run in progress, which ends its command as after a loss and
 * exits 70; false when no run is in progress. For the process's `uncaughtException` listener.
 */
export function failRun(error: unknown): boolean {
  if (active === undefined) return false;
  if (!active.fatal.signal.aborted) active.fatal.abort(error);
  return true;
}

/**
 * Takes the holding `spec` describes, runs `command` under it, and resolves with the exit code
 * leasehold should exit with. Never rejects.
 */
export async function runUnder(spec: RunSpec, command: readonly string[], flags: RunFlags, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const report = new Reporter(flags);
  const at = subject(spec);
  const sup = new Supervisor();
  const listeners = handledSignals.map((s) => [s, () => sup.onSignal(s)] as const);
  for (const [s, listener] of listeners) process.on(s, listener);
  active = sup;
  let client: Etcd3 | undefined;
  try {
    checkCommand(command);
    const timings = runTimings(flags.ttl, flags.killGrace);
    const connection = connect(flags, env);
    client = connection.client;
    const wait = anySignal(sup.interrupt.signal, sup.fatal.signal);
    let holding: Holding;
    try {
      sup.session = await Session.create(connection.ns, { ttl: flags.ttl, safetyMargin: timings.safetyMargin, keepAliveInterval: timings.keepAliveInterval, signal: wait });
      holding = await acquireWithin(spec, sup.session, connection.ns, wait, flags.timeout);
    } catch (error) {
      if (sup.fatal.signal.aborted) throw sup.fatal.signal.reason;
      if (sup.interrupt.signal.aborted) {
        const signal = (sup.interrupt.signal.reason as Interrupted).signal;
        report.info('interrupted', `stopped waiting for ${spec.waitingFor}: ${signal}`, { ...at, signal });
        return signalExitCode(signal);
      }
      if (error instanceof TimedOut) {
        report.error('timeout', `gave up waiting for ${spec.waitingFor}: ${error.message}`, at);
        return exitCodes.timeout;
      }
      throw error;
    }
    return await supervise(sup, spec, holding, command, { ...flags, killGrace: timings.killGrace }, env, report);
  } catch (error) {
    return report.failure(error, at);
  } finally {
    sup.phase = 'done';
    await sup.session?.close().catch(() => undefined);
    client?.close();
    for (const [s, listener] of listeners) process.off(s, listener);
    active = undefined;
  }
}

/** Runs `command` while `holding` lasts; ends its group when the holding is lost or leasehold fails. */
async function supervise(sup: Supervisor, spec: RunSpec, holding: Holding, command: readonly string[], flags: RunFlags & { killGrace: number }, env: NodeJS.ProcessEnv, report: Reporter): Promise<number> {
  const { handle } = holding;
  const session = sup.session!;
  if (sup.interrupt.signal.aborted || sup.fatal.signal.aborted) {
    await handle.release();
    if (sup.fatal.signal.aborted) throw sup.fatal.signal.reason;
    return signalExitCode((sup.interrupt.signal.reason as Interrupted).signal);
  }
  const keys = holding.keys ?? [handle.key];
  const fields = { ...subject(spec), ...(holding.keys === undefined ? { key: handle.key } : { keys }), token: handle.token, leaseId: session.leaseId };
  if (!session.alive || handle.signal.aborted) {
    report.error('lost', `${spec.waitingFor} lost before ${command[0]} started (${reasonOf(handle.signal.reason)}); not running it`, fields);
    return exitCodes.lost;
  }
  report.info('acquired', `${spec.waitingFor} acquired (${keys.length === 1 ? 'key' : 'keys'} ${keys.join(', ')}, token ${handle.token}, lease ${session.leaseHex}); running ${shown(command)}`, fields);
  const job = Job.start(command, commandEnv(env, spec, holding, session));
  sup.job = job;
  sup.phase = 'running';
  let code: number;
  try {
    // `exited` never rejects: a rejection is the holding's signal (why it was lost) or leasehold's failure.
    code = await raceSignal(job.exited, anySignal(handle.signal, sup.fatal.signal));
  } catch (reason) {
    // Stop everything the command started first; then say so (a write can neither fail nor block this).
    sup.phase = 'stopping';
    const terminated = job.terminate(flags.killGrace);
    const how = `stopping ${command[0]} (SIGTERM, SIGKILL after ${flags.killGrace} ms)`;
    if (sup.fatal.signal.aborted) report.failure(reason, { ...fields, stopping: how });
    else report.error('lost', `${spec.waitingFor} lost (${reasonOf(reason)}); ${how}`, fields);
    await terminated;
    return sup.fatal.signal.aborted ? exitCodes.internal : exitCodes.lost;
  }
  sup.phase = 'done';
  const ended = await handle.release();
  report.info('released', `${command[0]} exited with ${code}; ${spec.waitingFor} released (${ended})`, { ...fields, code });
  return code;
}

function reasonOf(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

/** The command as one line for messages: plain words as they are, anything else as a JSON string. */
function shown(command: readonly string[]): string {
  return command.map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg))).join(' ');
}
