import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The watchdog: a `sh` that blocks reading its stdin, a pipe only this Node process holds open. However
 * Node ends (exit, uncaught signal, SIGKILL, OOM kill), the kernel closes the pipe, `cat` sees EOF, and
 * the shell SIGKILLs every pid listed in the pid file, kills every process inside each network namespace
 * listed in the netns file and deletes the namespace, and removes the directory. It ignores the signals a
 * terminal or test runner sends to the whole process group, so it outlives Node to do its job.
 */
const WATCHDOG_SCRIPT = `
trap '' INT TERM HUP QUIT
cat >/dev/null 2>&1
if [ -f "$1" ]; then
  for p in $(cat "$1"); do kill -KILL "$p" 2>/dev/null; done
fi
if [ -f "$3" ]; then
  for n in $(cat "$3"); do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$n" 2>/dev/null
  done
fi
i=0
while [ -e "$2" ] && [ "$i" -lt 20 ]; do
  rm -rf "$2" 2>/dev/null || sleep 0.1
  i=$((i + 1))
done
`;

const live = new Set<Reaper>();
let exitHookInstalled = false;

function onExit(): void {
  for (const reaper of live) reaper.reapSync();
}

/**
 * Guarantees that the etcd processes of one cluster and its temp directory never outlive this Node
 * process: a synchronous `process.on('exit')` hook for ordinary exits, plus a watchdog process for deaths
 * that run no JavaScript (SIGKILL, a fatal signal, an OOM kill).
 */
export class Reaper {
  readonly #root: string;
  readonly #pidFile: string;
  readonly #pids = new Set<number>();
  readonly #netnsFile: string;
  readonly #netns = new Set<string>();
  readonly #watchdog: ChildProcess;
  #disposed = false;

  /** Starts watching `root` (which must exist): it is removed, with every tracked pid killed, when Node dies. */
  constructor(root: string) {
    this.#root = root;
    this.#pidFile = join(root, 'pids');
    this.#netnsFile = join(root, 'netns');
    this.#writePidFile();
    this.#watchdog = spawn('sh', ['-c', WATCHDOG_SCRIPT, 'leasehold-etcd-watchdog', this.#pidFile, root, this.#netnsFile], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    // Neither the watchdog nor its pipe may keep the event loop alive; both only matter once Node is gone.
    this.#watchdog.on('error', () => {});
    this.#watchdog.stdin?.on('error', () => {});
    this.#watchdog.unref();
    (this.#watchdog.stdin as { unref?: () => void } | null)?.unref?.();
    if (!exitHookInstalled) {
      process.on('exit', onExit);
      exitHookInstalled = true;
    }
    live.add(this);
  }

  /** Whether `dispose()` has run: the directory is gone and nothing more may be started in it. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Records a process to kill if Node dies. */
  track(pid: number): void {
    this.#pids.add(pid);
    this.#writePidFile();
  }

  /** Forgets a process that has exited, so a recycled pid is never killed. */
  untrack(pid: number): void {
    if (this.#pids.delete(pid)) this.#writePidFile();
  }

  /**
   * Records a network namespace to empty (every process in it SIGKILLed) and delete if Node dies;
   * `dispose()` and the exit hook delete it too, so delete it yourself first when you can wait.
   */
  trackNetns(name: string): void {
    this.#netns.add(name);
    this.#writeList(this.#netnsFile, this.#netns);
  }

  /**
   * Kills every tracked process, empties and deletes every tracked network namespace, and removes the
   * directory, synchronously; for `process.on('exit')`.
   */
  reapSync(): void {
    for (const pid of this.#pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    this.#pids.clear();
    for (const name of this.#netns) deleteNetnsSync(name);
    this.#netns.clear();
    try {
      rmSync(this.#root, { recursive: true, force: true, maxRetries: 3, retryDelay: 20 });
    } catch {
      // The watchdog tries again after Node exits.
    }
  }

  /** Removes the directory and stops the watchdog; call after every tracked process has exited. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    live.delete(this);
    this.reapSync();
    // Closing the pipe would make the watchdog run its cleanup too; there is nothing left, so just kill it.
    this.#watchdog.kill('SIGKILL');
    this.#watchdog.stdin?.destroy();
  }

  #writePidFile(): void {
    this.#writeList(this.#pidFile, this.#pids);
  }

  #writeList(file: string, items: ReadonlySet<unknown>): void {
    if (this.#disposed) return;
    // Write then rename, so the watchdog never reads a half-written file.
    const temporary = `${file}.tmp`;
    try {
      writeFileSync(temporary, [...items].map((item) => `${String(item)}\n`).join(''));
      renameSync(temporary, file);
    } catch {
      // The directory is being removed; the exit hook still knows the list.
    }
  }
}

/** SIGKILLs every process in the network namespace `name` and deletes it; quiet when it is gone. */
function deleteNetnsSync(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // Deleted already (or never created).
  }
}
