"""A job-control shell on a real pseudo-terminal, for tests of what a terminal does to a command.

Usage: python3 pty-shell.py [--tostop] [--background] -- PROGRAM ARG...

Opens a pty; its session leader (the "shell") runs PROGRAM as a job in a process group of its own, in
the terminal's foreground (or in the background), and waits for it as an interactive shell does
(stops included). Lines on our stdin drive it:
  type HEX   write those bytes to the terminal, as typed keys (1a is Ctrl-Z, 1c is Ctrl-\\)
  fg | bg    continue a stopped job in the foreground | in the background
Lines on our stdout are JSON objects: {"event":"started","pid"}, {"event":"stopped","signal"},
{"event":"continued"}, {"event":"exited","code"}, {"event":"signaled","signal"}, and
{"event":"tty","data"} for what the terminal shows. When our stdin ends, the job is killed.
"""
import json
import os
import pty
import select
import signal
import sys
import termios


def main():
    args = sys.argv[1:]
    tostop = background = False
    while args and args[0].startswith('--'):
        flag = args.pop(0)
        if flag == '--':
            break
        tostop |= flag == '--tostop'
        background |= flag == '--background'
    cmd_r, cmd_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid, master = pty.fork()
    if pid == 0:
        os.close(cmd_w)
        os.close(rep_r)
        try:
            shell(args, tostop, background, os.fdopen(cmd_r), rep_w)
        finally:
            os._exit(0)
    os.close(cmd_r)
    os.close(rep_w)
    relay(master, rep_r, cmd_w)


def emit(text):
    sys.stdout.write(text + '\n')
    sys.stdout.flush()


def relay(master, rep_r, cmd_w):
    stdin = sys.stdin.fileno()
    fds = [stdin, master, rep_r]
    pending = b''
    while rep_r in fds:
        ready, _, _ = select.select(fds, [], [])
        if master in ready:
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b''
            if data:
                emit(json.dumps({'event': 'tty', 'data': data.decode('utf8', 'replace')}))
            else:
                fds.remove(master)
        if rep_r in ready:
            data = os.read(rep_r, 4096)
            if not data:
                fds.remove(rep_r)
            pending += data
            while b'\n' in pending:
                line, pending = pending.split(b'\n', 1)
                emit(line.decode())
        if stdin in ready:
            line = sys.stdin.readline()
            if not line:
                fds.remove(stdin)
                os.close(cmd_w)  # the shell kills the job
                continue
            word, _, rest = line.strip().partition(' ')
            if word == 'type':
                os.write(master, bytes.fromhex(rest))
            else:
                os.write(cmd_w, (word + '\n').encode())


def shell(args, tostop, background, commands, rep_w):
    def report(**fields):
        os.write(rep_w, (json.dumps(fields) + '\n').encode())

    signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a shell takes the terminal back from the background
    if tostop:
        attrs = termios.tcgetattr(0)
        attrs[3] |= termios.TOSTOP
        termios.tcsetattr(0, termios.TCSANOW, attrs)
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)
        if not background:
            os.tcsetpgrp(0, os.getpid())
        for s in (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE):
            signal.signal(s, signal.SIG_DFL)
        os.execvp(args[0], args)
    try:
        os.setpgid(job, job)
    except OSError:
        pass  # the job did it first
    if not background:
        os.tcsetpgrp(0, job)
    report(event='started', pid=job)
    while True:
        _, status = os.waitpid(job, os.WUNTRACED | os.WCONTINUED)
        if os.WIFSTOPPED(status):
            os.tcsetpgrp(0, os.getpgrp())
            report(event='stopped', signal=os.WSTOPSIG(status))
            word = commands.readline().strip()
            if not word:
                os.killpg(job, signal.SIGKILL)
                continue
            if word == 'fg':
                os.tcsetpgrp(0, job)
            os.killpg(job, signal.SIGCONT)
        elif os.WIFCONTINUED(status):
            report(event='continued')
        elif os.WIFEXITED(status):
            report(event='exited', code=os.WEXITSTATUS(status))
            return
        elif os.WIFSIGNALED(status):
            report(event='signaled', signal=os.WTERMSIG(status))
            return


main()
