/** Spawning `bench/child.ts` in a process of its own and reading its JSON lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const childEntry = fileURLToPath(new URL('../child.ts', import.meta.url));

export interface Child {
  process: ChildProcess;
  /** Resolves with the next JSON message; rejects if the child exits first or `timeoutMs` passes. */
  next(timeoutMs: number): Promise<Record<string, unknown>>;
  /** SIGKILLs the child and resolves once it has exited. */
  kill(): Promise<void>;
}

/** Starts `child.ts` with the same loader flags as this process (tsx), plus `nodeFlags`. */
export function startChild(args: string[], nodeFlags: string[] = []): Child {
  const proc = spawn(process.execPath, [...process.execArgv, ...nodeFlags, childEntry, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const queue: Record<string, unknown>[] = [];
  const waiters: ((m: Record<string, unknown> | Error) => void)[] = [];
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const lines = createInterface({ input: proc.stdout! });
  lines.on('line', (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => {
    for (const w of waiters.splice(0)) w(new Error(`child exited: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
  });
  return {
    process: proc,
    next(timeoutMs) {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      if (proc.exitCode !== null || proc.signalCode !== null) {
        return Promise.reject(new Error(`child exited: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(handler);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`child sent nothing within ${timeoutMs} ms`));
        }, timeoutMs);
        const handler = (m: Record<string, unknown> | Error): void => {
          clearTimeout(timer);
          if (m instanceof Error) reject(m);
          else if (typeof m['error'] === 'string') reject(new Error(`child: ${m['error']}`));
          else resolve(m);
        };
        waiters.push(handler);
      });
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
