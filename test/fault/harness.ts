/**
 * The fault-scenario harness: a fresh 3-member etcd per scenario, a history recorder on the scenario's
 * prefix, client child processes (test/fault/client.ts) whose JSON-line logs it collects, the parent's
 * own fault log on the same monotonic clock, and — at the end — the checker.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Etcd3 } from 'etcd3';
import { afterEach } from 'vitest';
import { startEtcd, sumMetric, type EtcdCluster, type EtcdMember, type StartEtcdOptions } from '../../src/testing/index.js';
import { check, describe as describeCheck, type CheckInput, type CheckResult } from './checker.js';
import { HistoryRecorder } from './history.js';
import type { ClientConfig, Command, LogEvent } from './protocol.js';

const clientPath = fileURLToPath(new URL('./client.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Where each scenario leaves its logs, history and verdict (overwritten by the next run). */
export const logRoot = join(tmpdir(), 'leasehold-fault');

export const hrnow = (): bigint => process.hrtime.bigint();
export const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

/** A client child process and what it logged. */
export class ClientProc {
  readonly id: string;
  readonly config: ClientConfig;
  readonly lines: LogEvent[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';
  paused = false;
  /** The scenario killed it on purpose ({@link kill}). */
  killed = false;
  /** It did not exit by itself at the end of the scenario and was SIGKILLed ({@link reap}). */
  reaped = false;
  /** How it ended, once it has. */
  exit: { code: number | null; signal: string | null } | undefined;
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #scenario: Scenario;
  #listeners = new Set<() => void>();
  #running = true;

  /** `prefix` runs the client elsewhere: `ip netns exec <side>` (see {@link Scenario.spawn}). */
  constructor(scenario: Scenario, config: ClientConfig, prefix: readonly string[] = []) {
    this.#scenario = scenario;
    this.id = config.id;
    this.config = config;
    const [program, ...args] = [...prefix, process.execPath, '--import', 'tsx', clientPath, JSON.stringify(config)];
    this.#proc = spawn(program!, args, {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.#proc.on('exit', (code, signal) => {
        this.#running = false;
        this.exit = { code, signal };
        this.#notify();
        resolve(code);
      });
    });
    this.#proc.stdin.on('error', () => undefined);
    createInterface({ input: this.#proc.stdout }).on('line', (text) => {
      let line: LogEvent;
      try {
        line = JSON.parse(text) as LogEvent;
      } catch {
        this.stderr += `[stdout] ${text}\n`;
        return;
      }
      this.lines.push(line);
      scenario.logs.push(line);
      this.#notify();
    });
    this.#proc.stderr.on('data', (chunk: Buffer) => {
      if (this.stderr.length < 100_000) this.stderr += chunk.toString();
    });
  }

  get pid(): number | undefined {
    return this.#proc.pid;
  }

  get running(): boolean {
    return this.#running;
  }

  send(command: Command): void {
    if (this.#running) this.#proc.stdin.write(`${JSON.stringify(command)}\n`);
  }

  /**
   * Resolves with the first line at index `from` or later that matches; rejects after `timeoutMs` or
   * when the process exits without one.
   */
  async waitFor(match: (line: LogEvent) => boolean, timeoutMs = 30_000, from = 0, what = 'a matching log line'): Promise<LogEvent> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found) return found;
      if (!this.#running) {
        const how = this.exit?.signal ? `signal ${this.exit.signal}` : `code ${this.exit?.code}`;
        throw new Error(`${this.id} exited (${how}) before ${what}; last lines:\n${this.tail()}\nstderr:\n${this.stderr.slice(-2000)}`);
      }
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${this.id}: no ${what} within ${timeoutMs} ms; last lines:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#listeners.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        this.#listeners.add(done);
      });
    }
  }

  /** Sends `command` and waits for its `ok` or `fail` line. */
  async call(command: Command, op: string, timeoutMs = 30_000): Promise<LogEvent> {
    const from = this.lines.length;
    this.send(command);
    return this.waitFor((l) => l.op === op && (l.ev === 'ok' || l.ev === 'fail'), timeoutMs, from, `${op} ok/fail`);
  }

  /** `kill -9` (or another signal), logged as a fault: its validity windows end here. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.killed = true;
    this.#scenario.fault('kill', { target: this.id, signal });
    if (this.paused && signal !== 'SIGKILL') this.#proc.kill('SIGCONT');
    this.#proc.kill(signal);
    this.paused = false;
  }

  /**
   * SIGKILLs a client that did not exit by itself at the end of the scenario. Not a fault: its windows
   * do not end here (they end at its deadline), and the checker fails the scenario for it.
   */
  reap(): void {
    if (!this.#running) return;
    this.reaped = true;
    if (this.paused) this.#proc.kill('SIGCONT');
    this.#proc.kill('SIGKILL');
  }

  /** SIGSTOP, logged as a fault. */
  pause(): void {
    this.#scenario.fault('pause', { target: this.id });
    this.#proc.kill('SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT, logged as a fault. */
  resume(): void {
    if (!this.paused) return;
    this.#proc.kill('SIGCONT');
    this.paused = false;
    this.#scenario.fault('resume', { target: this.id });
  }

  tail(n = 8): string {
    return this.lines
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join('\n');
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

export interface ScenarioOptions {
  /** Lease TTL of every client, in seconds. @default 2 */
  ttl?: number;
  etcd?: StartEtcdOptions;
}

/** One fault scenario: its cluster, prefix, recorder, clients and logs. */
export class Scenario implements AsyncDisposable {
  readonly name: string;
  readonly etcd: EtcdCluster;
  readonly admin: Etcd3;
  readonly recorder: HistoryRecorder;
  readonly prefix: string;
  readonly lock: string;
  readonly counter: string;
  readonly ttl: number;
  readonly logs: LogEvent[] = [];
  readonly clients = new Map<string, ClientProc>();
  readonly startedAt = hrnow();

  private constructor(name: string, etcd: EtcdCluster, recorder: HistoryRecorder, ttl: number) {
    this.name = name;
    this.etcd = etcd;
    this.admin = etcd.client();
    this.recorder = recorder;
    this.prefix = recorder.prefix;
    this.lock = `${this.prefix}lock`;
    this.counter = `${this.prefix}counter`;
    this.ttl = ttl;
  }

  static async start(name: string, options: ScenarioOptions = {}): Promise<Scenario> {
    const etcd = await startEtcd({ provider: 'binary', members: 3, ...options.etcd });
    try {
      const prefix = `fault/${name}/`;
      const probe = etcd.client();
      const res = await probe.get(prefix).exec();
      probe.close();
      const recorder = await HistoryRecorder.start(etcd.endpoints, prefix, BigInt(res.header.revision));
      return new Scenario(name, etcd, recorder, options.ttl ?? 2);
    } catch (error) {
      await etcd.stop();
      throw error;
    }
  }

  /**
   * Starts a client process — with `side`, inside that side of the cluster's network (a cluster started
   * with `network`), where its endpoints are the members' addresses.
   */
  spawn(id: string, config: Partial<ClientConfig> = {}, side?: string): ClientProc {
    const network = this.etcd.network;
    if (side !== undefined && network === undefined) throw new Error(`client ${id}: side ${side} needs a cluster started with \`network\``);
    const full: ClientConfig = {
      id,
      endpoints: side === undefined ? [...this.etcd.endpoints] : this.etcd.members.map((m) => network!.url(m)),
      kind: 'mutex',
      lock: this.lock,
      counter: this.counter,
      ttl: this.ttl,
      mode: 'manual',
      ...config,
    };
    const proc = new ClientProc(this, full, side === undefined ? [] : network!.command(side));
    this.clients.set(id, proc);
    return proc;
  }

  /** Logs a fault (or any other parent action) on the shared clock. */
  fault(op: string, extra: Record<string, unknown> = {}): LogEvent {
    const line: LogEvent = { c: 'parent', t: hrnow().toString(), ev: 'fault', op, ...extra };
    this.logs.push(line);
    return line;
  }

  /**
   * Runs `etcdctl` against the scenario's cluster, as an operator would, logged as a fault (`op`
   * `etcdctl`, with its arguments). Resolves with its stdout; rejects when it fails.
   */
  async etcdctl(...args: string[]): Promise<string> {
    this.fault('etcdctl', { args });
    const { stdout } = await promisify(execFile)('etcdctl', [`--endpoints=${this.etcd.endpoints.join(',')}`, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeout: 10_000,
    });
    return stdout;
  }

  /**
   * Resolves with the first line of any client, logged after `after` (hrtime ns), that matches;
   * rejects after `timeoutMs`.
   */
  async waitFor(match: (line: LogEvent) => boolean, timeoutMs = 30_000, after = 0n, what = 'a matching log line'): Promise<LogEvent> {
    const until = performance.now() + timeoutMs;
    let from = 0;
    for (;;) {
      for (; from < this.logs.length; from++) {
        const line = this.logs[from]!;
        if (BigInt(line.t) > after && match(line)) return line;
      }
      if (performance.now() > until) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await delay(5);
    }
  }

  /** Lines of every client, in time order, that match. */
  find(match: (line: LogEvent) => boolean): LogEvent[] {
    return this.logs.filter(match).sort((a, b) => (BigInt(a.t) < BigInt(b.t) ? -1 : 1));
  }

  /** The contender keys alive now. */
  async contenders(): Promise<string[]> {
    return this.admin.getAll().prefix(`${this.lock}/`).keys();
  }

  /**
   * Waits until `member` serves at least `n` watches (etcd's `etcd_debugging_mvcc_watcher_total`), or
   * `timeoutMs`; resolves with the last count either way.
   */
  async watchers(member: EtcdMember, n: number, timeoutMs = 5000): Promise<number> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const count = await this.etcd.metrics(member).then((m) => sumMetric(m, 'etcd_debugging_mvcc_watcher_total'), () => 0);
      if (count >= n || performance.now() > until) return count;
      await delay(50);
    }
  }

  /** Polls until no contender key is left (leases of killed clients expire), or `timeoutMs`. */
  async drained(timeoutMs = (this.ttl + 5) * 1000): Promise<string[]> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      let keys: string[];
      try {
        keys = await this.contenders();
      } catch {
        keys = ['<etcd unreachable>'];
      }
      if (keys.length === 0 || performance.now() > until) return keys;
      await delay(100);
    }
  }

  /**
   * Ends the scenario: resumes paused clients, stops every client (loop clients finish their cycle,
   * manual ones release and close), SIGKILLs ("reaps") those that do not exit in `stopTimeoutMs` —
   * which fails the scenario (the checker's `exit` rule) —, waits for the contender keys to go, and
   * seals the history. Idempotent.
   */
  stop(stopTimeoutMs = 20_000): Promise<void> {
    this.#stopping ??= this.#stop(stopTimeoutMs);
    return this.#stopping;
  }

  #stopping: Promise<void> | undefined;

  async #stop(stopTimeoutMs: number): Promise<void> {
    await Promise.all(
      [...this.clients.values()].map(async (client) => {
        if (!client.running) return;
        client.resume();
        if (client.config.mode !== 'manual') client.send({ cmd: 'stop' });
        else {
          client.send({ cmd: 'release' });
          client.send({ cmd: 'close' });
          client.send({ cmd: 'exit' });
        }
        const timer = setTimeout(() => client.reap(), stopTimeoutMs);
        await client.exited;
        clearTimeout(timer);
      }),
    );
    await this.drained();
    await this.recorder.seal(this.admin);
  }

  /**
   * {@link stop}, then the checker over the history, the logs and the exits of the clients `only`
   * selects (and the parent's faults); `options` override the scenario's lock and counter.
   */
  async finish(options: Partial<CheckInput> & { only?: (client: string) => boolean } = {}): Promise<CheckResult> {
    await this.stop();
    const { only, ...overrides } = options;
    const selected = (c: string): boolean => only === undefined || only(c);
    const result = check({
      history: this.recorder.events,
      gaps: this.recorder.gaps(),
      historyErrors: this.recorder.errors,
      logs: this.logs.filter((l) => l.c === 'parent' || selected(l.c)),
      exits: [...this.clients.values()]
        .filter((c) => selected(c.id))
        .map((c) => ({
          client: c.id,
          code: c.exit?.code ?? null,
          signal: c.exit?.signal ?? null,
          killed: c.killed,
          reaped: c.reaped,
        })),
      lockPrefix: `${this.lock}/`,
      counterKey: this.counter,
      ...overrides,
    });
    this.save(result);
    return result;
  }

  /** Writes the logs, the history and the verdict to `${logRoot}/${name}/`. */
  save(result?: CheckResult): string {
    const dir = join(logRoot, this.name);
    mkdirSync(dir, { recursive: true });
    const sorted = this.find(() => true);
    writeFileSync(join(dir, 'logs.jsonl'), sorted.map((l) => JSON.stringify(l)).join('\n') + '\n');
    writeFileSync(
      join(dir, 'history.jsonl'),
      this.recorder.events.map((e) => JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).join('\n') + '\n',
    );
    const stderr = [...this.clients.values()].map((c) => `== ${c.id}\n${c.stderr}`).join('\n');
    writeFileSync(join(dir, 'stderr.txt'), stderr);
    if (result) writeFileSync(join(dir, 'verdict.txt'), `${describeCheck(result)}\n`);
    return dir;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const client of this.clients.values()) {
      if (client.running) client.kill();
    }
    await Promise.all([...this.clients.values()].map(async (c) => c.exited));
    this.recorder.close();
    await this.etcd.stop();
  }
}

