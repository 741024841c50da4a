/** What the benchmark ran on: the machine, Node, and the etcd it measured. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import type { EtcdCluster } from '../../src/testing/index.js';

export interface Machine {
  cores: number;
  /** 1-minute load average when the run started and when it ended (other work on the machine). */
  load: { start: number; end: number };
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
}

/** The 1-minute load average now. */
export function load1(): number {
  return Math.round(loadavg()[0]! * 100) / 100;
}

export function machine(loadAtStart: number): Machine {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'));
    if (line) cpuModel = line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cores: availableParallelism(),
    load: { start: loadAtStart, end: load1() },
    cpuModel,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
  };
}

export interface EtcdInfo {
  provider: string;
  version: string;
  /** The member's command line, when leasehold started it. */
  flags: string[];
  /** The filesystem type holding the data dir (`tmpfs` means fsync costs nothing). */
  dataDirFs: string | undefined;
}

/** The filesystem type of the mount holding `path`, from /proc/mounts. */
export function fsType(path: string): string | undefined {
  try {
    let best: { mount: string; type: string } | undefined;
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (mount === undefined || type === undefined) continue;
      const prefix = mount.endsWith('/') ? mount : `${mount}/`;
      if ((path === mount || path.startsWith(prefix)) && (!best || mount.length > best.mount.length)) {
        best = { mount, type };
      }
    }
    return best?.type;
  } catch {
    return undefined;
  }
}

export async function etcdInfo(etcd: EtcdCluster): Promise<EtcdInfo> {
  let version = 'unknown';
  try {
    const res = await fetch(`${etcd.endpoints[0]}/version`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { etcdserver?: string };
    version = body.etcdserver ?? version;
  } catch {
    // leave unknown
  }
  let flags: string[] = [];
  let dataDirFs: string | undefined;
  const member = etcd.members[0];
  if (member?.pid !== undefined) {
    try {
      const all = readFileSync(`/proc/${member.pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '').slice(1);
      // A repeated flag (the bench's own --data-dir after leasehold/testing's) takes the last value.
      const last = new Map<string, string>();
      for (const flag of all) last.set(flag.split('=')[0]!, flag);
      flags = [...last.values()];
    } catch {
      // not Linux
    }
    const dataDirs = flags.filter((f) => f.startsWith('--data-dir='));
    const dataDir = dataDirs.at(-1)?.slice('--data-dir='.length) ?? member.dataDir;
    dataDirFs = fsType(dataDir);
  }
  return { provider: etcd.provider, version, flags, dataDirFs };
}

/** The leasehold commit measured, and whether src/ had uncommitted changes when the run started. */
export function sourceVersion(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    if (git('status', '--porcelain', '--', 'src') === '') return commit;
    // Identify the uncommitted state too, so a change during the run shows.
    const state = git('diff', 'HEAD', '--', 'src') + git('ls-files', '--others', '--exclude-standard', '--', 'src');
    return `${commit} with uncommitted changes in src/ (diff ${createHash('sha1').update(state).digest('hex').slice(0, 7)})`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}
