// The example service (examples/kubernetes/service.ts) as a child process for the Kubernetes tests, and
// the judgements those tests make from etcd's history: never two leaders, every leader's write fenced,
// never more than `permits` workers busy.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { env, names, paths } from '../examples/kubernetes/config.js';
import type { HistoryEvent } from './fault/history.js';

const dir = fileURLToPath(new URL('../examples/kubernetes/', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));

/** One process of the example service, with its JSON log lines. */
export class ServiceProc {
  readonly lines: Record<string, string>[] = [];
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess;
  constructor(readonly id: string, readonly port: number, endpoints: readonly string[], ttl: number) {
    this.#child = spawn(process.execPath, ['--conditions=leasehold-source', '--import', 'tsx', join(dir, 'service.ts')], {
      cwd: root,
      env: { ...process.env, [env.endpoints]: endpoints.join(','), [env.podName]: id, [env.port]: String(port), [env.ttl]: String(ttl), [env.stopTimeout]: '2000', [env.debug]: '1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line) as Record<string, string>);
      } catch {
        // not ours
      }
    });
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)));
  }
  async get(path: string, timeoutMs = 2000): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status;
  }
  async ready(timeoutMs = 30_000): Promise<void> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      if (await this.get(paths.readiness).catch(() => 0) === 200) return;
      if (performance.now() > until) throw new Error(`${this.id} not ready in ${timeoutMs} ms`);
      await delay(100);
    }
  }
  signal(sig: NodeJS.Signals): void {
    this.#child.kill(sig);
  }
  /** The instants (hrtime ns) of its log lines `ev`, logged after `after`. */
  events(ev: string, after = 0n): bigint[] {
    return this.lines.filter((l) => l['ev'] === ev && BigInt(l['t']!) > after).map((l) => BigInt(l['t']!));
  }
  terms(): { term: string; from: bigint; to: bigint | undefined }[] {
    return this.lines
      .filter((l) => l['ev'] === 'elected')
      .map((l) => {
        const end = this.lines.find((e) => e['ev'] === 'term-end' && e['term'] === l['term']);
        return { term: l['term']!, from: BigInt(l['t']!), to: end ? BigInt(end['t']!) : undefined };
      });
  }
}

export type Term = ReturnType<ServiceProc['terms']>[number] & { pod: string };

/** Every term the processes ran, in the order they began. */
export function allTerms(procs: readonly ServiceProc[]): Term[] {
  return procs.flatMap((p) => p.terms().map((t) => ({ ...t, pod: p.id }))).sort((a, b) => (a.from < b.from ? -1 : 1));
}

/**
 * Never two leaders: the terms (all but `excepted`) never overlap on the shared monotonic clock, and
 * their numbers grow; every term was, in etcd's history, the first key of the election at some
 * revision; every write the leaders made landed while its writer's term was the first key (fencing).
 * Returns the number of fenced writes.
 */
export function checkLeaders(history: readonly HistoryEvent[], terms: readonly Term[], excepted?: Term): number {
  const checked = terms.filter((t) => t !== excepted);
  for (let i = 1; i < checked.length; i++) {
    const prev = checked[i - 1]!;
    expect(prev.to, `${prev.pod} term ${prev.term} never ended`).toBeDefined();
    expect(prev.to! <= checked[i]!.from, `${checked[i]!.pod} term ${checked[i]!.term} began while ${prev.pod} term ${prev.term} ran`).toBe(true);
    expect(BigInt(checked[i]!.term) > BigInt(prev.term)).toBe(true);
  }
  const live = new Map<string, bigint>();
  const led = new Set<bigint>();
  let writes = 0;
  for (const e of [...history].sort((a, b) => (a.rev < b.rev ? -1 : 1))) {
    if (e.key.startsWith(`${names.election}/`)) {
      if (e.type === 'put') live.set(e.key, e.createRevision);
      else live.delete(e.key);
    }
    const first = [...live.values()].sort((a, b) => (a < b ? -1 : 1))[0];
    if (first !== undefined) led.add(first);
    if (e.key === 'example-data/last-job' && e.type === 'put') {
      writes++;
      expect(BigInt((JSON.parse(e.value) as { term: string }).term), `write at revision ${e.rev}`).toBe(first);
    }
  }
  for (const t of terms) expect(led.has(BigInt(t.term)), `term ${t.term} of ${t.pod} never led in etcd's history`).toBe(true);
  return writes;
}

/** The most permits of the worker pool held at any revision of etcd's history. */
export function maxBusy(history: readonly HistoryEvent[]): number {
  const holders = `${names.workers}/holders/`;
  const held = new Set<string>();
  let max = 0;
  for (const e of [...history].sort((a, b) => (a.rev < b.rev ? -1 : 1))) {
    if (!e.key.startsWith(holders)) continue;
    if (e.type === 'put') held.add(e.key);
    else held.delete(e.key);
    max = Math.max(max, held.size);
  }
  return max;
}