/** The member log of each etcd member's last lines, for failure messages. */
export function memberLogs(etcd: EtcdCluster, lines = 20): string {
  return etcd.members
    .map((m) => {
      let text = '';
      try {
        text = readFileSync(m.logFile, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        text = '(no log)';
      }
      return `== ${m.name}\n${text}`;
    })
    .join('\n');
}

/**
 * The scenarios of one describe block: the function returned starts the running test's scenario, and an
 * `afterEach` disposes of it (clients, cluster, recorder) whether the test passed or not.
 */
export function scenarioPerTest(): (name: string, options?: ScenarioOptions) => Promise<Scenario> {
  let current: Scenario | undefined;
  afterEach(async () => {
    await current?.[Symbol.asyncDispose]();
    current = undefined;
  });
  return async (name, options) => (current = await Scenario.start(name, options));
}

/** The seed of a randomised scenario: `FAULT_SEED=<n>` replays a run. */
export const faultSeed = (): number => Number(process.env['FAULT_SEED'] ?? Date.now() % 100_000);

export const isOk = (op: string, c?: string) => (l: LogEvent) => l.op === op && l.ev === 'ok' && (c === undefined || l.c === c);
export const at = (l: LogEvent): bigint => BigInt(l.t);
/** Seconds between two log lines. */
export const secs = (from: LogEvent, to: LogEvent): number => nsToMs(at(to) - at(from)) / 1000;

/** Waits until `n` contender keys exist (waiters have joined the queue). */
export async function queued(s: Scenario, n: number, timeoutMs = 10_000): Promise<string[]> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const keys = await s.contenders();
    if (keys.length >= n) return keys;
    if (performance.now() > until) throw new Error(`expected ${n} contender keys, have ${keys.length}`);
    await delay(20);
  }
}

