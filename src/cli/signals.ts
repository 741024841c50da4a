/**
 * What each signal does to `leasehold` and the command it runs (docs/cli.md has the table). The rule:
 * no signal may leave the command running without a live supervisor — either both run, or both are
 * stopped, or the command ends first.
 */
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';

/**
 * - `forward`: sent on to the command's process group; leasehold keeps supervising and exits with the
 *   command's code. While leasehold still waits for the holding it ends the wait instead (exit 128 + N)
 *   if the signal's default action would end a process.
 * - `stop`: job control (Ctrl-Z, a background job touching the terminal): the command's group is
 *   stopped (SIGSTOP), then leasehold stops itself; both go on together at SIGCONT.
 * - `continue`: SIGCONT: leasehold continues the command's group, if its holding is still valid.
 */
export type Fate = 'forward' | 'stop' | 'continue';

/** The signals leasehold listens to while it runs a command or waits to, with their fates. */
export const signalFates = {
  SIGHUP: 'forward',
  SIGINT: 'forward',
  SIGQUIT: 'forward',
  SIGTERM: 'forward',
  SIGUSR1: 'forward',
  SIGUSR2: 'forward',
  SIGALRM: 'forward',
  SIGVTALRM: 'forward',
  SIGPROF: 'forward',
  SIGXCPU: 'forward',
  SIGIO: 'forward',
  SIGPWR: 'forward',
  SIGSYS: 'forward',
  SIGTRAP: 'forward',
  SIGABRT: 'forward',
  SIGSTKFLT: 'forward',
  SIGWINCH: 'forward',
  SIGTSTP: 'stop',
  SIGTTIN: 'stop',
  SIGTTOU: 'stop',
  SIGCONT: 'continue',
} as const satisfies Record<string, Fate>;

/** A signal leasehold listens to. */
export type HandledSignal = keyof typeof signalFates;

/** Every signal of {@link signalFates}. */
export const handledSignals = Object.keys(signalFates) as HandledSignal[];

/** Forwarded signals whose default action is to do nothing: they never end a wait. */
const harmless: ReadonlySet<string> = new Set(['SIGWINCH']);

/** What `signal` does while leasehold still waits for the holding: end the wait, or nothing. */
export function whileWaiting(signal: HandledSignal): 'end' | 'ignore' | 'stop' | 'continue' {
  const fate: Fate = signalFates[signal];
  if (fate !== 'forward') return fate;
  return harmless.has(signal) ? 'ignore' : 'end';
}

/** 128 + the signal's number, as shells report a process killed by it. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Whether a process with this `/proc/PID/stat` text is the foreground job of its controlling terminal
 * (its process group is the terminal's foreground group); false without a terminal.
 */
export function foregroundIn(stat: string): boolean {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // state, ppid, pgrp, session, tty_nr, tpgid
  return fields[4] !== '0' && fields[2] === fields[5];
}

/**
 * True when SIGTTIN/SIGTTOU cannot have come from the terminal: leasehold is its foreground job (a
 * foreground job's reads and writes never raise them). They are then stale — raised by a write that
 * was retried while leasehold was a background job, and delivered after `fg` — or sent by hand.
 */
export function terminalForeground(): boolean {
  try {
    return foregroundIn(readFileSync('/proc/self/stat', 'utf8'));
  } catch {
    return false;
  }
}
