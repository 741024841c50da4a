import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { describe, expect, test } from 'vitest';
import { foregroundIn, handledSignals, signalExitCode, signalFates, terminalForeground, whileWaiting, type Fate } from './signals.js';

describe('signal fates', () => {
  test('every catchable signal whose default action ends a process is forwarded; job control stops both; SIGCONT continues', () => {
    const by = (fate: Fate): string[] => handledSignals.filter((s) => signalFates[s] === fate).sort();
    expect(by('forward')).toEqual(
      ['SIGABRT', 'SIGALRM', 'SIGHUP', 'SIGINT', 'SIGIO', 'SIGPROF', 'SIGPWR', 'SIGQUIT', 'SIGSTKFLT', 'SIGSYS', 'SIGTERM', 'SIGTRAP', 'SIGUSR1', 'SIGUSR2', 'SIGVTALRM', 'SIGWINCH', 'SIGXCPU'],
    );
    expect(by('stop')).toEqual(['SIGTSTP', 'SIGTTIN', 'SIGTTOU']);
    expect(by('continue')).toEqual(['SIGCONT']);
    expect(handledSignals).toEqual(Object.keys(signalFates));
  });

  test('no signal is listened to twice under two names, and none that Node ignores or cannot catch is touched', () => {
    const numbers = handledSignals.map((s) => constants.signals[s]);
    expect(numbers.every((n) => typeof n === 'number')).toBe(true);
    expect(new Set(numbers).size).toBe(numbers.length);
    // Removing a listener resets a signal to its default action: SIGPIPE's would then kill leasehold.
    for (const s of ['SIGPIPE', 'SIGXFSZ', 'SIGKILL', 'SIGSTOP', 'SIGCHLD', 'SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGPOLL', 'SIGIOT']) {
      expect(handledSignals).not.toContain(s);
    }
  });

  test('while waiting: an ending signal ends the wait, SIGWINCH does nothing, job control still stops and continues', () => {
    expect(whileWaiting('SIGINT')).toBe('end');
    expect(whileWaiting('SIGQUIT')).toBe('end');
    expect(whileWaiting('SIGUSR1')).toBe('end');
    expect(whileWaiting('SIGWINCH')).toBe('ignore');
    expect(whileWaiting('SIGTSTP')).toBe('stop');
    expect(whileWaiting('SIGTTOU')).toBe('stop');
    expect(whileWaiting('SIGCONT')).toBe('continue');
    expect(handledSignals.filter((s) => whileWaiting(s) === 'ignore')).toEqual(['SIGWINCH']);
  });

  test('signalExitCode is 128 + the signal number, as shells report it', () => {
    expect(signalExitCode('SIGHUP')).toBe(129);
    expect(signalExitCode('SIGINT')).toBe(130);
    expect(signalExitCode('SIGQUIT')).toBe(131);
    expect(signalExitCode('SIGKILL')).toBe(137);
    expect(signalExitCode('SIGTERM')).toBe(143);
  });

  test('foregroundIn: the process group is its terminal’s foreground group; never without a terminal', () => {
    expect(foregroundIn('123 (node) S 1 500 500 34816 500 4194560')).toBe(true);
    expect(foregroundIn('123 (node) S 1 500 500 34816 501 4194560')).toBe(false);
    expect(foregroundIn('123 (node) S 1 500 500 0 500 4194560')).toBe(false);
    expect(foregroundIn('123 (node) S 1 500 500 0 -1 4194560')).toBe(false);
    expect(foregroundIn('123 (a) b (c)) T 1 7 7 34817 7 0')).toBe(true); // a command name with ") " in it
    expect(terminalForeground()).toBe(foregroundIn(readFileSync('/proc/self/stat', 'utf8')));
  });

  test('docs/cli.md’s signal table says the same', () => {
    const doc = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    const table = doc.slice(doc.indexOf('### Signals'), doc.indexOf('### Limits'));
    const rows = table.split('\n').filter((l) => /^\| SIG/.test(l)).map((l) => l.split('|').map((c) => c.trim()));
    const named = (row: string[]): string[] => row[1]!.replace(/ \([^)]*\)/g, '').split(/[,;] /);
    const fateOf = (row: string[]): Fate | undefined =>
      row[3]!.startsWith('forwarded') ? 'forward' : row[3]!.startsWith('both stop') ? 'stop' : row[3]!.startsWith('both go on') ? 'continue' : undefined;
    const documented: Record<string, Fate | undefined> = {};
    const waiting: Record<string, string> = {};
    for (const row of rows) {
      for (const s of named(row)) {
        documented[s] = fateOf(row);
        waiting[s] = row[2]!;
      }
    }
    for (const s of handledSignals) {
      expect(documented[s], s).toBe(signalFates[s]);
      expect(waiting[s]!.startsWith({ end: 'ends the wait', ignore: 'ignored', stop: '`leasehold` stops', continue: '`leasehold` goes on' }[whileWaiting(s)]), s).toBe(true);
    }
    const unhandled = Object.keys(documented).filter((s) => !(s in signalFates));
    expect(unhandled.sort()).toEqual(['SIGBUS', 'SIGCHLD', 'SIGFPE', 'SIGILL', 'SIGKILL', 'SIGPIPE', 'SIGSEGV', 'SIGSTOP', 'SIGURG', 'SIGXFSZ']);
    expect(unhandled.every((s) => documented[s] === undefined)).toBe(true);
  });
});