/** `holder` takes the lock, then each waiter joins the queue behind it, one at a time, in order. */
export async function lineUp(s: Scenario, holder: ClientProc, ...waiters: ClientProc[]): Promise<void> {
  await holder.call({ cmd: 'acquire' }, 'acquire');
  for (const [i, waiter] of waiters.entries()) {
    waiter.send({ cmd: 'acquire' });
    await queued(s, i + 2);
  }
}

/**
 * How long a repeated or randomised scenario runs: `short` in CI, `long` with `FAULT_LONG=1` (rounds,
 * or seconds of random faults).
 */
export const faultRounds = (short: number, long: number): number => (process.env['FAULT_LONG'] ? long : short);

/** Waits (a minute at most: processes boot slowly on a loaded machine) until every client has its session, then lets them all start at once. */
export async function startAll(clients: ClientProc[]): Promise<void> {
  await Promise.all(clients.map(async (c) => c.waitFor((l) => l.op === 'session' && l.ev === 'ok', 60_000)));
  for (const c of clients) c.send({ cmd: 'go' });
}

/**
 * Random faults on `running` for `ms`: every 1–2 s, one client that has started (its session is open:
 * one killed before it logged anything would prove nothing) and is neither paused nor dead is, by a
 * coin toss of `random`, killed and replaced by `respawn(victim)` (started at once, and put in
 * `running` instead), or paused for 2 × TTL. Resolves once every replacement has started and every
 * pause has ended, plus a second, with the faults' log lines in order.
 */
export async function randomFaults(
  s: Scenario,
  running: ClientProc[],
  random: () => number,
  ms: number,
  respawn: (victim: ClientProc) => ClientProc,
): Promise<LogEvent[]> {
  const faults: LogEvent[] = [];
  const resumes: Promise<void>[] = [];
  const until = performance.now() + ms;
  while (performance.now() < until) {
    await delay(1000 + random() * 1000);
    const live = running.filter((c) => c.running && !c.paused && c.lines.some(isOk('session')));
    const victim = live[Math.floor(random() * live.length)];
    if (!victim) continue;
    if (random() < 0.5) {
      victim.kill();
      faults.push(s.find((l) => l.op === 'kill').at(-1)!);
      running.splice(running.indexOf(victim), 1);
      const fresh = respawn(victim);
      running.push(fresh);
      resumes.push(startAll([fresh]));
    } else {
      victim.pause();
      faults.push(s.find((l) => l.op === 'pause').at(-1)!);
      resumes.push(delay(2 * s.ttl * 1000).then(() => victim.resume()));
    }
  }
  await Promise.all(resumes);
  await delay(1000);
  return faults;
}

export { prng } from '../prng.js';

